package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"
)

// coldstart measures, interleaved in one run:
//
//   - caddy:        the site's container is killed (Caddy sees it stop),
//     then one GET through Caddy on a new connection, timed until the
//     site's content has arrived;
//   - docker-api:   an equivalent container (same image, env, limits,
//     security options, a volume of its own, a fixed published port) is
//     killed, then started with the Engine API call `docker start` makes,
//     and GET / is polled every millisecond (new connection each time)
//     until the content arrives;
//   - docker-cli:   the same with the `docker start` command itself.
//
// The goal compares caddy with the faster of the two baselines.
func coldstart(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("coldstart", flag.ExitOnError)
	caddy := fs.String("caddy", "", "Caddy HTTP address")
	admin := fs.String("admin", "", "Caddy admin address")
	schema := fs.String("schema", "", "namespace")
	site := fs.String("site", "", "site id")
	host := fs.String("host", "", "site host")
	runs := fs.Int("runs", 15, "runs of each kind")
	settle := fs.Duration("settle", 300*time.Millisecond, "pause after a stop before the next start")
	budget := fs.Duration("budget", 50*time.Millisecond, "goal: caddy median <= baseline median + budget")
	fs.Parse(args)
	want := "hello from " + strings.SplitN(*host, ".", 2)[0]

	cli, err := dockerClient(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()

	// The site's container, created and started by Caddy.
	if err := waitOK(ctx, []string{"-caddy", *caddy, "-host", *host}); err != nil {
		return err
	}
	siteC, err := siteContainer(ctx, cli, *schema, *site)
	if err != nil {
		return err
	}

	// Its twin, outside Caddy's namespace.
	baseName := "bench-baseline-" + *schema
	baseID, baseAddr, err := createTwin(ctx, cli, siteC, baseName, *schema)
	if err != nil {
		return err
	}
	starts, stopWatch := watchStarts(ctx, cli, siteC.ID, baseID)
	defer stopWatch()
	fmt.Printf("site container %s (%s), baseline container %s on %s\n", siteC.Name[1:], siteC.Config.Image, baseName, baseAddr)

	startsBefore, err := metric(ctx, *admin, coldStartsStarted)
	if err != nil {
		return err
	}
	durSumBefore, _ := metric(ctx, *admin, "caddy_tenants_cold_start_duration_seconds_sum")
	durCountBefore, _ := metric(ctx, *admin, "caddy_tenants_cold_start_duration_seconds_count")

	kinds := []string{"caddy", "docker-api", "docker-cli"}
	results := map[string][]time.Duration{}
	after := map[string][]time.Duration{} // from the engine's start event to the content
	measure := func(kind string) (time.Duration, error) {
		switch kind {
		case "caddy":
			if err := killAndWait(ctx, cli, siteC.ID); err != nil {
				return 0, err
			}
			if err := waitCaddySeesStopped(ctx, *caddy, *host); err != nil {
				return 0, err
			}
			time.Sleep(*settle)
			t0 := time.Now()
			status, body, err := get(ctx, oneShot, *caddy, *host, "/")
			done := time.Now()
			if err != nil || status != http.StatusOK || body != want {
				return 0, fmt.Errorf("first request through caddy: %d %q %v", status, body, err)
			}
			at, err := starts.after(siteC.ID, t0)
			if err != nil {
				return 0, err
			}
			after[kind] = append(after[kind], done.Sub(at))
			return done.Sub(t0), nil
		default:
			if err := killAndWait(ctx, cli, baseName); err != nil {
				return 0, err
			}
			time.Sleep(*settle)
			t0 := time.Now()
			if kind == "docker-api" {
				err = cli.ContainerStart(ctx, baseName, container.StartOptions{})
			} else {
				out, cerr := exec.CommandContext(ctx, "docker", "start", baseName).CombinedOutput()
				if cerr != nil {
					err = fmt.Errorf("docker start: %v: %s", cerr, out)
				}
			}
			if err != nil {
				return 0, err
			}
			if err := pollUntil(ctx, baseAddr, want, 30*time.Second); err != nil {
				return 0, err
			}
			done := time.Now()
			at, err := starts.after(baseID, t0)
			if err != nil {
				return 0, err
			}
			after[kind] = append(after[kind], done.Sub(at))
			return done.Sub(t0), nil
		}
	}
	for i := range *runs {
		// Rotate the order so no kind always runs right after another.
		for j := range kinds {
			kind := kinds[(i+j)%len(kinds)]
			d, err := measure(kind)
			if err != nil {
				return fmt.Errorf("run %d, %s: %w", i+1, kind, err)
			}
			results[kind] = append(results[kind], d)
		}
		fmt.Printf("run %2d: caddy %7.1f ms (%5.1f)   docker-api %7.1f ms (%5.1f)   docker-cli %7.1f ms (%5.1f)\n", i+1,
			ms(results["caddy"][i]), ms(after["caddy"][i]), ms(results["docker-api"][i]), ms(after["docker-api"][i]),
			ms(results["docker-cli"][i]), ms(after["docker-cli"][i]))
	}

	startsAfter, err := metric(ctx, *admin, coldStartsStarted)
	if err != nil {
		return err
	}
	durSum, _ := metric(ctx, *admin, "caddy_tenants_cold_start_duration_seconds_sum")
	durCount, _ := metric(ctx, *admin, "caddy_tenants_cold_start_duration_seconds_count")

	fmt.Println("(in parentheses: ms from the engine's \"start\" event to the content, which leaves out the engine's own start time)")
	fmt.Println()
	fmt.Printf("%-11s %8s %8s %8s %8s %8s   (ms, %d runs each)\n", "", "min", "median", "p90", "max", "paired", *runs)
	paired := func(kind string) time.Duration { // median of run-by-run differences to docker-api
		var d []time.Duration
		for i := range results[kind] {
			d = append(d, results[kind][i]-results["docker-api"][i])
		}
		return median(sorted(d))
	}
	for _, kind := range kinds {
		s := sorted(results[kind])
		fmt.Printf("%-11s %8.1f %8.1f %8.1f %8.1f %+8.1f\n", kind, ms(s[0]), ms(median(s)), ms(pct(s, 0.9)), ms(s[len(s)-1]), ms(paired(kind)))
	}
	fmt.Println("(paired: median of the per-run differences to docker-api)")
	fmt.Println("after the engine's start event:")
	for _, kind := range kinds {
		s := sorted(after[kind])
		fmt.Printf("%-11s %8.1f %8.1f %8.1f %8.1f\n", kind, ms(s[0]), ms(median(s)), ms(pct(s, 0.9)), ms(s[len(s)-1]))
	}
	if n := durCount - durCountBefore; n > 0 {
		fmt.Printf("plugin's own cold_start_duration (request arrival to container ready), mean: %.1f ms over %.0f starts\n",
			1000*(durSum-durSumBefore)/n, n)
	}
	fmt.Printf("caddy_tenants_cold_starts_total{result=\"started\"} rose by %.0f (want %d)\n", startsAfter-startsBefore, *runs)

	caddyMed := median(sorted(results["caddy"]))
	apiMed := median(sorted(results["docker-api"]))
	cliMed := median(sorted(results["docker-cli"]))
	base, baseKind := apiMed, "docker-api"
	if cliMed < apiMed {
		base, baseKind = cliMed, "docker-cli"
	}
	diff := caddyMed - base
	fmt.Printf("\ncold start median: caddy %.1f ms, baseline (%s) %.1f ms, difference %+.1f ms (vs docker-cli %+.1f ms)\n",
		ms(caddyMed), baseKind, ms(base), ms(diff), ms(caddyMed-cliMed))
	verdict := "PASS"
	if diff > *budget {
		verdict = "MISS"
	}
	fmt.Printf("goal: caddy <= baseline + %.0f ms: %s\n", ms(*budget), verdict)
	fmt.Printf("after the start event, median: caddy %.1f ms, docker-api %.1f ms, difference %+.1f ms\n",
		ms(median(sorted(after["caddy"]))), ms(median(sorted(after["docker-api"]))),
		ms(median(sorted(after["caddy"]))-median(sorted(after["docker-api"]))))
	if startsAfter-startsBefore != float64(*runs) {
		return fmt.Errorf("expected %d cold starts, the metric says %.0f", *runs, startsAfter-startsBefore)
	}
	return nil
}

// createTwin creates (and leaves stopped) a container like c, labelled as
// the bench's, with a volume of its own and its port published on a fixed
// free loopback port, which it returns.
func createTwin(ctx context.Context, cli *client.Client, c container.InspectResponse, name, schema string) (id, addr string, err error) {
	labels := map[string]string{LabelBench: schema}
	port, err := freePort()
	if err != nil {
		return "", "", err
	}
	cfg := *c.Config
	cfg.Labels = labels
	cfg.Hostname, cfg.Domainname = "", ""
	hc := *c.HostConfig
	hc.PortBindings = nat.PortMap{}
	for p := range cfg.ExposedPorts {
		hc.PortBindings[p] = []nat.PortBinding{{HostIP: "127.0.0.1", HostPort: strconv.Itoa(port)}}
	}
	hc.Mounts = nil
	for _, m := range c.HostConfig.Mounts {
		if m.Type == mount.TypeVolume {
			v, err := cli.VolumeCreate(ctx, volume.CreateOptions{Name: name + "-data", Labels: labels})
			if err != nil {
				return "", "", err
			}
			m.Source = v.Name
		}
		hc.Mounts = append(hc.Mounts, m)
	}
	created, err := cli.ContainerCreate(ctx, &cfg, &hc, nil, nil, name)
	if err != nil {
		return "", "", fmt.Errorf("creating baseline container: %w", err)
	}
	addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	// A first start (volume initialisation and the like) is not measured.
	if err := cli.ContainerStart(ctx, name, container.StartOptions{}); err != nil {
		return "", "", fmt.Errorf("starting baseline container: %w", err)
	}
	return created.ID, addr, pollUntil(ctx, addr, "", 30*time.Second)
}

// pollUntil GETs / of addr every millisecond, each time on a new
// connection, until it answers 200 (with body want, if set).
func pollUntil(ctx context.Context, addr, want string, within time.Duration) error {
	return pollWith(ctx, probeClient, addr, want, within)
}

// pollWith is pollUntil with client c.
func pollWith(ctx context.Context, c *http.Client, addr, want string, within time.Duration) error {
	deadline := time.Now().Add(within)
	var last string
	for time.Now().Before(deadline) {
		status, body, err := get(ctx, c, addr, "", "/")
		if err == nil && status == http.StatusOK && (want == "" || body == want) {
			return nil
		}
		last = fmt.Sprintf("%d %q %v", status, body, err)
		time.Sleep(time.Millisecond)
	}
	return fmt.Errorf("%s not answering within %s (last: %s)", addr, within, last)
}

var probeClient = &http.Client{
	Timeout:   2 * time.Second,
	Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func sorted(ds []time.Duration) []time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s
}

func median(s []time.Duration) time.Duration {
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// pct returns the q-quantile of sorted s (nearest rank).
func pct(s []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(s))+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

// startWatch records the engine's "start" events of some containers.
type startWatch struct {
	mu     sync.Mutex
	events map[string][]time.Time // container id → start times (engine clock)
}

// watchStarts follows the "start" events of the containers ids.
func watchStarts(ctx context.Context, cli *client.Client, ids ...string) (*startWatch, func()) {
	w := &startWatch{events: map[string][]time.Time{}}
	f := filters.NewArgs(filters.Arg("type", string(events.ContainerEventType)), filters.Arg("event", string(events.ActionStart)))
	for _, id := range ids {
		f.Add("container", id)
	}
	ctx, cancel := context.WithCancel(ctx)
	msgs, errs := cli.Events(ctx, events.ListOptions{Filters: f})
	go func() {
		for {
			select {
			case m := <-msgs:
				w.mu.Lock()
				w.events[m.Actor.ID] = append(w.events[m.Actor.ID], time.Unix(0, m.TimeNano))
				w.mu.Unlock()
			case <-errs:
				return
			}
		}
	}()
	return w, cancel
}

// after returns the time of id's first start event at or after t0 (less a
// millisecond of clock rounding), waiting up to 5s for it to arrive.
func (w *startWatch) after(id string, t0 time.Time) (time.Time, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		w.mu.Lock()
		for _, at := range w.events[id] {
			if !at.Before(t0.Add(-time.Millisecond)) {
				w.mu.Unlock()
				return at, nil
			}
		}
		w.mu.Unlock()
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("no start event for %.12s after %s", id, t0.Format(time.StampMilli))
		}
		time.Sleep(5 * time.Millisecond)
	}
}
