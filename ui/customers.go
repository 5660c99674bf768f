package ui

// TODO(ui): the customers pages.
func (u *UI) routesCustomers() {}
