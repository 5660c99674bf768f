package ui

// TODO(ui): the settings pages.
func (u *UI) routesSettings() {}
