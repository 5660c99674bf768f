package provisioner

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
)

// engineEvents records the engine's container events of one container
// from now on, until the test ends. The stream starts at now on the
// engine's side (since): an event in the moment before the subscription
// reached the engine is replayed, not lost.
type engineEvents struct {
	mu      sync.Mutex
	actions []events.Action
}

func watchContainer(t *testing.T, id string) *engineEvents {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := filters.NewArgs(filters.Arg("type", string(events.ContainerEventType)), filters.Arg("container", id))
	now := time.Now()
	since := fmt.Sprintf("%d.%09d", now.Unix(), now.Nanosecond())
	msgs, errs := docker(t).Events(ctx, events.ListOptions{Filters: f, Since: since})
	ev := &engineEvents{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case m := <-msgs:
				ev.mu.Lock()
				ev.actions = append(ev.actions, m.Action)
				ev.mu.Unlock()
			case <-errs:
				return
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return ev
}

func (e *engineEvents) count(a events.Action) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, got := range e.actions {
		if got == a {
			n++
		}
	}
	return n
}

func pausedInEngine(t *testing.T, id string) bool {
	c := inspect(t, id)
	return c.State != nil && c.State.Paused
}

// A site idle for pause_after is paused (frozen in the engine, no
// upstream), and stopped at idle_timeout as a running one would be.
func TestPauseThenStopOnSchedule(t *testing.T) {
	t.Parallel()
	p := newProv(t, func(c *Config) { c.PauseAfter, c.IdleTimeout = time.Second, 4*time.Second })
	site := randID("s")
	ensure(t, p, testSpec(site))
	id := p.Status(site).ContainerID
	began := time.Now()

	waitFor(t, 5*time.Second, "the idle pause", func() bool { return p.Status(site).State == StatePaused })
	if d := time.Since(began); d < 900*time.Millisecond {
		t.Errorf("paused after %s, before pause_after", d)
	}
	if !pausedInEngine(t, id) {
		t.Fatal("state paused, but the container is not paused in the engine")
	}
	if _, ok := p.Upstream(site); ok {
		t.Error("a paused site is on the hot path")
	}
	if p.Paused() != 1 || p.Running() != 0 {
		t.Errorf("paused %d running %d, want 1 and 0", p.Paused(), p.Running())
	}
	if got := metricValue(t, p.metrics.paused); got != 1 {
		t.Errorf("paused gauge = %v, want 1", got)
	}
	if got := metricValue(t, p.metrics.pauses); got != 1 {
		t.Errorf("pauses = %v, want 1", got)
	}

	waitFor(t, 6*time.Second, "the idle stop of the paused site", func() bool { return p.Status(site).State == StateStopped })
	if d := time.Since(began); d < 3900*time.Millisecond {
		t.Errorf("stopped after %s, before idle_timeout", d)
	}
	if c := inspect(t, id); c.State.Running || c.State.Paused {
		t.Fatalf("container state after the stop: %+v", c.State)
	}
	if p.Paused() != 0 || metricValue(t, p.metrics.paused) != 0 {
		t.Errorf("paused %d (gauge %v) after the stop", p.Paused(), metricValue(t, p.metrics.paused))
	}
	waitFor(t, 5*time.Second, "one idle stop counted", func() bool { return metricValue(t, p.metrics.idleStops) == 1 })
}

// The request after a pause wakes the very container, at the same
// upstream, with what it held in memory: the engine sees an unpause and
// no start.
func TestWakeFromPauseStartsNothing(t *testing.T) {
	t.Parallel()
	p := newProv(t, func(c *Config) { c.PauseAfter = 500 * time.Millisecond })
	site := randID("s")
	up := ensure(t, p, testSpec(site))
	id := p.Status(site).ContainerID
	startedAt := inspect(t, id).State.StartedAt
	// State only the process holds: its health path fails from now on.
	if code, _ := do(t, http.MethodPost, "http://"+up+"/sick", nil); code != http.StatusOK {
		t.Fatalf("POST /sick: %d", code)
	}
	waitFor(t, 5*time.Second, "the idle pause", func() bool { return p.Status(site).State == StatePaused })
	ev := watchContainer(t, id)

	end := p.Begin(site)
	woken := ensure(t, p, testSpec(site))
	end()
	if woken != up {
		t.Errorf("woken at %s, was %s", woken, up)
	}
	if got := get(t, woken, "/"); got != "hello from site-"+site {
		t.Fatalf("GET / after the wake = %q", got)
	}
	if code, _ := do(t, http.MethodGet, "http://"+woken+"/health", nil); code != http.StatusInternalServerError {
		t.Errorf("GET /health after the wake: %d, want 500 (the process's memory kept)", code)
	}
	c := inspect(t, id)
	if c.State.Paused || !c.State.Running || c.State.StartedAt != startedAt {
		t.Errorf("container after the wake: %+v (started %s before)", c.State, startedAt)
	}
	if rt := p.Status(site); rt.State != StateRunning || rt.ContainerID != id {
		t.Errorf("status after the wake = %+v", rt)
	}
	waitFor(t, 5*time.Second, "the unpause event", func() bool { return ev.count(events.ActionUnPause) == 1 })
	if n := ev.count(events.ActionStart); n != 0 {
		t.Errorf("%d engine start events during the wake, want 0", n)
	}
	if n := p.dockerStarts.Load(); n != 1 {
		t.Errorf("%d starts, want the first one only", n)
	}
	if got := metricValue(t, p.metrics.wakes); got != 1 {
		t.Errorf("wakes = %v, want 1", got)
	}
	if p.Paused() != 0 || p.Running() != 1 {
		t.Errorf("paused %d running %d after the wake", p.Paused(), p.Running())
	}
}

