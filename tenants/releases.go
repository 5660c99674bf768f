package tenants

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// Release statuses: building (its image is being built from source),
// pending (recorded, not rolled out yet), live (what the site runs; one a
// site), failed (never served: the build failed, or its container did
// not become ready), superseded (was live, replaced by a newer release)
// and rolled_back (was live, replaced by a rollback).
const (
	ReleaseBuilding   = "building"
	ReleasePending    = "pending"
	ReleaseLive       = "live"
	ReleaseFailed     = "failed"
	ReleaseSuperseded = "superseded"
	ReleaseRolledBack = "rolled_back"
)

// ReleaseStatuses lists every release status.
var ReleaseStatuses = []string{ReleaseBuilding, ReleasePending, ReleaseLive, ReleaseFailed, ReleaseSuperseded, ReleaseRolledBack}

// Release kinds: what made the release.
const (
	// KindBaseline is what a site ran before its first recorded release.
	KindBaseline = "baseline"
	// KindChange is a change of the site, its template or its plan.
	KindChange   = "change"
	KindDeploy   = "deploy"
	KindRollback = "rollback"
	KindRedeploy = "redeploy"
)

// ReleaseKinds lists every release kind.
var ReleaseKinds = []string{KindBaseline, KindChange, KindDeploy, KindRollback, KindRedeploy}

// Release is one numbered version of what a site runs.
type Release struct {
	SiteID string `json:"site_id" db:"site_id"`
	Number int    `json:"number" db:"number"`
	Kind   string `json:"kind" db:"kind"`
	Actor  string `json:"actor" db:"actor"`
	Status string `json:"status" db:"status"`
	// RollbackOf is the release whose spec a rollback took.
	RollbackOf *int          `json:"rollback_of,omitempty" db:"rollback_of"`
	Spec       ReleaseSpec   `json:"-" db:"spec"`
	Source     ReleaseSource `json:"-" db:"source"`
	// Changes are the fields it changes from the release that was live
	// when it was made, secrets masked.
	Changes []FieldChange `json:"changes" db:"changes"`
	// Outcome says how it was rolled out, or why it failed.
	Outcome string `json:"outcome,omitempty" db:"outcome"`
	// Log is the build's output and, for a failed release, the
	// container's last log lines.
	Log         string     `json:"log,omitempty" db:"log"`
	ContainerID string     `json:"container_id,omitempty" db:"container_id"`
	CreatedAt   time.Time  `json:"created_at" db:"created_at"`
	FinishedAt  *time.Time `json:"finished_at,omitempty" db:"finished_at"`
}

// MaxReleaseLog is how much of a build's output and a failed start's
// log a release keeps: the end, where the error is.
const MaxReleaseLog = 64 << 10

const releaseColumns = `site_id, number, kind, actor, status, rollback_of, spec, source, changes,
	outcome, log, container_id, created_at, finished_at`

const liveReleaseSQL = `SELECT ` + releaseColumns + ` FROM releases WHERE site_id = $1 AND status = 'live'`

// NewRelease is a release to record.
type NewRelease struct {
	Kind       string
	Status     string // ReleasePending (the default) or ReleaseBuilding
	RollbackOf *int
	Spec       ReleaseSpec
	Source     ReleaseSource
	// Baseline is what the site runs now, recorded first as its release 1
	// when it has no release yet, so that the change can be undone.
	Baseline *Release
}

