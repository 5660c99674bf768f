package tenants

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// Uptime states: a site is up (running, its health checks passing or
// not failing enough), asleep (stopped because nobody used it, or by an
// operator: it wakes at the next request, which is no downtime), failed
// (its container did not start, or exited on its own) or unhealthy (its
// health checks failed unhealthy_after times in a row, or they are
// restarting it).
const (
	UptimeUp        = "up"
	UptimeAsleep    = "asleep"
	UptimeFailed    = "failed"
	UptimeUnhealthy = "unhealthy"
)

// UptimeStates lists every uptime state.
var UptimeStates = []string{UptimeUp, UptimeAsleep, UptimeFailed, UptimeUnhealthy}

// UptimeRetention is how long ended uptime intervals are kept, as the
// figures are.
const UptimeRetention = 30 * 24 * time.Hour

// peerStopWindow: when a node stops a site, another node serving it
// hears of the container's exit moments later and, not having stopped it
// itself, reports a failure. A failure and a sleep this close together
// are one stop, a sleep.
const peerStopWindow = 10 * time.Second

// UptimeInterval is a time a site spent in one state; EndedAt is nil for
// the state it is in now.
type UptimeInterval struct {
	State     string     `json:"state" db:"state"`
	StartedAt time.Time  `json:"started_at" db:"started_at"`
	EndedAt   *time.Time `json:"ended_at,omitempty" db:"ended_at"`
}

// RecordUptime records that the site entered state at: the open interval
// ends and one of state begins. state "" ends the open interval only
// (the site's container was removed). A report older than the open
// interval, or of the state it already is in, changes nothing: every
// node serving a site reports what it sees, and the history is one.
func (s *Store) RecordUptime(ctx context.Context, siteID, state string, at time.Time) error {
	return mapError("recording uptime", pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var id int64
		var open string
		var since time.Time
		err := tx.QueryRow(ctx, `SELECT id, state, started_at FROM site_uptime
			WHERE site_id = $1 AND ended_at IS NULL FOR UPDATE`, siteID).Scan(&id, &open, &since)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			open = ""
		case err != nil:
			return err
		case open == state, at.Before(since):
			return nil
		case open == UptimeAsleep && state == UptimeFailed && at.Sub(since) <= peerStopWindow:
			return nil
		case open == UptimeFailed && state == UptimeAsleep && at.Sub(since) <= peerStopWindow:
			_, err := tx.Exec(ctx, `UPDATE site_uptime SET state = $2 WHERE id = $1`, id, state)
			return err
		default:
			if _, err := tx.Exec(ctx, `UPDATE site_uptime SET ended_at = $2 WHERE id = $1`, id, at); err != nil {
				return err
			}
		}
		if state == "" {
			return nil
		}
		// A site deleted meanwhile has no history to add to; another node
		// opening an interval at once wins.
		_, err = tx.Exec(ctx, `INSERT INTO site_uptime (site_id, state, started_at)
			SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM sites WHERE id = $1)
			ON CONFLICT (site_id) WHERE ended_at IS NULL DO NOTHING`, siteID, state, at)
		return err
	}))
}

// Uptime returns the site's intervals that overlap [since, until), oldest
// first, clipped to it.
func (s *Store) Uptime(ctx context.Context, siteID string, since, until time.Time) ([]UptimeInterval, error) {
	if validateID("site_id", siteID) != nil {
		return nil, ErrNotFound
	}
	list, err := collectAll[UptimeInterval](s.pool.Query(ctx, `SELECT state,
			greatest(started_at, $2) AS started_at,
			CASE WHEN ended_at IS NULL OR ended_at > $3 THEN NULL ELSE ended_at END AS ended_at
		FROM site_uptime
		WHERE site_id = $1 AND started_at < $3 AND (ended_at IS NULL OR ended_at > $2)
		ORDER BY started_at, id`, siteID, since, until))
	return list, mapError("reading uptime", err)
}

// PruneUptime removes the intervals that ended before retention ago.
func (s *Store) PruneUptime(ctx context.Context, retention time.Duration) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM site_uptime WHERE ended_at < now() - make_interval(secs => $1)`,
		retention.Seconds())
	return tag.RowsAffected(), mapError("pruning uptime", err)
}
