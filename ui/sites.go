package ui

// TODO(ui): the sites pages.
func (u *UI) routesSites() {}