// RecordRelease adds the site's next release, its changes those from the
// live release (or the baseline), and returns it. The site's row is
// locked meanwhile, so concurrent releases of a site take consecutive
// numbers.
func (s *Store) RecordRelease(ctx context.Context, actor, siteID string, nr NewRelease) (*Release, error) {
	if validateID("site_id", siteID) != nil {
		return nil, ErrNotFound
	}
	if nr.Status == "" {
		nr.Status = ReleasePending
	}
	var out *Release
	// Audited as a release of the site: the entity id is the site's.
	err := s.write(ctx, change{actor, "create", "release"}, func(tx pgx.Tx) (string, any, any, error) {
		var last int
		if err := tx.QueryRow(ctx, `SELECT coalesce((SELECT max(number) FROM releases WHERE site_id = s.id), 0)
			FROM sites s WHERE s.id = $1 FOR UPDATE`, siteID).Scan(&last); err != nil {
			return "", nil, nil, err
		}
		if last == 0 && nr.Baseline != nil {
			b := nr.Baseline
			if _, err := tx.Exec(ctx, `INSERT INTO releases (site_id, number, kind, actor, status, spec, source, outcome, finished_at)
				VALUES ($1, 1, $2, $3, $4, $5, $6, 'what the site ran before its first release', now())`,
				siteID, KindBaseline, actor, ReleaseLive, nonNilSpec(b.Spec), nonNilSource(b.Source)); err != nil {
				return "", nil, nil, err
			}
			last = 1
		}
		changes := []FieldChange{}
		live, err := collectOne[Release](tx.Query(ctx, liveReleaseSQL, siteID))
		switch {
		case err == nil:
			changes = DiffSpecs(live.Spec, nr.Spec)
		case !errors.Is(err, pgx.ErrNoRows):
			return "", nil, nil, err
		}
		r, err := collectOne[Release](tx.Query(ctx, `INSERT INTO releases
			(site_id, number, kind, actor, status, rollback_of, spec, source, changes)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING `+releaseColumns,
			siteID, last+1, nr.Kind, actor, nr.Status, nr.RollbackOf, nonNilSpec(nr.Spec), nonNilSource(nr.Source), changes))
		if err != nil {
			return "", nil, nil, err
		}
		out = r
		return siteID, nil, r, nil
	})
	return out, err
}

func nonNilSpec(spec ReleaseSpec) ReleaseSpec {
	spec.Env = nonNilEnv(spec.Env)
	return spec
}

func nonNilSource(src ReleaseSource) ReleaseSource {
	src.Env = nonNilEnv(src.Env)
	return src
}

// GetRelease returns the site's release number n.
func (s *Store) GetRelease(ctx context.Context, siteID string, n int) (*Release, error) {
	if validateID("site_id", siteID) != nil {
		return nil, ErrNotFound
	}
	r, err := collectOne[Release](s.pool.Query(ctx, `SELECT `+releaseColumns+` FROM releases
		WHERE site_id = $1 AND number = $2`, siteID, n))
	return r, mapError("getting release", err)
}

// LiveRelease returns the site's live release; ErrNotFound when it has
// none.
func (s *Store) LiveRelease(ctx context.Context, siteID string) (*Release, error) {
	if validateID("site_id", siteID) != nil {
		return nil, ErrNotFound
	}
	r, err := collectOne[Release](s.pool.Query(ctx, liveReleaseSQL, siteID))
	return r, mapError("getting live release", err)
}

// ListReleases returns the site's releases newest first, at most limit
// (1 to 500, default 50), those numbered below before when it is set.
func (s *Store) ListReleases(ctx context.Context, siteID string, before, limit int) ([]Release, error) {
	if validateID("site_id", siteID) != nil {
		return nil, ErrNotFound
	}
	list, err := collectAll[Release](s.pool.Query(ctx, `SELECT `+releaseColumns+` FROM releases
		WHERE site_id = $1 AND ($2 = 0 OR number < $2) ORDER BY number DESC LIMIT $3`,
		siteID, before, Page{Limit: limit}.limit()))
	return list, mapError("listing releases", err)
}

// UnfinishedReleases returns every release still building or pending,
// oldest first: after a restart, those nobody works on were cut short.
func (s *Store) UnfinishedReleases(ctx context.Context) ([]Release, error) {
	list, err := collectAll[Release](s.pool.Query(ctx, `SELECT `+releaseColumns+` FROM releases
		WHERE status IN ('building', 'pending') ORDER BY created_at`))
	return list, mapError("listing unfinished releases", err)
}

