package tenants

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/agistaffers/caddy-multitenant/internal/pgtest"
)

// A database that cannot be reached, refusing connections or never
// answering, makes every kind of call fail with ErrUnavailable (reads,
// transactions, authentication, billing events), so callers can answer
// 503; once it is back the same calls succeed. Errors of the statement
// itself stay what they are.
func TestUnreachableDatabaseIsUnavailable(t *testing.T) {
	t.Parallel()
	direct, schema := newTestStore(t)
	c, _, site := fixture(t, direct)
	proxy := pgtest.NewCutter(t)
	pool, err := pgxpool.New(context.Background(), proxy.URL(t, schema))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s := NewStore(pool, direct.opts)

	n := 0 // each write and event is a new one
	next := func(prefix string) string { n++; return fmt.Sprintf("%s%d", prefix, n) }
	calls := map[string]func(ctx context.Context) error{
		"get": func(ctx context.Context) error { _, err := s.GetSite(ctx, site.ID); return err },
		"list": func(ctx context.Context) error {
			_, err := s.ListCustomers(ctx, CustomerFilter{}, Page{})
			return err
		},
		"write": func(ctx context.Context) error {
			return s.CreatePlan(ctx, "test", &Plan{Slug: next("p"), Name: "P"})
		},
		"authenticate": func(ctx context.Context) error {
			_, err := s.AuthenticateAPIKey(ctx, "mtk_0123456789abcdef_secret")
			return err
		},
		"billing event": func(ctx context.Context) error {
			_, err := s.ApplyBillingEvent(ctx, "test", BillingEventInput{ID: next("evt_"), Type: "invoice.paid",
				Created: time.Now(), Payload: []byte(`{}`)}, BillingTarget{CustomerID: c.ID}, nil)
			return err
		},
	}
	for _, mode := range []struct {
		name string
		cut  func()
	}{{"refused", proxy.Cut}, {"silent", proxy.Stall}} {
		mode.cut()
		pool.Reset()
		for name, call := range calls {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err := call(ctx)
			cancel()
			if !errors.Is(err, ErrUnavailable) {
				t.Errorf("%s, %s: %v, want ErrUnavailable", mode.name, name, err)
			}
		}
		// Closing the stalled connections first: a connect already under
		// way would wait for them (no connect_timeout), not for the test.
		proxy.Cut()
		proxy.Restore()
		for name, call := range calls {
			if err := call(context.Background()); err != nil && !errors.Is(err, ErrNotFound) {
				t.Errorf("%s, %s after recovery: %v", mode.name, name, err)
			}
		}
	}

	// A duplicate is the statement's fault, not the connection's.
	err = s.CreateSite(context.Background(), "test", &Site{CustomerID: c.ID, TemplateID: site.TemplateID, Subdomain: site.Subdomain})
	if errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrConflict) {
		t.Errorf("duplicate subdomain: %v, want a conflict", err)
	}
}

// The server's own refusals of service (shutting down, starting up, out
// of connection slots, a broken connection) are unavailability too.
func TestServerSideUnavailability(t *testing.T) {
	t.Parallel()
	for _, code := range []string{"57P01", "57P02", "57P03", "53300", "08006", "08001"} {
		if err := mapError("getting site", &pgconn.PgError{Code: code}); !errors.Is(err, ErrUnavailable) {
			t.Errorf("SQLSTATE %s: %v, want ErrUnavailable", code, err)
		}
	}
	for _, code := range []string{"23505", "22P02", "42P01", "40001"} {
		if err := mapError("getting site", &pgconn.PgError{Code: code}); errors.Is(err, ErrUnavailable) {
			t.Errorf("SQLSTATE %s: %v, want no ErrUnavailable", code, err)
		}
	}
}
