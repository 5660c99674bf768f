package ui

// TODO(ui): the portal pages.
func (u *UI) routesPortal() {}
