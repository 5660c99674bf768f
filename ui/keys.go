package ui

// TODO(ui): the keys pages.
func (u *UI) routesKeys() {}
