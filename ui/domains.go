package ui

// TODO(ui): the domains pages.
func (u *UI) routesDomains() {}
