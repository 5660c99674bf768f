package tenants

import (
	"context"

	"github.com/jackc/pgx/v5"
)

const runtimeColumns = `site_id, container_id, state, upstream, last_error, last_started_at,
	last_active_at, failure_reason, failure_exit_code, failure_log_tail, failed_at, updated_at, health`

// SaveRuntimes upserts a batch of runtime records in one round trip. It is
// how the provisioner's in-memory state reaches the database: in batches,
// never per request. Records of sites deleted meanwhile are skipped. A
// record with a failure (FailedAt set) replaces the recorded one, a
// running one clears it, any other keeps it.
func (s *Store) SaveRuntimes(ctx context.Context, runtimes []SiteRuntime) error {
	if len(runtimes) == 0 {
		return nil
	}
	batch := &pgx.Batch{}
	for _, r := range runtimes {
		batch.Queue(`INSERT INTO site_runtime (site_id, container_id, state, upstream, last_error,
				last_started_at, last_active_at, failure_reason, failure_exit_code, failure_log_tail, failed_at, updated_at, health)
			SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, now(), $12 WHERE EXISTS (SELECT 1 FROM sites WHERE id = $1)
			ON CONFLICT (site_id) DO UPDATE SET container_id = excluded.container_id,
				state = excluded.state, upstream = excluded.upstream, last_error = excluded.last_error,
				last_started_at = coalesce(excluded.last_started_at, site_runtime.last_started_at),
				last_active_at = greatest(excluded.last_active_at, site_runtime.last_active_at),
				failure_reason = CASE WHEN excluded.failed_at IS NOT NULL THEN excluded.failure_reason
					WHEN excluded.state = 'running' THEN '' ELSE site_runtime.failure_reason END,
				failure_exit_code = CASE WHEN excluded.failed_at IS NOT NULL THEN excluded.failure_exit_code
					WHEN excluded.state = 'running' THEN NULL ELSE site_runtime.failure_exit_code END,
				failure_log_tail = CASE WHEN excluded.failed_at IS NOT NULL THEN excluded.failure_log_tail
					WHEN excluded.state = 'running' THEN '' ELSE site_runtime.failure_log_tail END,
				failed_at = CASE WHEN excluded.failed_at IS NOT NULL THEN excluded.failed_at
					WHEN excluded.state = 'running' THEN NULL ELSE site_runtime.failed_at END,
				updated_at = now(), health = excluded.health`,
			r.SiteID, r.ContainerID, r.State, r.Upstream, r.LastError, r.LastStartedAt, r.LastActiveAt,
			r.FailureReason, r.FailureExitCode, r.FailureLogTail, r.FailedAt, r.Health)
	}
	return mapError("saving site runtime", s.pool.SendBatch(ctx, batch).Close())
}

// GetRuntime returns what was last recorded of the site's container.
func (s *Store) GetRuntime(ctx context.Context, siteID string) (*SiteRuntime, error) {
	if validateID("site_id", siteID) != nil {
		return nil, ErrNotFound
	}
	r, err := collectOne[SiteRuntime](s.pool.Query(ctx, `SELECT `+runtimeColumns+` FROM site_runtime WHERE site_id = $1`, siteID))
	return r, mapError("getting site runtime", err)
}

// ListRuntimes returns every runtime record.
func (s *Store) ListRuntimes(ctx context.Context) ([]SiteRuntime, error) {
	list, err := collectAll[SiteRuntime](s.pool.Query(ctx, `SELECT `+runtimeColumns+` FROM site_runtime ORDER BY site_id`))
	return list, mapError("listing site runtime", err)
}
