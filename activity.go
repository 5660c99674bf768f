package multitenant

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/agistaffers/caddy-multitenant/provisioner"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// How nodes on one database share their use of sites: every
// activityInterval each reports, in one batch, its in-flight and upgraded
// counts and last activity per site it serves, and reads the others'. A
// node that has not reported for peerTTL (it died, or lost the database)
// no longer counts.
const (
	activityInterval = time.Second
	peerTTL          = 10 * time.Second
)

// newNodeID names this process among the nodes sharing the database.
func newNodeID() string {
	host, _ := os.Hostname()
	var b [4]byte
	rand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}

// shareActivity tells the other nodes how this one uses sites and tells
// the provisioner how they do, until ctx ends. What the others said is
// kept through a failed round, for peerTTL at most: a database outage
// must neither stop sites they serve at once nor keep every site awake.
func (p *platform) shareActivity(ctx context.Context) {
	ticker := time.NewTicker(activityInterval)
	defer ticker.Stop()
	var heard time.Time
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		now := time.Now()
		roundCtx, cancel := context.WithTimeout(ctx, activityInterval)
		mine := p.prov.Activity()
		peers, err := p.store.ShareActivity(roundCtx, p.node, toStoreActivity(mine, now), peerTTL)
		cancel()
		switch {
		case err == nil:
			heard, failing = now, false
			theirs := fromStoreActivity(peers, now)
			p.prov.SetPeerActivity(theirs)
			if p.prewarm != nil && p.prewarm.Pending() > 0 {
				flushCtx, cancel := context.WithTimeout(ctx, activityInterval)
				p.observePrewarms(flushCtx, now, mine, theirs)
				cancel()
			}
		case ctx.Err() != nil:
			return
		default:
			if !failing {
				p.logger.Warn("sharing site activity with other nodes; will retry", zap.Error(err))
				failing = true
			}
			if now.Sub(heard) > peerTTL {
				p.prov.SetPeerActivity(nil)
			}
		}
	}
}

func toStoreActivity(acts []provisioner.Activity, now time.Time) []tenants.SiteActivity {
	out := make([]tenants.SiteActivity, len(acts))
	for i, a := range acts {
		out[i] = tenants.SiteActivity{SiteID: a.SiteID, InFlight: a.InFlight, Upgraded: a.Upgraded, IdleFor: now.Sub(a.LastActive),
			ContainerID: a.ContainerID, Draining: a.Draining, ReplicaIDs: a.Replicas}
	}
	return out
}

func fromStoreActivity(acts []tenants.SiteActivity, now time.Time) []provisioner.Activity {
	out := make([]provisioner.Activity, len(acts))
	for i, a := range acts {
		out[i] = provisioner.Activity{SiteID: a.SiteID, InFlight: a.InFlight, Upgraded: a.Upgraded, LastActive: now.Add(-a.IdleFor)}
	}
	return out
}
