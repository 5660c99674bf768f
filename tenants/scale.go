package tenants

import (
	"context"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
)

// The history of the autoscaler's decisions (issue 14): one row per
// change of a site's replica count, for the API and the UI. It is a
// history to read, not the state of record (the runtime's replica count
// is), so it is kept short: each insert prunes the site's rows past
// MaxScaleEvents, which bounds the table by the number of sites however
// long a site flaps.

// MaxScaleEvents is how many scale events the store keeps per site.
const MaxScaleEvents = 200

// ScaleEvent is one scaling decision: on which node, from and to how
// many replicas, why, and the in-flight average it was made on.
type ScaleEvent struct {
	ID           int64     `json:"id" db:"id"`
	SiteID       string    `json:"site_id" db:"site_id"`
	At           time.Time `json:"at" db:"at"`
	Node         string    `json:"node" db:"node"`
	FromReplicas int       `json:"from_replicas" db:"from_replicas"`
	ToReplicas   int       `json:"to_replicas" db:"to_replicas"`
	Reason       string    `json:"reason" db:"reason"`
	InFlight     float64   `json:"in_flight" db:"in_flight"`
}

const (
	// An At of zero is the database's now().
	recordScaleEventSQL = `INSERT INTO scale_events (site_id, at, node, from_replicas, to_replicas, reason, in_flight)
	VALUES ($1, coalesce($2, now()), $3, $4, $5, $6, $7) RETURNING id, at`

	// The site's rows past the newest $2 go.
	pruneScaleEventsSQL = `DELETE FROM scale_events WHERE site_id = $1 AND id IN (
		SELECT id FROM scale_events WHERE site_id = $1 ORDER BY at DESC, id DESC OFFSET $2)`

	siteScaleEventsSQL = `SELECT id, site_id::text, at, node, from_replicas, to_replicas, reason, in_flight
	FROM scale_events WHERE site_id = $1 ORDER BY at DESC, id DESC LIMIT $2`
)

// RecordScaleEvent stores e (its At zero for now) and fills in its id and
// time; the site's events past the newest MaxScaleEvents go in the same
// transaction.
func (s *Store) RecordScaleEvent(ctx context.Context, e *ScaleEvent) error {
	if err := validateScaleEvent(e); err != nil {
		return err
	}
	var at *time.Time
	if !e.At.IsZero() {
		at = &e.At
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, recordScaleEventSQL, e.SiteID, at, e.Node, e.FromReplicas, e.ToReplicas,
			e.Reason, e.InFlight).Scan(&e.ID, &e.At); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, pruneScaleEventsSQL, e.SiteID, MaxScaleEvents)
		return err
	})
	return mapError("recording a scale event", err)
}

func validateScaleEvent(e *ScaleEvent) error {
	if err := validateID("site_id", e.SiteID); err != nil {
		return err
	}
	if err := checkText("node", e.Node, MaxNameLen); err != nil {
		return err
	}
	if err := checkText("reason", e.Reason, MaxScaleReasonLen); err != nil {
		return err
	}
	switch {
	case e.FromReplicas < 0 || e.FromReplicas > MaxReplicas:
		return invalid("from_replicas", "must be from 0 to %d", MaxReplicas)
	case e.ToReplicas < 0 || e.ToReplicas > MaxReplicas:
		return invalid("to_replicas", "must be from 0 to %d", MaxReplicas)
	case e.InFlight < 0 || math.IsNaN(e.InFlight) || math.IsInf(e.InFlight, 0):
		return invalid("in_flight", "must be a number, 0 or more")
	}
	return nil
}

// SiteScaleEvents returns the site's last limit scale events, the newest
// first.
func (s *Store) SiteScaleEvents(ctx context.Context, siteID string, limit int) ([]ScaleEvent, error) {
	if err := validateID("site_id", siteID); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, siteScaleEventsSQL, siteID, limit)
	if err != nil {
		return nil, mapError("listing scale events", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[ScaleEvent])
	return out, mapError("listing scale events", err)
}
