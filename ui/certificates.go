package ui

// TODO(ui): the certificates pages.
func (u *UI) routesCertificates() {}
