package ui

// TODO(ui): the plans pages.
func (u *UI) routesPlans() {}
