package ui

// TODO(ui): the audit pages.
func (u *UI) routesAudit() {}