// Neither a request in flight nor an open WebSocket lets a site pause.
func TestInFlightAndUpgradedKeepFromPausing(t *testing.T) {
	t.Parallel()
	p := newProv(t, func(c *Config) { c.PauseAfter = 500 * time.Millisecond })
	site := randID("s")

	end := p.Begin(site)
	up := ensure(t, p, testSpec(site))
	time.Sleep(1500 * time.Millisecond) // three times pause_after
	if st := p.Status(site).State; st != StateRunning {
		t.Fatalf("state with a request in flight = %s", st)
	}

	conn, err := net.Dial("tcp", up)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	endWS := p.BeginUpgraded(site)
	end()
	time.Sleep(1500 * time.Millisecond)
	if st := p.Status(site).State; st != StateRunning {
		t.Fatalf("state with a WebSocket open = %s", st)
	}
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "still there")
	buf := make([]byte, len("still there"))
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "still there" {
		t.Fatalf("echo over the WebSocket: %q %v", buf, err)
	}

	endWS()
	conn.Close()
	waitFor(t, 5*time.Second, "the pause once the WebSocket ended", func() bool { return p.Status(site).State == StatePaused })
}

// Making room under max_running stops a paused site before an idle
// running one, even a paused site used more recently.
func TestCapacityStopsPausedFirst(t *testing.T) {
	t.Parallel()
	p := newProv(t, func(c *Config) { c.MaxRunning = 2 })
	a, b, c := randID("a"), randID("b"), randID("c")
	ensure(t, p, testSpec(b))
	ensure(t, p, testSpec(a))
	time.Sleep(300 * time.Millisecond) // past the coarse clock's tick
	p.Begin(a)()
	time.Sleep(300 * time.Millisecond)
	idA := p.Status(a).ContainerID
	if !p.pauseIfIdle(context.Background(), p.sites.get(a), 0) {
		t.Fatal("a did not pause")
	}
	if p.Paused() != 1 || p.Running() != 1 {
		t.Fatalf("paused %d running %d", p.Paused(), p.Running())
	}

	ensure(t, p, testSpec(c))
	if st := p.Status(a).State; st != StateStopped {
		t.Errorf("paused site a is %s, want stopped to make room", st)
	}
	if cs := inspect(t, idA).State; cs.Running || cs.Paused {
		t.Errorf("a's container: %+v", cs)
	}
	for _, s := range []string{b, c} {
		if _, ok := p.Upstream(s); !ok {
			t.Errorf("site %s not running", s)
		}
	}
	if p.Paused() != 0 || p.Running() != 2 {
		t.Errorf("paused %d running %d, want 0 and 2", p.Paused(), p.Running())
	}

	// A paused site holds its slot: with b paused and c running, a
	// third start still has to make room, and takes b's.
	if !p.pauseIfIdle(context.Background(), p.sites.get(b), 0) {
		t.Fatal("b did not pause")
	}
	endC := p.Begin(c)
	ensure(t, p, testSpec(a))
	endC()
	if st := p.Status(b).State; st != StateStopped {
		t.Errorf("paused site b is %s, want stopped", st)
	}
	if got := metricValue(t, p.metrics.evictions); got != 2 {
		t.Errorf("evictions = %v, want 2", got)
	}
}

// Above max_paused_memory the least recently used paused sites stop
// until the rest fits.
func TestMaxPausedMemoryStopsLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	p := newProv(t, func(c *Config) { c.MaxPausedMemory = 1 << 40 })
	a, b := randID("a"), randID("b")
	ensure(t, p, testSpec(a))
	ensure(t, p, testSpec(b))
	p.Begin(a)()
	time.Sleep(300 * time.Millisecond)
	p.Begin(b)() // b used more recently than a
	time.Sleep(300 * time.Millisecond)
	for _, s := range []string{a, b} {
		if !p.pauseIfIdle(context.Background(), p.sites.get(s), 0) {
			t.Fatalf("%s did not pause", s)
		}
	}
	ma, mb := p.sites.get(a).pausedMemory.Load(), p.sites.get(b).pausedMemory.Load()
	if ma == 0 || mb == 0 {
		t.Fatalf("paused memory read as %d and %d bytes", ma, mb)
	}
	t.Logf("paused memory: a %d bytes, b %d bytes", ma, mb)
	p.trimPaused(context.Background())
	if p.Paused() != 2 {
		t.Fatalf("%d paused under a large bound, want 2", p.Paused())
	}

	// No reaper runs (no pause_after, no idle_timeout): the bound can
	// change under the test.
	p.cfg.MaxPausedMemory = int64(ma + mb - 1)
	p.trimPaused(context.Background())
	if st := p.Status(a).State; st != StateStopped {
		t.Errorf("least recently used a is %s, want stopped", st)
	}
	if st := p.Status(b).State; st != StatePaused {
		t.Errorf("b is %s, want still paused", st)
	}
}

