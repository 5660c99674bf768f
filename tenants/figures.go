package tenants

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// SiteBucket is what a site did in a span of time: one node's minute
// (SiteMinute), or a step of a window with every node's added up
// (SiteFigures).
type SiteBucket struct {
	Requests, Errors int64
	// Latency counts the requests per bucket of a fixed latency
	// histogram (the same buckets for every node and minute, so that
	// they add up bucket by bucket).
	Latency []int64
	// ColdStarts are the container starts requests waited for, and
	// ColdStartMs their durations added up.
	ColdStarts  int64
	ColdStartMs float64
	// CPUPercent (of one CPU) and MemoryBytes are the container's as
	// sampled at a minute's end; over a step, CPU the mean and memory the
	// highest of its sampled minutes (of a minute sampled by several
	// nodes on one engine, the highest node's). nil when none was.
	CPUPercent  *float64
	MemoryBytes *int64
}

// SiteMinute is what one node saw of a site in one minute.
type SiteMinute struct {
	SiteID string
	// At is the minute's start.
	At time.Time
	SiteBucket
}

// PlatformBucket is what the platform did in a span of time: one node's
// minute (PlatformMinute), or a step of a window with every node's added
// up (PlatformFigures).
type PlatformBucket struct {
	// ColdStarts and Failures are the container starts requests waited
	// for that succeeded and that failed.
	ColdStarts, Failures int64
	// Running is the number of site containers running at a minute's end;
	// over a step, the most. Nodes share one engine, so of several nodes
	// the highest. nil when no node asked the engine.
	Running *int64
}

// PlatformMinute is what one node saw of the platform in one minute.
type PlatformMinute struct {
	At time.Time
	PlatformBucket
}

// FiguresBatch is one node's roll-up.
type FiguresBatch struct {
	Sites    []SiteMinute
	Platform []PlatformMinute
	// Known are the sites the node keeps figures of; SaveFigures answers
	// those that no longer exist, for the node to forget.
	Known []string
	// Before is the time before which every node's figures are pruned.
	Before time.Time
}

const (
	saveSiteMinuteSQL = `INSERT INTO site_figures (site_id, node_id, at, requests, errors, latency,
		cold_starts, cold_start_ms, cpu_percent, memory_bytes)
	SELECT $1::uuid, $2, $3, $4, $5, $6::bigint[], $7, $8, $9, $10 WHERE EXISTS (SELECT 1 FROM sites WHERE id = $1::uuid)
	ON CONFLICT (site_id, at, node_id) DO UPDATE SET requests = site_figures.requests + excluded.requests,
		errors = site_figures.errors + excluded.errors,
		latency = ARRAY(SELECT coalesce(a, 0) + coalesce(b, 0)
			FROM unnest(site_figures.latency, excluded.latency) WITH ORDINALITY AS l(a, b, i) ORDER BY i),
		cold_starts = site_figures.cold_starts + excluded.cold_starts,
		cold_start_ms = site_figures.cold_start_ms + excluded.cold_start_ms,
		cpu_percent = coalesce(excluded.cpu_percent, site_figures.cpu_percent),
		memory_bytes = coalesce(excluded.memory_bytes, site_figures.memory_bytes)`

	savePlatformMinuteSQL = `INSERT INTO platform_figures (node_id, at, running, cold_starts, failures)
	VALUES ($1, $2, $3, $4, $5)
	ON CONFLICT (at, node_id) DO UPDATE SET running = coalesce(excluded.running, platform_figures.running),
		cold_starts = platform_figures.cold_starts + excluded.cold_starts,
		failures = platform_figures.failures + excluded.failures`

	pruneSiteFiguresSQL     = `DELETE FROM site_figures WHERE at < $1`
	prunePlatformFiguresSQL = `DELETE FROM platform_figures WHERE at < $1`

	goneSitesSQL = `SELECT k.id::text FROM unnest($1::uuid[]) AS k(id)
	WHERE NOT EXISTS (SELECT 1 FROM sites s WHERE s.id = k.id)`
)

// SaveFigures saves a node's minutes and prunes every node's figures from
// before b.Before, in one round trip and one transaction: a failed save
// leaves nothing behind, to be retried whole. A minute of a node saved
// twice adds up; minutes of sites deleted meanwhile are skipped. It
// returns the Known sites that no longer exist.
func (s *Store) SaveFigures(ctx context.Context, node string, b FiguresBatch) (gone []string, err error) {
	batch := &pgx.Batch{}
	for _, m := range b.Sites {
		if validateID("site_id", m.SiteID) != nil {
			continue
		}
		batch.Queue(saveSiteMinuteSQL, m.SiteID, node, m.At, m.Requests, m.Errors, nonNilCounts(m.Latency),
			m.ColdStarts, m.ColdStartMs, m.CPUPercent, m.MemoryBytes)
	}
	for _, m := range b.Platform {
		batch.Queue(savePlatformMinuteSQL, node, m.At, m.Running, m.ColdStarts, m.Failures)
	}
	if !b.Before.IsZero() {
		batch.Queue(pruneSiteFiguresSQL, b.Before)
		batch.Queue(prunePlatformFiguresSQL, b.Before)
	}
	known := make([]string, 0, len(b.Known))
	for _, id := range b.Known {
		if validateID("site_id", id) == nil {
			known = append(known, id)
		}
	}
	if len(known) > 0 {
		batch.Queue(goneSitesSQL, known).Query(func(rows pgx.Rows) error {
			var err error
			gone, err = pgx.CollectRows(rows, pgx.RowTo[string])
			return err
		})
	}
	if batch.Len() == 0 {
		return nil, nil
	}
	if err := s.pool.SendBatch(ctx, batch).Close(); err != nil {
		return nil, mapError("saving figures", err)
	}
	return gone, nil
}

