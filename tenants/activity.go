package tenants

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// forgetNodesAfter is how long a node that stopped reporting keeps its
// rows; long after it stopped counting, so an operator can still see it.
const forgetNodesAfter = time.Hour

// SiteActivity is a node's use of a site, or several nodes' together.
type SiteActivity struct {
	SiteID string
	// InFlight and Upgraded count requests and open upgraded connections.
	InFlight, Upgraded int64
	// IdleFor is how long ago the last request or connection began or
	// ended. Durations, not times, cross between nodes: the database's
	// clock is the only one they share.
	IdleFor time.Duration
	// ContainerID is the container the node sends the site's requests to
	// ("" for none), and Draining counts those it has in flight on the
	// site's other containers (a rollout's old one); a node's own report
	// only.
	ContainerID string
	Draining    int64
	// ReplicaIDs are every replica the node balances the site's requests
	// over (ContainerID's first), for a scale-down's drain; a node's own
	// report only.
	ReplicaIDs []string
}

const (
	heartbeatSQL = `INSERT INTO nodes (id, seen_at) VALUES ($1, now())
	ON CONFLICT (id) DO UPDATE SET seen_at = now()`

	reportSQL = `INSERT INTO site_activity (node_id, site_id, in_flight, upgraded, last_active_at, container_id, draining, replica_ids, reported_at)
	SELECT $1, $2::uuid, $3, $4, now() - make_interval(secs => $5), $6, $7, $8, now() WHERE EXISTS (SELECT 1 FROM sites WHERE id = $2::uuid)
	ON CONFLICT (node_id, site_id) DO UPDATE SET in_flight = excluded.in_flight,
		upgraded = excluded.upgraded, last_active_at = excluded.last_active_at,
		container_id = excluded.container_id, draining = excluded.draining, replica_ids = excluded.replica_ids,
		reported_at = excluded.reported_at`

	// A report older than peerUseFresh is of a site the node no longer
	// serves: it reports every site it serves about once a second.
	peersUseSQL = `SELECT EXISTS (SELECT 1 FROM site_activity a JOIN nodes n ON n.id = a.node_id
	WHERE a.site_id = $2 AND a.node_id <> $1 AND n.seen_at > now() - make_interval(secs => $4)
	AND a.reported_at > now() - make_interval(secs => $5) AND (a.container_id = $3 OR $3 = ANY (a.replica_ids) OR a.draining > 0))`

	forgetNodesSQL = `DELETE FROM nodes WHERE seen_at < now() - make_interval(secs => $1)`

	// Counts come only from fresh reports: a node stops reporting a site
	// it no longer serves (nothing in flight, no container), and the last
	// counts it reported must not keep the site awake forever.
	peersSQL = `SELECT a.site_id::text,
		coalesce(sum(a.in_flight) FILTER (WHERE a.reported_at > now() - make_interval(secs => $3)), 0)::bigint,
		coalesce(sum(a.upgraded) FILTER (WHERE a.reported_at > now() - make_interval(secs => $3)), 0)::bigint,
		extract(epoch FROM now() - max(a.last_active_at))::float8
	FROM site_activity a JOIN nodes n ON n.id = a.node_id
	WHERE a.node_id <> $1 AND n.seen_at > now() - make_interval(secs => $2)
	GROUP BY a.site_id`
)

// ShareActivity records that node is alive and how it uses sites, and
// returns how the other nodes that reported within live use them (per
// site, their in-flight and upgraded counts summed and the shortest idle
// time), all in one round trip. Sites deleted meanwhile are skipped.
func (s *Store) ShareActivity(ctx context.Context, node string, mine []SiteActivity, live time.Duration) ([]SiteActivity, error) {
	batch := &pgx.Batch{}
	batch.Queue(heartbeatSQL, node)
	for _, a := range mine {
		if validateID("site_id", a.SiteID) != nil {
			continue
		}
		replicas := a.ReplicaIDs
		if replicas == nil {
			replicas = []string{} // the column is NOT NULL
		}
		batch.Queue(reportSQL, node, a.SiteID, a.InFlight, a.Upgraded, a.IdleFor.Seconds(), a.ContainerID, a.Draining, replicas)
	}
	batch.Queue(forgetNodesSQL, forgetNodesAfter.Seconds())
	var peers []SiteActivity
	batch.Queue(peersSQL, node, live.Seconds(), peerUseFresh.Seconds()).Query(func(rows pgx.Rows) error {
		var a SiteActivity
		var idle float64
		_, err := pgx.ForEachRow(rows, []any{&a.SiteID, &a.InFlight, &a.Upgraded, &idle}, func() error {
			a.IdleFor = time.Duration(idle * float64(time.Second))
			peers = append(peers, a)
			return nil
		})
		return err
	})
	if err := s.pool.SendBatch(ctx, batch).Close(); err != nil {
		return nil, mapError("sharing site activity", err)
	}
	return peers, nil
}

// peerUseFresh is how recent a node's report of a site must be to count
// for PeersUse.
const peerUseFresh = 3 * time.Second

// PeersUse reports whether a node other than node (any, for "") that
// reported within live still sends the site's requests to containerID,
// or has requests in flight on a container it no longer sends them to.
func (s *Store) PeersUse(ctx context.Context, node, siteID, containerID string, live time.Duration) (bool, error) {
	if validateID("site_id", siteID) != nil {
		return false, nil
	}
	var used bool
	err := s.pool.QueryRow(ctx, peersUseSQL, node, siteID, containerID, live.Seconds(), peerUseFresh.Seconds()).Scan(&used)
	return used, mapError("asking how nodes use a container", err)
}
