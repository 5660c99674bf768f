package tenants

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// The data of pre-warms (issue 15): a site's wake-ups, read per hour
// slot of past weeks, and the record of the pre-warms made.
//
// A wake-up is a first request that found the site asleep: a cold start
// in the per-site figures (the starts requests waited for; a pre-warm's
// own start is not one), or the first visitor of a pre-warmed slot
// (prewarm_events.first_request_at), so that a pre-warm that worked does
// not erase its own evidence.

// PrewarmHistory is a site that may be pre-warmed, with its wake-ups in
// the slots looked at: the earliest of each slot.
type PrewarmHistory struct {
	SiteID        string
	FirstRequests []time.Time
}

// PrewarmEvent is one pre-warm: the hour slot it was for, the model's
// probability, when the site was ready, and when the slot's first
// visitor came (nil: none yet, or none before the site slept again).
type PrewarmEvent struct {
	ID             int64      `json:"id" db:"id"`
	SiteID         string     `json:"site_id" db:"site_id"`
	SlotStart      time.Time  `json:"slot_start" db:"slot_start"`
	Probability    float64    `json:"probability" db:"probability"`
	PrewarmedAt    time.Time  `json:"prewarmed_at" db:"prewarmed_at"`
	FirstRequestAt *time.Time `json:"first_request_at,omitempty" db:"first_request_at"`
}

// PrewarmFirstRequest is the first visitor of the pre-warm EventID.
type PrewarmFirstRequest struct {
	EventID int64
	At      time.Time
}

const (
	// The hour slot $1 of each of the $2 weeks before it; of each, a
	// site's earliest wake-up. Only sites whose switch is on, that serve
	// (the site active, its customer active or past due) and that no
	// node records as running.
	prewarmHistorySQL = `WITH windows AS (
		SELECT $1::timestamptz - make_interval(weeks => w) AS from_at FROM generate_series(1, $2::int) AS w
	), wakeups AS (
		SELECT f.site_id, min(f.at) AS at FROM site_figures f
		JOIN windows w ON f.at >= w.from_at AND f.at < w.from_at + interval '1 hour'
		WHERE f.cold_starts > 0 GROUP BY f.site_id, w.from_at
		UNION ALL
		SELECT e.site_id, min(e.first_request_at) FROM prewarm_events e
		JOIN windows w ON e.first_request_at >= w.from_at AND e.first_request_at < w.from_at + interval '1 hour'
		GROUP BY e.site_id, w.from_at
	)
	SELECT s.id::text, array_agg(k.at ORDER BY k.at)
	FROM wakeups k
	JOIN sites s ON s.id = k.site_id
	JOIN customers c ON c.id = s.customer_id
	LEFT JOIN site_runtime r ON r.site_id = s.id
	WHERE s.prewarm AND s.status = $3 AND c.status IN ($4, $5)
		AND coalesce(r.state, '') NOT IN ('running', 'starting')
	GROUP BY s.id`

	recordPrewarmSQL = `INSERT INTO prewarm_events (site_id, slot_start, probability, prewarmed_at)
	VALUES ($1, $2, $3, $4) ON CONFLICT (site_id, slot_start) DO NOTHING RETURNING id`

	setPrewarmFirstRequestSQL = `UPDATE prewarm_events SET first_request_at = $2
	WHERE id = $1 AND first_request_at IS NULL`

	sitePrewarmsSQL = `SELECT id, site_id::text, slot_start, probability, prewarmed_at, first_request_at
	FROM prewarm_events WHERE site_id = $1 ORDER BY slot_start DESC, id DESC LIMIT $2`

	prunePrewarmsSQL = `DELETE FROM prewarm_events WHERE prewarmed_at < $1`
)

// PrewarmHistory returns the sites that may be pre-warmed for the hour
// slot beginning at slot, each with its wake-ups in the same hour 1 to
// weeks weeks before; sites with none are left out.
func (s *Store) PrewarmHistory(ctx context.Context, slot time.Time, weeks int) ([]PrewarmHistory, error) {
	rows, err := s.pool.Query(ctx, prewarmHistorySQL, slot, weeks, SiteActive, CustomerActive, CustomerPastDue)
	if err != nil {
		return nil, mapError("reading wake-ups", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (PrewarmHistory, error) {
		var h PrewarmHistory
		err := row.Scan(&h.SiteID, &h.FirstRequests)
		return h, err
	})
	return out, mapError("reading wake-ups", err)
}

// RecordPrewarm records a pre-warm of the site for slot; recorded is
// false when that slot of the site was pre-warmed already.
func (s *Store) RecordPrewarm(ctx context.Context, siteID string, slot time.Time, probability float64, at time.Time) (id int64, recorded bool, err error) {
	if err := validateID("site_id", siteID); err != nil {
		return 0, false, err
	}
	err = s.pool.QueryRow(ctx, recordPrewarmSQL, siteID, slot, probability, at).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, mapError("recording a pre-warm", err)
	}
	return id, true, nil
}

// SetPrewarmFirstRequests records the first visitors of pre-warms, in
// one round trip; a pre-warm that has one keeps it.
func (s *Store) SetPrewarmFirstRequests(ctx context.Context, firsts []PrewarmFirstRequest) error {
	if len(firsts) == 0 {
		return nil
	}
	batch := &pgx.Batch{}
	for _, f := range firsts {
		batch.Queue(setPrewarmFirstRequestSQL, f.EventID, f.At)
	}
	return mapError("recording first visitors of pre-warms", s.pool.SendBatch(ctx, batch).Close())
}

// SitePrewarms returns the site's last limit pre-warms, the newest
// first.
func (s *Store) SitePrewarms(ctx context.Context, siteID string, limit int) ([]PrewarmEvent, error) {
	if err := validateID("site_id", siteID); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, sitePrewarmsSQL, siteID, limit)
	if err != nil {
		return nil, mapError("listing pre-warms", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[PrewarmEvent])
	return out, mapError("listing pre-warms", err)
}

// PrunePrewarms removes the pre-warms made before before.
func (s *Store) PrunePrewarms(ctx context.Context, before time.Time) error {
	_, err := s.pool.Exec(ctx, prunePrewarmsSQL, before)
	return mapError("pruning pre-warms", err)
}