// nonNilCounts keeps an empty histogram from becoming SQL NULL, which the
// column refuses: no requests is {}.
func nonNilCounts(c []int64) []int64 {
	if c == nil {
		return []int64{}
	}
	return c
}

// The step of a row: which of the window's steps, counted from $2 in
// steps of $3 seconds, its minute falls in.
const (
	siteCountsSQL = `SELECT floor(extract(epoch FROM at - $2::timestamptz)::float8 / $3::float8)::int,
		sum(requests)::bigint, sum(errors)::bigint, sum(cold_starts)::bigint, sum(cold_start_ms)::float8
	FROM site_figures WHERE site_id = $1 AND at >= $2 AND at < $4
	GROUP BY 1`

	siteLatencySQL = `SELECT floor(extract(epoch FROM f.at - $2::timestamptz)::float8 / $3::float8)::int,
		l.i::int, sum(l.n)::bigint
	FROM site_figures f, unnest(f.latency) WITH ORDINALITY AS l(n, i)
	WHERE f.site_id = $1 AND f.at >= $2 AND f.at < $4
	GROUP BY 1, 2`

	siteSamplesSQL = `SELECT floor(extract(epoch FROM at - $2::timestamptz)::float8 / $3::float8)::int,
		avg(cpu)::float8, max(memory)::bigint
	FROM (SELECT at, max(cpu_percent) AS cpu, max(memory_bytes) AS memory FROM site_figures
		WHERE site_id = $1 AND at >= $2 AND at < $4 AND memory_bytes IS NOT NULL GROUP BY at) m
	GROUP BY 1`

	platformFiguresSQL = `SELECT floor(extract(epoch FROM at - $1::timestamptz)::float8 / $2::float8)::int,
		sum(cold_starts)::bigint, sum(failures)::bigint, max(running)::bigint
	FROM platform_figures WHERE at >= $1 AND at < $3
	GROUP BY 1`
)

// SiteFigures returns the site's figures in n steps of step from since,
// every node's added up, in one round trip.
func (s *Store) SiteFigures(ctx context.Context, siteID string, since time.Time, step time.Duration, n int) ([]SiteBucket, error) {
	if validateID("site_id", siteID) != nil {
		return nil, ErrNotFound
	}
	out := make([]SiteBucket, max(n, 0))
	if n <= 0 || step <= 0 {
		return out, nil
	}
	args := []any{siteID, since, step.Seconds(), since.Add(time.Duration(n) * step)}
	at := func(i int) *SiteBucket {
		if i < 0 || i >= n {
			return nil
		}
		return &out[i]
	}
	batch := &pgx.Batch{}
	batch.Queue(siteCountsSQL, args...).Query(func(rows pgx.Rows) error {
		var i int
		var b SiteBucket
		_, err := pgx.ForEachRow(rows, []any{&i, &b.Requests, &b.Errors, &b.ColdStarts, &b.ColdStartMs}, func() error {
			if o := at(i); o != nil {
				o.Requests, o.Errors, o.ColdStarts, o.ColdStartMs = b.Requests, b.Errors, b.ColdStarts, b.ColdStartMs
			}
			return nil
		})
		return err
	})
	batch.Queue(siteLatencySQL, args...).Query(func(rows pgx.Rows) error {
		var i, bucket int
		var count int64
		_, err := pgx.ForEachRow(rows, []any{&i, &bucket, &count}, func() error {
			if o := at(i); o != nil && bucket >= 1 {
				for len(o.Latency) < bucket {
					o.Latency = append(o.Latency, 0)
				}
				o.Latency[bucket-1] = count
			}
			return nil
		})
		return err
	})
	batch.Queue(siteSamplesSQL, args...).Query(func(rows pgx.Rows) error {
		var i int
		var cpu *float64
		var memory *int64
		_, err := pgx.ForEachRow(rows, []any{&i, &cpu, &memory}, func() error {
			if o := at(i); o != nil {
				o.CPUPercent, o.MemoryBytes = cpu, memory
			}
			cpu, memory = nil, nil // pgx scans into a pointer it finds set
			return nil
		})
		return err
	})
	if err := s.pool.SendBatch(ctx, batch).Close(); err != nil {
		return nil, mapError("reading site figures", err)
	}
	return out, nil
}

// PlatformFigures returns the platform's figures in n steps of step from
// since, every node's added up.
func (s *Store) PlatformFigures(ctx context.Context, since time.Time, step time.Duration, n int) ([]PlatformBucket, error) {
	out := make([]PlatformBucket, max(n, 0))
	if n <= 0 || step <= 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, platformFiguresSQL, since, step.Seconds(), since.Add(time.Duration(n)*step))
	if err != nil {
		return nil, mapError("reading platform figures", err)
	}
	var i int
	var b PlatformBucket
	_, err = pgx.ForEachRow(rows, []any{&i, &b.ColdStarts, &b.Failures, &b.Running}, func() error {
		if i >= 0 && i < n {
			out[i] = b
		}
		b.Running = nil // pgx scans into a pointer it finds set
		return nil
	})
	return out, mapError("reading platform figures", err)
}
