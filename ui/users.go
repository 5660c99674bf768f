package ui

// TODO(ui): the users pages.
func (u *UI) routesUsers() {}
