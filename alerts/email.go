package alerts

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	mail "github.com/wneessen/go-mail"
)

// TLS modes of Email.
const (
	TLSStartTLS = "starttls" // STARTTLS, required
	TLSImplicit = "tls"      // TLS from the first byte (port 465)
	TLSOff      = "off"      // plain text: a relay on loopback only
)

// Email is a channel that mails each notification through an SMTP
// server.
type Email struct {
	// Server is host:port.
	Server             string
	Username, Password string
	From               string
	To                 []string
	// TLS is starttls (default), tls or off.
	TLS string
}

func (e *Email) validate() error {
	host, port, err := net.SplitHostPort(e.Server)
	if err != nil || host == "" {
		return fmt.Errorf("smtp %q: want host:port", e.Server)
	}
	if _, err := strconv.Atoi(port); err != nil {
		return fmt.Errorf("smtp %q: want host:port", e.Server)
	}
	if e.From == "" || len(e.To) == 0 {
		return errors.New("from and to are required")
	}
	switch e.TLS {
	case "", TLSStartTLS, TLSImplicit, TLSOff:
	default:
		return fmt.Errorf("tls %q: want starttls, tls or off", e.TLS)
	}
	return nil
}

func (e *Email) send(ctx context.Context, n *Notification) error {
	m := mail.NewMsg()
	if err := m.From(e.From); err != nil {
		return fmt.Errorf("email from: %w", err)
	}
	if err := m.To(e.To...); err != nil {
		return fmt.Errorf("email to: %w", err)
	}
	m.Subject(subjectLine(n))
	m.SetBodyString(mail.TypeTextPlain, body(n))

	host, portText, _ := net.SplitHostPort(e.Server) // checked by validate
	port, _ := strconv.Atoi(portText)
	opts := []mail.Option{mail.WithPort(port), mail.WithTimeout(deliveryTimeout)}
	switch e.TLS {
	case TLSOff:
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	case TLSImplicit:
		opts = append(opts, mail.WithSSL())
	default:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	}
	if e.Username != "" {
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover), mail.WithUsername(e.Username), mail.WithPassword(e.Password))
	}
	c, err := mail.NewClient(host, opts...)
	if err != nil {
		return fmt.Errorf("email client: %w", err)
	}
	if err := c.DialAndSendWithContext(ctx, m); err != nil {
		return fmt.Errorf("sending alert email through %s: %w", e.Server, err)
	}
	return nil
}

// body is the mail's text: what happened, to what, since when.
func body(n *Notification) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n", subjectLine(n))
	if n.Summary != "" {
		fmt.Fprintf(&b, "%s\n\n", n.Summary)
	}
	fmt.Fprintf(&b, "rule:        %s\nsubject:     %s\nfired at:    %s\noccurrences: %d\n", n.Rule, n.Subject, n.FiredAt.UTC().Format("2006-01-02 15:04:05 UTC"), n.Occurrences)
	if n.ResolvedAt != nil {
		fmt.Fprintf(&b, "resolved at: %s\n", n.ResolvedAt.UTC().Format("2006-01-02 15:04:05 UTC"))
	}
	fmt.Fprintf(&b, "incident:    %s\n", n.ID)
	return b.String()
}
