package ui

// TODO(ui): the releases pages.
func (u *UI) routesReleases() {}
