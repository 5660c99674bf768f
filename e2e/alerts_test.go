package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/agistaffers/caddy-multitenant/alerts"
)

// webhookReceiver is an alert receiver: it answers the first delivery
// with 500 (so the platform must retry), then keeps what it accepts,
// checking every signature.
type webhookReceiver struct {
	t      *testing.T
	secret string
	srv    *httptest.Server

	mu       sync.Mutex
	refused  int
	accepted []alerts.Notification
	bad      []string
}

func newWebhookReceiver(t *testing.T, secret string) *webhookReceiver {
	r := &webhookReceiver{t: t, secret: secret}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if err := alerts.Verify(secret, req.Header.Get(alerts.SignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
			r.bad = append(r.bad, err.Error())
			http.Error(w, "bad signature", http.StatusBadRequest)
			return
		}
		if r.refused == 0 {
			r.refused++
			http.Error(w, "down for a moment", http.StatusInternalServerError)
			return
		}
		var n alerts.Notification
		if err := json.Unmarshal(body, &n); err != nil {
			r.bad = append(r.bad, err.Error())
			return
		}
		r.accepted = append(r.accepted, n)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// count returns how many notifications of rule and status were accepted.
func (r *webhookReceiver) count(rule, status string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, a := range r.accepted {
		if a.Rule == rule && a.Status == status {
			n++
		}
	}
	return n
}

// mailbox is an SMTP server (go-smtp) keeping the messages it gets.
type mailbox struct {
	addr string
	mu   sync.Mutex
	msgs []string
}

func newMailbox(t *testing.T) *mailbox {
	m := &mailbox{}
	s := smtp.NewServer(m)
	s.Domain = "localhost"
	s.AllowInsecureAuth = true
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m.addr = l.Addr().String()
	go func() {
		if err := s.Serve(l); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
			t.Errorf("smtp server: %v", err)
		}
	}()
	t.Cleanup(func() { s.Close() })
	return m
}

func (m *mailbox) NewSession(*smtp.Conn) (smtp.Session, error) { return &mailSession{m: m}, nil }

func (m *mailbox) received(subject string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, msg := range m.msgs {
		if strings.Contains(msg, subject) {
			n++
		}
	}
	return n
}

type mailSession struct{ m *mailbox }

func (s *mailSession) Reset()                               {}
func (s *mailSession) Logout() error                        { return nil }
func (s *mailSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *mailSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	s.m.mu.Lock()
	s.m.msgs = append(s.m.msgs, string(b))
	s.m.mu.Unlock()
	return err
}

// A site whose container exits at start is one incident: the webhook
// hears "firing" once (after a failed delivery, retried) and "resolved"
// once the site starts and stays up, each signed; the email arrives too.
func TestAlertsWebhookAndEmail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	hook := newWebhookReceiver(t, "s3cret")
	mail := newMailbox(t)
	p := newPlatform(t, platformOptions{Tenants: fmt.Sprintf(`alerts {
			webhook %s {
				secret s3cret
			}
			email {
				smtp %s
				from alerts@example.com
				to   ops@example.com
				tls  off
			}
			resolve_after 2s
		}`, hook.srv.URL, mail.addr)})
	s := p.site("crashy", map[string]string{"EXIT_AT_START": "1"})
	if st, _, _ := p.get(host("crashy"), "/", nil); st != http.StatusBadGateway {
		t.Fatalf("a site that exits at start: %d", st)
	}
	eventually(t, 60*time.Second, "the webhook accepts the firing alert", func() bool {
		return hook.count(alerts.RuleStartFailed, alerts.StatusFiring) == 1
	})
	eventually(t, 60*time.Second, "the firing email arrives", func() bool {
		return mail.received("site_start_failed FIRING") == 1
	})

	delete(s.Env, "EXIT_AT_START")
	if err := p.store.UpdateSite(ctx, "e2e", s); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "the fixed site serves", func() bool {
		st, _, _, err := p.tryGet(host("crashy"), "/", nil)
		return err == nil && st == http.StatusOK
	})
	eventually(t, 60*time.Second, "the webhook accepts the resolved alert", func() bool {
		return hook.count(alerts.RuleStartFailed, alerts.StatusResolved) == 1
	})
	eventually(t, 60*time.Second, "the resolved email arrives", func() bool {
		return mail.received("site_start_failed RESOLVED") == 1
	})

	hook.mu.Lock()
	defer hook.mu.Unlock()
	if len(hook.bad) != 0 {
		t.Fatalf("deliveries refused: %v", hook.bad)
	}
	if hook.refused != 1 {
		t.Fatalf("%d deliveries refused on purpose, want 1 (then retried)", hook.refused)
	}
	var fired, resolved int
	for _, n := range hook.accepted {
		if n.Rule != alerts.RuleStartFailed {
			continue
		}
		if n.Subject != s.ID {
			t.Fatalf("alert about %q, want the site %s", n.Subject, s.ID)
		}
		switch n.Status {
		case alerts.StatusFiring:
			fired++
		case alerts.StatusResolved:
			resolved++
		}
	}
	if fired != 1 || resolved != 1 {
		t.Fatalf("%d firing and %d resolved notifications, want one each: %+v", fired, resolved, hook.accepted)
	}
}
