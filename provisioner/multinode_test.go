package provisioner

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingLocker stands in for the PostgreSQL advisory lock: one mutex per
// site, shared by two provisioners as two nodes would share the database.
type countingLocker struct {
	mu    sync.Mutex
	locks map[string]chan struct{}
	calls atomic.Int64
}

func (l *countingLocker) Lock(ctx context.Context, siteID string) (func(), error) {
	l.calls.Add(1)
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]chan struct{}{}
	}
	ch, ok := l.locks[siteID]
	if !ok {
		ch = make(chan struct{}, 1)
		l.locks[siteID] = ch
	}
	l.mu.Unlock()
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Two nodes (provisioners on one namespace) starting the same site at once
// end up sharing one container, with or without a Locker: without one, the
// loser of the create race adopts the winner's container by name.
func TestTwoNodesShareOneContainer(t *testing.T) {
	t.Parallel()
	for _, withLocker := range []bool{false, true} {
		p1 := newProv(t, nil)
		cfg := p1.cfg
		var locker *countingLocker
		if withLocker {
			locker = &countingLocker{}
			p1.cfg.Locker = locker
			cfg.Locker = locker
		}
		p2 := startProv(t, cfg)
		site := randID("s")
		var ups [2]string
		var errs [2]error
		var wg sync.WaitGroup
		for i, p := range []*Provisioner{p1, p2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				ups[i], errs[i] = p.Ensure(ctx, testSpec(site))
			}()
		}
		wg.Wait()
		for i := range errs {
			if errs[i] != nil {
				t.Fatalf("locker=%v node %d: %v", withLocker, i, errs[i])
			}
		}
		if ups[0] != ups[1] {
			t.Errorf("locker=%v: upstreams differ: %v", withLocker, ups)
		}
		if cs := siteContainers(t, p1.cfg.Namespace, site); len(cs) != 1 {
			t.Fatalf("locker=%v: %d containers, want 1", withLocker, len(cs))
		}
		if got := get(t, ups[0], "/"); got != "hello from site-"+site {
			t.Fatalf("GET / = %q", got)
		}
		if withLocker {
			if n := p1.dockerStarts.Load() + p2.dockerStarts.Load(); n != 1 {
				t.Errorf("%d docker starts under the locker, want 1", n)
			}
			if n := locker.calls.Load(); n != 2 {
				t.Errorf("%d lock calls, want 2", n)
			}
		}
	}
}

// A site another node uses is not idle here: the reaper leaves it running
// while a peer has a connection open or was active within the idle
// timeout, and stops it once no node uses it. Activity reports what this
// node does.
func TestPeerActivityKeepsSiteRunning(t *testing.T) {
	t.Parallel()
	idle := time.Second
	p := newProv(t, func(c *Config) { c.IdleTimeout = idle })
	site := randID("s")
	ensure(t, p, testSpec(site))
	if acts := p.Activity(); len(acts) != 1 || acts[0].SiteID != site || acts[0].InFlight != 0 {
		t.Fatalf("activity: %+v, want the running site, idle", acts)
	}

	p.SetPeerActivity([]Activity{{SiteID: site, Upgraded: 1, LastActive: time.Now().Add(-time.Hour)}})
	time.Sleep(3 * idle)
	if _, ok := p.Upstream(site); !ok {
		t.Fatal("stopped while a peer held an upgraded connection")
	}
	for range 6 {
		p.SetPeerActivity([]Activity{{SiteID: site, LastActive: time.Now()}})
		time.Sleep(idle / 2)
	}
	if _, ok := p.Upstream(site); !ok {
		t.Fatal("stopped while a peer was active within the idle timeout")
	}
	p.SetPeerActivity(nil)
	waitFor(t, 10*time.Second, "idle stop once no node uses the site", func() bool {
		_, ok := p.Upstream(site)
		return !ok
	})
}
