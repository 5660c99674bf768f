package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
)

// wake measures the warm tier against the cold path, in one run, for the
// test image and for the same image booting in 2 s (LISTEN_DELAY):
//
//   - wake:  Caddy has paused the site's container (pause_after), then
//     one GET through Caddy on a new connection, timed until the site's
//     content has arrived; the engine must see an unpause and no start;
//   - cold:  the site's container is killed (Caddy sees it stop), then
//     one GET through Caddy, as coldstart measures it;
//   - floor: an equivalent container outside Caddy (as coldstart's
//     docker-api baseline) is killed, started with the Engine API call
//     `docker start` makes, and GET / is polled every millisecond until
//     the content arrives.
//
// The wakes come first (-wakes of the test image, -slow-wakes of the
// slow one), then cold and floor interleaved, -runs of each per image.
func wake(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("wake", flag.ExitOnError)
	caddy := fs.String("caddy", "", "Caddy HTTP address")
	admin := fs.String("admin", "", "Caddy admin address")
	schema := fs.String("schema", "", "namespace")
	site := fs.String("site", "", "site id (the test image)")
	host := fs.String("host", "", "its host")
	slowSite := fs.String("slow-site", "", "site id (the image booting in 2 s)")
	slowHost := fs.String("slow-host", "", "its host")
	wakes := fs.Int("wakes", 50, "wakes of the test image's site")
	slowWakes := fs.Int("slow-wakes", 20, "wakes of the slow image's site")
	runs := fs.Int("runs", 10, "cold starts through Caddy, and floor starts, of each image")
	settle := fs.Duration("settle", 300*time.Millisecond, "pause after a stop before the next start")
	p50Goal := fs.Duration("p50-goal", 50*time.Millisecond, "goal: wake p50 below this")
	p99Goal := fs.Duration("p99-goal", 100*time.Millisecond, "goal: wake p99 below this")
	fs.Parse(args)

	cli, err := dockerClient(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()

	type subject struct {
		label, host, want string
		wakes             int
		c                 container.InspectResponse
		twin, twinAddr    string
	}
	subjects := []*subject{
		{label: "test image", host: *host, wakes: *wakes},
		{label: "2 s boot", host: *slowHost, wakes: *slowWakes},
	}
	var ids []string
	for i, s := range subjects {
		siteID := []string{*site, *slowSite}[i]
		s.want = "hello from " + strings.SplitN(s.host, ".", 2)[0]
		if err := waitOK(ctx, []string{"-caddy", *caddy, "-host", s.host}); err != nil {
			return err
		}
		if s.c, err = siteContainer(ctx, cli, *schema, siteID); err != nil {
			return err
		}
		name := fmt.Sprintf("bench-baseline-%s-%d", *schema, i)
		if s.twin, s.twinAddr, err = createTwin(ctx, cli, s.c, name, *schema); err != nil {
			return err
		}
		ids = append(ids, s.c.ID, s.twin)
		fmt.Printf("%-10s site container %s, baseline container %s on %s\n", s.label, s.c.Name[1:], name, s.twinAddr)
	}
	ev, stopWatch := watchActions(ctx, cli, ids...)
	defer stopWatch()
	wakesBefore, err := metric(ctx, *admin, "caddy_tenants_wakes_total")
	if err != nil {
		return err
	}
	startsBefore, err := metric(ctx, *admin, coldStartsStarted)
	if err != nil {
		return err
	}

	// (a) Wakes from pause.
	results := map[*subject]map[string][]time.Duration{}
	for _, s := range subjects {
		results[s] = map[string][]time.Duration{}
	}
	phase := time.Now()
	for _, s := range subjects {
		for i := range s.wakes {
			if err := waitPaused(ctx, cli, s.c.ID, 30*time.Second); err != nil {
				return fmt.Errorf("%s, wake %d: %w", s.label, i+1, err)
			}
			t0 := time.Now()
			status, body, err := get(ctx, oneShot, *caddy, s.host, "/")
			d := time.Since(t0)
			if err != nil || status != http.StatusOK || body != s.want {
				return fmt.Errorf("%s, wake %d through caddy: %d %q %v", s.label, i+1, status, body, err)
			}
			results[s]["wake"] = append(results[s]["wake"], d)
		}
	}
	// Events arrive a moment after the calls that made them.
	time.Sleep(500 * time.Millisecond)
	var startsInWakes, unpauses, late int
	for _, s := range subjects {
		startsInWakes += ev.count(s.c.ID, events.ActionStart, phase)
		unpauses += ev.count(s.c.ID, events.ActionUnPause, phase)
		late += ev.latePauses(s.c.ID, phase)
	}
	wakesAfter, err := metric(ctx, *admin, "caddy_tenants_wakes_total")
	if err != nil {
		return err
	}

	// (b) and (c): cold starts through Caddy and the engine's floor.
	for _, s := range subjects {
		for i := range *runs {
			order := []string{"cold", "floor"}
			if i%2 == 1 { // alternate, so neither always runs right after the other
				order = []string{"floor", "cold"}
			}
			for _, kind := range order {
				d, err := coldOrFloor(ctx, cli, kind, *caddy, s.host, s.want, s.c.ID, s.twin, s.twinAddr, *settle)
				if err != nil {
					return fmt.Errorf("%s, %s run %d: %w", s.label, kind, i+1, err)
				}
				results[s][kind] = append(results[s][kind], d)
			}
		}
	}
	startsAfter, err := metric(ctx, *admin, coldStartsStarted)
	if err != nil {
		return err
	}

	fmt.Println()
	fmt.Printf("%-10s %-6s %5s %8s %8s %8s %8s %8s   (ms)\n", "", "", "n", "min", "p50", "p90", "p99", "max")
	for _, s := range subjects {
		for _, kind := range []string{"wake", "cold", "floor"} {
			r := sorted(results[s][kind])
			fmt.Printf("%-10s %-6s %5d %8.1f %8.1f %8.1f %8.1f %8.1f\n", s.label, kind, len(r),
				ms(r[0]), ms(median(r)), ms(pct(r, 0.9)), ms(pct(r, 0.99)), ms(r[len(r)-1]))
		}
	}
	fmt.Println("wake: paused by Caddy, first GET through Caddy; cold: killed, first GET through Caddy;")
	fmt.Println("floor: an equivalent container, Engine API start + GET / polled every ms")
	fmt.Println()
	for _, s := range subjects {
		w, c, f := median(sorted(results[s]["wake"])), median(sorted(results[s]["cold"])), median(sorted(results[s]["floor"]))
		fmt.Printf("%-10s p50: cold/wake %.1fx, floor/wake %.1fx, cold-floor %+.1f ms\n", s.label, float64(c)/float64(w), float64(f)/float64(w), ms(c-f))
	}
	// The engine may report a pause twice: its containerd monitor marks
	// the container paused again when containerd's "paused" event comes
	// after the unpause (moby's daemon/monitor.go); the provisioner then
	// takes it for paused, as the engine does, and wakes it once more.
	fmt.Printf("engine during the wakes: %d start events (want 0), %d unpause events for %d wakes (%d pauses repeated late by the engine)\n",
		startsInWakes, unpauses, *wakes+*slowWakes, late)
	fmt.Printf("caddy_tenants_wakes_total rose by %.0f (%d wakes), caddy_tenants_cold_starts_total{result=\"started\"} by %.0f (want %d)\n",
		wakesAfter-wakesBefore, *wakes+*slowWakes, startsAfter-startsBefore, 2**runs)
	r := sorted(results[subjects[0]]["wake"])
	p50, p99 := median(r), pct(r, 0.99)
	verdict := func(ok bool) string {
		if ok {
			return "PASS"
		}
		return "MISS"
	}
	fmt.Printf("goal (test image, %d wakes): p50 %.1f ms < %.0f ms: %s; p99 %.1f ms < %.0f ms: %s\n", len(r),
		ms(p50), ms(*p50Goal), verdict(p50 < *p50Goal), ms(p99), ms(*p99Goal), verdict(p99 < *p99Goal))
	if startsInWakes != 0 || unpauses < *wakes+*slowWakes || wakesAfter-wakesBefore < float64(*wakes+*slowWakes) {
		for _, s := range subjects {
			fmt.Printf("%s: wakes began at %s, engine events since:", s.label, phase.Format(time.StampMilli))
			for _, m := range ev.since(s.c.ID, phase) {
				fmt.Printf(" %s@%s", m.Action, time.Unix(0, m.TimeNano).Format(time.StampMilli))
			}
			fmt.Println()
		}
		return fmt.Errorf("the wakes were not all unpauses without a start")
	}
	if startsAfter-startsBefore != float64(2**runs) {
		return fmt.Errorf("expected %d cold starts, the metric says %.0f", 2**runs, startsAfter-startsBefore)
	}
	return nil
}

// coldOrFloor measures one cold start through Caddy of the site's
// container id, or one floor start of its twin, as coldstart does.
func coldOrFloor(ctx context.Context, cli *client.Client, kind, caddy, host, want, id, twin, twinAddr string, settle time.Duration) (time.Duration, error) {
	if kind == "cold" {
		if err := killAndWait(ctx, cli, id); err != nil {
			return 0, err
		}
		if err := waitCaddySeesStopped(ctx, caddy, host); err != nil {
			return 0, err
		}
		time.Sleep(settle)
		t0 := time.Now()
		status, body, err := get(ctx, oneShot, caddy, host, "/")
		if err != nil || status != http.StatusOK || body != want {
			return 0, fmt.Errorf("first request through caddy: %d %q %v", status, body, err)
		}
		return time.Since(t0), nil
	}
	if err := killAndWait(ctx, cli, twin); err != nil {
		return 0, err
	}
	time.Sleep(settle)
	t0 := time.Now()
	if err := cli.ContainerStart(ctx, twin, container.StartOptions{}); err != nil {
		return 0, err
	}
	if err := pollUntil(ctx, twinAddr, want, 30*time.Second); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

// waitPaused polls the engine until container id is paused.
func waitPaused(ctx context.Context, cli *client.Client, id string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		c, err := cli.ContainerInspect(ctx, id)
		if err != nil {
			return err
		}
		if c.State != nil && c.State.Paused {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("container %.12s not paused within %s (is pause_after set?)", id, within)
}

// actionWatch records the engine's start, pause and unpause events of
// some containers.
type actionWatch struct {
	mu     sync.Mutex
	events map[string][]events.Message // container id → its events
}

func watchActions(ctx context.Context, cli *client.Client, ids ...string) (*actionWatch, func()) {
	w := &actionWatch{events: map[string][]events.Message{}}
	f := filters.NewArgs(filters.Arg("type", string(events.ContainerEventType)),
		filters.Arg("event", string(events.ActionStart)), filters.Arg("event", string(events.ActionUnPause)),
		filters.Arg("event", string(events.ActionPause)))
	for _, id := range ids {
		f.Add("container", id)
	}
	ctx, cancel := context.WithCancel(ctx)
	msgs, errs := cli.Events(ctx, events.ListOptions{Filters: f})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case m := <-msgs:
				w.mu.Lock()
				w.events[m.Actor.ID] = append(w.events[m.Actor.ID], m)
				w.mu.Unlock()
			case <-errs:
				return
			}
		}
	}()
	return w, func() { cancel(); <-done }
}

// since returns the events of container id at or after since.
func (w *actionWatch) since(id string, since time.Time) []events.Message {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []events.Message
	for _, m := range w.events[id] {
		if m.TimeNano >= since.Add(-time.Millisecond).UnixNano() {
			out = append(out, m)
		}
	}
	return out
}

// latePauses counts the pause events of container id since since that
// came within 100 ms of an unpause: the engine's late repeats of the pause
// before (a pause_after of 1s leaves no other way to pause so soon).
func (w *actionWatch) latePauses(id string, since time.Time) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	var last events.Message
	for _, m := range w.events[id] {
		if m.TimeNano >= since.UnixNano() && m.Action == events.ActionPause && last.Action == events.ActionUnPause &&
			m.TimeNano-last.TimeNano < int64(100*time.Millisecond) {
			n++
		}
		last = m
	}
	return n
}

// count returns how many a events of container id happened at or after
// since (less a millisecond of clock rounding).
func (w *actionWatch) count(id string, a events.Action, since time.Time) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, m := range w.events[id] {
		if m.Action == a && m.TimeNano >= since.Add(-time.Millisecond).UnixNano() {
			n++
		}
	}
	return n
}
