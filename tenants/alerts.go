package tenants

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// Alert is an incident: a rule firing for a subject, from when it fired
// until it resolved.
type Alert struct {
	ID          string     `json:"id" db:"id"`
	Rule        string     `json:"rule" db:"rule"`
	Subject     string     `json:"subject" db:"subject"`
	Summary     string     `json:"summary" db:"summary"`
	Occurrences int64      `json:"occurrences" db:"occurrences"`
	FiredAt     time.Time  `json:"fired_at" db:"fired_at"`
	LastSeenAt  time.Time  `json:"last_seen_at" db:"last_seen_at"`
	ClearSince  *time.Time `json:"clear_since,omitempty" db:"clear_since"`
	ResolvedAt  *time.Time `json:"resolved_at,omitempty" db:"resolved_at"`
}

const alertColumns = `id, rule, subject, summary, occurrences, fired_at, last_seen_at, clear_since, resolved_at`

// RaiseAlert records that rule's condition holds for subject: it opens an
// incident, calling opened with it inside the transaction that opens it
// (to queue its notifications there), or counts one more occurrence of
// the open one. Nodes raising at once open one incident between them.
func (s *Store) RaiseAlert(ctx context.Context, rule, subject, summary string, opened func(pgx.Tx, *Alert) error) error {
	return unavailable("raising alert", pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		a, err := collectOne[Alert](tx.Query(ctx, `INSERT INTO alerts (rule, subject, summary) VALUES ($1, $2, $3)
			ON CONFLICT (rule, subject) WHERE resolved_at IS NULL
			DO UPDATE SET occurrences = alerts.occurrences + 1, last_seen_at = now(), clear_since = NULL
			RETURNING `+alertColumns, rule, subject, summary))
		if err != nil {
			return mapError("raising alert", err)
		}
		if a.Occurrences > 1 { // the incident was open already
			return nil
		}
		return opened(tx, a)
	}))
}

// ClearAlert records that rule's condition no longer holds for subject;
// the open incident resolves once it stayed clear for a while (see
// ResolveAlerts).
func (s *Store) ClearAlert(ctx context.Context, rule, subject string) error {
	_, err := s.pool.Exec(ctx, `UPDATE alerts SET clear_since = now()
		WHERE rule = $1 AND subject = $2 AND resolved_at IS NULL AND clear_since IS NULL`, rule, subject)
	return mapError("clearing alert", err)
}

// ResolveAlerts resolves the open incidents that stayed clear for quiet,
// calling resolved with them in the transaction that resolves them. Each
// incident resolves once, whichever node asks.
func (s *Store) ResolveAlerts(ctx context.Context, quiet time.Duration, resolved func(pgx.Tx, []Alert) error) error {
	return unavailable("resolving alerts", pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		list, err := collectAll[Alert](tx.Query(ctx, `UPDATE alerts SET resolved_at = now()
			WHERE resolved_at IS NULL AND clear_since <= now() - make_interval(secs => $1)
			RETURNING `+alertColumns, quiet.Seconds()))
		if err != nil || len(list) == 0 {
			return mapError("resolving alerts", err)
		}
		return resolved(tx, list)
	}))
}

// OpenAlerts returns the incidents not resolved yet, oldest first.
func (s *Store) OpenAlerts(ctx context.Context) ([]Alert, error) {
	list, err := collectAll[Alert](s.pool.Query(ctx, `SELECT `+alertColumns+` FROM alerts
		WHERE resolved_at IS NULL ORDER BY fired_at, id`))
	return list, mapError("listing alerts", err)
}
