package tenants

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// StaleResponse is the copy in the database of a site's last good
// response to one request (see package stale): what other nodes and a
// restarted one serve while the site starts.
type StaleResponse struct {
	SiteID   string
	Key      string // method, host, path and query
	Status   int
	Header   map[string][]string
	Body     []byte
	StoredAt time.Time
}

const (
	// A copy older than the one kept (another node's, written after
	// this one was taken) is left alone.
	saveStaleSQL = `INSERT INTO stale_responses (site_id, key, status, header, body, stored_at)
	SELECT $1::uuid, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM sites WHERE id = $1::uuid)
	ON CONFLICT (site_id, key) DO UPDATE SET status = excluded.status, header = excluded.header,
		body = excluded.body, stored_at = excluded.stored_at
	WHERE stale_responses.stored_at <= excluded.stored_at`

	// Each site within its bound, counted as in memory (body, key and
	// header), the most recently stored kept.
	trimStaleSQL = `DELETE FROM stale_responses s USING (
		SELECT site_id, key, sum(octet_length(body) + octet_length(key) + octet_length(header::text))
			OVER (PARTITION BY site_id ORDER BY stored_at DESC, key) AS upto
		FROM stale_responses WHERE site_id = ANY($1::uuid[])) r
	WHERE s.site_id = r.site_id AND s.key = r.key AND r.upto > $2`

	getStaleSQL = `SELECT site_id::text, key, status, header, body, stored_at
	FROM stale_responses WHERE site_id = $1 AND key = $2`

	staleStatsSQL = `SELECT count(*), coalesce(sum(octet_length(body) + octet_length(key) + octet_length(header::text)), 0)::bigint
	FROM stale_responses WHERE site_id = $1`
)

// SaveStaleResponses writes a batch of copies in one round trip and trims
// each site of the batch to maxSiteBytes, dropping its oldest copies
// first. It is the write-behind of the nodes' memory, never a request's
// own write. Copies of sites deleted meanwhile are skipped.
func (s *Store) SaveStaleResponses(ctx context.Context, responses []StaleResponse, maxSiteBytes int64) error {
	if len(responses) == 0 {
		return nil
	}
	batch := &pgx.Batch{}
	sites := make([]string, 0, len(responses))
	seen := make(map[string]bool, len(responses))
	for _, r := range responses {
		if validateID("site_id", r.SiteID) != nil {
			continue
		}
		header := r.Header
		if header == nil {
			header = map[string][]string{}
		}
		batch.Queue(saveStaleSQL, r.SiteID, r.Key, r.Status, header, r.Body, r.StoredAt)
		if !seen[r.SiteID] {
			seen[r.SiteID] = true
			sites = append(sites, r.SiteID)
		}
	}
	batch.Queue(trimStaleSQL, sites, maxSiteBytes)
	return mapError("saving stale responses", s.pool.SendBatch(ctx, batch).Close())
}

// GetStaleResponse returns the site's copy under key, ErrNotFound if
// there is none.
func (s *Store) GetStaleResponse(ctx context.Context, siteID, key string) (*StaleResponse, error) {
	if validateID("site_id", siteID) != nil {
		return nil, ErrNotFound
	}
	r := new(StaleResponse)
	err := s.pool.QueryRow(ctx, getStaleSQL, siteID, key).Scan(&r.SiteID, &r.Key, &r.Status, &r.Header, &r.Body, &r.StoredAt)
	if err != nil {
		return nil, mapError("getting stale response", err)
	}
	return r, nil
}

// StaleStats returns how many copies of the site's responses the
// database holds and their size, counted as the bound counts them.
func (s *Store) StaleStats(ctx context.Context, siteID string) (responses int, bytes int64, err error) {
	if validateID("site_id", siteID) != nil {
		return 0, 0, ErrNotFound
	}
	err = s.pool.QueryRow(ctx, staleStatsSQL, siteID).Scan(&responses, &bytes)
	return responses, bytes, mapError("counting stale responses", err)
}
