package tenants

import (
	"context"
	"testing"
	"time"
)

// Nodes see each other's use of sites, summed per site with the most
// recent activity, never their own; a node that stopped reporting no
// longer counts.
func TestShareActivity(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newTestStore(t)
	_, _, site := fixture(t, s)
	live := time.Minute

	if _, err := s.ShareActivity(ctx, "a", []SiteActivity{{SiteID: site.ID, InFlight: 1, IdleFor: time.Minute}}, live); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ShareActivity(ctx, "b", []SiteActivity{{SiteID: site.ID, Upgraded: 2, IdleFor: 10 * time.Second},
		{SiteID: "00000000-0000-0000-0000-000000000000"}}, live); err != nil {
		t.Fatal(err)
	}
	peers, err := s.ShareActivity(ctx, "c", nil, live)
	if err != nil {
		t.Fatal(err)
	}
	if len(peers) != 1 || peers[0].SiteID != site.ID || peers[0].InFlight != 1 || peers[0].Upgraded != 2 ||
		peers[0].IdleFor < 10*time.Second || peers[0].IdleFor > 20*time.Second {
		t.Fatalf("peers of c: %+v, want site %s with 1 in flight, 2 upgraded, idle about 10s", peers, site.ID)
	}
	peers, err = s.ShareActivity(ctx, "a", nil, live)
	if err != nil {
		t.Fatal(err)
	}
	if len(peers) != 1 || peers[0].InFlight != 0 || peers[0].Upgraded != 2 {
		t.Fatalf("peers of a: %+v, want b's use only", peers)
	}

	time.Sleep(50 * time.Millisecond)
	if _, err := s.ShareActivity(ctx, "b", nil, live); err != nil {
		t.Fatal(err)
	}
	peers, err = s.ShareActivity(ctx, "c", nil, 25*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(peers) != 1 || peers[0].InFlight != 0 || peers[0].Upgraded != 2 {
		t.Fatalf("peers of c once a stopped reporting: %+v, want b's use only", peers)
	}
}

// A node that no longer reports a site (its requests ended while it had
// no container for it: they waited on another node's start) leaves a row
// with the counts it last reported. Those counts are not use: after
// peerUseFresh they count as zero, while the node itself still lives and
// the site's last activity still counts.
func TestShareActivityForgetsCountsNotRefreshed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newTestStore(t)
	_, _, site := fixture(t, s)
	if _, err := s.ShareActivity(ctx, "a", []SiteActivity{{SiteID: site.ID, InFlight: 30}}, time.Minute); err != nil {
		t.Fatal(err)
	}
	peers, err := s.ShareActivity(ctx, "c", nil, time.Minute)
	if err != nil || len(peers) != 1 || peers[0].InFlight != 30 {
		t.Fatalf("peers of c while a reports 30 in flight: %+v, %v", peers, err)
	}
	// a goes on living (its heartbeat) but reports the site no more.
	if _, err := s.pool.Exec(ctx, `UPDATE site_activity SET reported_at = now() - make_interval(secs => $1)`, 2*peerUseFresh.Seconds()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ShareActivity(ctx, "a", nil, time.Minute); err != nil {
		t.Fatal(err)
	}
	peers, err = s.ShareActivity(ctx, "c", nil, time.Minute)
	if err != nil || len(peers) != 1 || peers[0].InFlight != 0 || peers[0].IdleFor > time.Minute {
		t.Fatalf("peers of c once a stopped reporting the site: %+v, %v; want it with nothing in flight", peers, err)
	}
}

// PeersUse says whether another node sends a site's requests to a
// container: its first one, or any replica it balances over, or it has
// requests in flight elsewhere (draining); never the asking node's own.
func TestPeersUseReplicas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newTestStore(t)
	_, _, site := fixture(t, s)
	live := time.Minute
	if _, err := s.ShareActivity(ctx, "a", []SiteActivity{{SiteID: site.ID, ContainerID: "c1",
		ReplicaIDs: []string{"c1", "c2"}}}, live); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		node, container string
		want            bool
	}{{"b", "c1", true}, {"b", "c2", true}, {"b", "c3", false}, {"a", "c2", false}} {
		used, err := s.PeersUse(ctx, c.node, site.ID, c.container, live)
		if err != nil || used != c.want {
			t.Errorf("PeersUse(%s, %s) = %v, %v; want %v", c.node, c.container, used, err, c.want)
		}
	}
	// A's next report drops c2 (a scale-down retired it).
	if _, err := s.ShareActivity(ctx, "a", []SiteActivity{{SiteID: site.ID, ContainerID: "c1"}}, live); err != nil {
		t.Fatal(err)
	}
	if used, err := s.PeersUse(ctx, "b", site.ID, "c2", live); err != nil || used {
		t.Errorf("PeersUse(b, c2) after a dropped it = %v, %v; want false", used, err)
	}
}