// Superseded reports whether a release newer than n of the site is live
// or on its way: n must not go live after it.
func (s *Store) Superseded(ctx context.Context, siteID string, n int) (bool, error) {
	var newer bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM releases WHERE site_id = $1 AND number > $2
		AND status IN ('building', 'pending', 'live'))`, siteID, n).Scan(&newer)
	return newer, mapError("checking for newer releases", err)
}

// SetReleaseImage records the image built for a building release, with
// the build's output, and makes it pending.
func (s *Store) SetReleaseImage(ctx context.Context, siteID string, n int, image, log string) error {
	return unavailable("recording built image", pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		r, err := collectOne[Release](tx.Query(ctx, `SELECT `+releaseColumns+` FROM releases
			WHERE site_id = $1 AND number = $2 AND status = 'building' FOR UPDATE`, siteID, n))
		if err != nil {
			return mapError("recording built image", err)
		}
		r.Spec.Image = image
		if live, err := collectOne[Release](tx.Query(ctx, liveReleaseSQL, siteID)); err == nil {
			r.Changes = DiffSpecs(live.Spec, r.Spec)
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return mapError("recording built image", err)
		}
		_, err = tx.Exec(ctx, `UPDATE releases SET spec = $3, changes = $4, status = 'pending', log = $5
			WHERE site_id = $1 AND number = $2`, siteID, n, nonNilSpec(r.Spec), r.Changes, tail(log, MaxReleaseLog))
		return mapError("recording built image", err)
	}))
}

// FinishRelease ends a release that did not go live: failed (with why,
// and the log), or superseded by a newer one before it rolled out. A
// release that is no longer building or pending is left as it is.
func (s *Store) FinishRelease(ctx context.Context, siteID string, n int, status, outcome, log string) error {
	_, err := s.pool.Exec(ctx, `UPDATE releases SET status = $3, outcome = $4,
		log = CASE WHEN $5 = '' THEN log ELSE right(log || $5, $6) END, finished_at = now()
		WHERE site_id = $1 AND number = $2 AND status IN ('building', 'pending')`,
		siteID, n, status, outcome, log, MaxReleaseLog)
	return mapError("finishing release", err)
}

// GoLive makes release n the site's live one, serving from containerID
// ("" while the site is stopped); the one live before is superseded, or
// rolled back when n is a rollback.
func (s *Store) GoLive(ctx context.Context, siteID string, n int, containerID, outcome string) error {
	return unavailable("making release live", pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var kind string
		if err := tx.QueryRow(ctx, `SELECT kind FROM releases WHERE site_id = $1 AND number = $2 FOR UPDATE`,
			siteID, n).Scan(&kind); err != nil {
			return mapError("making release live", err)
		}
		left := ReleaseSuperseded
		if kind == KindRollback {
			left = ReleaseRolledBack
		}
		if _, err := tx.Exec(ctx, `UPDATE releases SET status = $3 WHERE site_id = $1 AND status = 'live' AND number <> $2`,
			siteID, n, left); err != nil {
			return mapError("making release live", err)
		}
		_, err := tx.Exec(ctx, `UPDATE releases SET status = 'live', container_id = $3, outcome = $4,
			finished_at = coalesce(finished_at, now()) WHERE site_id = $1 AND number = $2`, siteID, n, containerID, outcome)
		return mapError("making release live", err)
	}))
}

// KeptImages returns the images the site's last keep releases run, and
// those of its live and unfinished ones: the build images not to remove.
func (s *Store) KeptImages(ctx context.Context, siteID string, keep int) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT spec->>'image' FROM (SELECT spec FROM releases WHERE site_id = $1
			ORDER BY number DESC LIMIT $2) r
		UNION SELECT spec->>'image' FROM releases WHERE site_id = $1 AND status IN ('building', 'pending', 'live')`,
		siteID, keep)
	if err != nil {
		return nil, mapError("listing kept images", err)
	}
	images, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return images, mapError("listing kept images", err)
}

// tail returns the last n bytes of s at most, cut at a line.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	for i := 0; i < len(s) && i < 1024; i++ {
		if s[i] == '\n' {
			return s[i+1:]
		}
	}
	return s
}
