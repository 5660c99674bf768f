package ui

// TODO(ui): the billing pages.
func (u *UI) routesBilling() {}