// A restarted provisioner adopts a paused container as paused: not
// probed, not started, woken by the next request.
func TestAdoptPausedContainer(t *testing.T) {
	t.Parallel()
	p1 := newProv(t, func(c *Config) { c.PauseAfter = 500 * time.Millisecond })
	site := randID("s")
	up := ensure(t, p1, testSpec(site))
	id := p1.Status(site).ContainerID
	waitFor(t, 5*time.Second, "the idle pause", func() bool { return p1.Status(site).State == StatePaused })
	p1.Stop()

	cfg := p1.cfg
	cfg.PauseAfter = 0 // the new process leaves it be until asked
	var mu sync.Mutex
	var adopted []SiteRuntime
	cfg.OnChange = func(rt SiteRuntime) { mu.Lock(); adopted = append(adopted, rt); mu.Unlock() }
	ev := watchContainer(t, id)
	p2 := startProv(t, cfg)
	if rt := p2.Status(site); rt.State != StatePaused || rt.ContainerID != id {
		t.Fatalf("adopted status = %+v, want container %s paused", rt, id)
	}
	if _, ok := p2.Upstream(site); ok {
		t.Error("an adopted paused site is on the hot path")
	}
	if p2.Paused() != 1 || p2.Running() != 0 {
		t.Errorf("paused %d running %d after adoption", p2.Paused(), p2.Running())
	}
	if !pausedInEngine(t, id) {
		t.Fatal("adoption thawed the container")
	}
	mu.Lock()
	if len(adopted) != 1 || adopted[0].State != StatePaused {
		t.Errorf("OnChange at adoption = %+v", adopted)
	}
	mu.Unlock()

	if woken := ensure(t, p2, testSpec(site)); woken != up {
		t.Errorf("woken at %s, was %s", woken, up)
	}
	if got := get(t, up, "/"); got != "hello from site-"+site {
		t.Fatalf("GET / = %q", got)
	}
	if n := p2.dockerStarts.Load(); n != 0 {
		t.Errorf("%d starts after adopting a paused container, want 0", n)
	}
	waitFor(t, 5*time.Second, "the unpause event", func() bool { return ev.count(events.ActionUnPause) == 1 })
	if n := ev.count(events.ActionStart); n != 0 {
		t.Errorf("%d engine start events, want 0", n)
	}
	if cs := siteContainers(t, cfg.Namespace, site); len(cs) != 1 {
		t.Fatalf("%d containers, want 1", len(cs))
	}
}

// Another node on the engine sees a pause (it stops proxying to the
// frozen container) and a wake (it proxies again, to the same upstream).
func TestOtherNodeSeesPauseAndWake(t *testing.T) {
	t.Parallel()
	p1 := newProv(t, nil)
	p2 := startProv(t, p1.cfg)
	site := randID("s")
	up := ensure(t, p1, testSpec(site))
	if u := ensure(t, p2, testSpec(site)); u != up {
		t.Fatalf("node 2 upstream %s, node 1 %s", u, up)
	}
	if !p1.pauseIfIdle(context.Background(), p1.sites.get(site), 0) {
		t.Fatal("node 1 did not pause the site")
	}
	waitFor(t, 5*time.Second, "node 2 to see the pause", func() bool {
		_, ok := p2.Upstream(site)
		return !ok && p2.Status(site).State == StatePaused
	})

	if u := ensure(t, p2, testSpec(site)); u != up {
		t.Errorf("node 2 woke it at %s, was %s", u, up)
	}
	waitFor(t, 5*time.Second, "node 1 to see the wake", func() bool {
		u, ok := p1.Upstream(site)
		return ok && u == up && p1.Status(site).State == StateRunning
	})
	if p1.Paused() != 0 || p2.Paused() != 0 {
		t.Errorf("paused %d and %d after the wake", p1.Paused(), p2.Paused())
	}
	if n := p1.dockerStarts.Load() + p2.dockerStarts.Load(); n != 1 {
		t.Errorf("%d starts on both nodes, want 1", n)
	}

	// A request in flight on node 2 when node 1 pauses (their activity
	// had not met yet) has node 2 wake the site at once.
	end := p2.Begin(site)
	defer end()
	if !p1.pauseIfIdle(context.Background(), p1.sites.get(site), 0) {
		t.Fatal("node 1 did not pause the site the second time")
	}
	waitFor(t, 5*time.Second, "node 2 to wake the site for its request", func() bool {
		return !pausedInEngine(t, p1.Status(site).ContainerID) && p2.Status(site).State == StateRunning
	})
	get(t, up, "/")
}
