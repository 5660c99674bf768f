package ui

// TODO(ui): the backups pages.
func (u *UI) routesBackups() {}
