package provisioner

import "time"

// Activity is the use of a site by one node, or by several together.
type Activity struct {
	SiteID string
	// InFlight and Upgraded count requests and open upgraded connections.
	InFlight, Upgraded int64
	// LastActive is when the last request or connection began or ended.
	LastActive time.Time
	// ContainerID is the container this node sends the site's requests
	// to ("" for none), and Draining counts its requests in flight on
	// other ones: for the drain of another node's rollout (Config.PeersUse).
	ContainerID string
	Draining    int64
	// Replicas are the IDs of every replica this node balances the site's
	// requests over, ContainerID's first (Config.PeersUse is asked about
	// one a scale-down removes).
	Replicas []string
}

// Activity returns this node's use of the sites it serves (those running
// or paused here, or with anything in flight), for the caller to share with the other
// nodes on the engine.
func (p *Provisioner) Activity() []Activity {
	var out []Activity
	for _, st := range p.sites.all() {
		inflight, upgraded := st.inflight.Load(), st.upgraded.Load()
		b := st.upstream.Load()
		// A paused site is still this node's (its last activity counts,
		// and a pre-warm waits for its first visitor), with no container
		// it sends requests to.
		if b == nil && inflight == 0 && upgraded == 0 && st.paused.Load() == nil {
			continue
		}
		a := Activity{SiteID: st.id, InFlight: inflight, Upgraded: upgraded,
			LastActive: time.Unix(0, st.lastActive.Load()), Draining: inflight}
		if b != nil {
			a.ContainerID = b.containerID
			a.Draining = max(inflight-b.inflight.Load(), 0)
			if len(b.replicas) > 1 {
				a.Replicas = make([]string, len(b.replicas))
				for i, r := range b.replicas {
					a.Replicas[i] = r.ID
				}
			}
		}
		out = append(out, a)
	}
	return out
}

// SetPeerActivity tells the provisioner how the other nodes on its engine
// use sites, one Activity per site (their sum): a site that another node
// serves is not idle here, neither for the idle reaper nor for making room
// under MaxRunning. It replaces what the last call said; a site missing
// from peers is used by no other node.
func (p *Provisioner) SetPeerActivity(peers []Activity) {
	bySite := make(map[string]Activity, len(peers))
	for _, a := range peers {
		bySite[a.SiteID] = a
	}
	for _, st := range p.sites.all() {
		a, ok := bySite[st.id]
		st.peerBusy.Store(ok && (a.InFlight > 0 || a.Upgraded > 0))
		st.peerInFlight.Store(a.InFlight) // 0 when !ok
		var active int64
		if ok {
			active = a.LastActive.UnixNano()
		}
		st.peerActive.Store(active)
	}
}
