package ui

// TODO(ui): the templates pages.
func (u *UI) routesTemplates() {}
