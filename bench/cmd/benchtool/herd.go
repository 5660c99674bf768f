package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"

	"github.com/agistaffers/caddy-multitenant/provisioner"
)

// herd sends n concurrent requests (released together, each on its own
// connection) to a site that is not running and asserts: exactly one
// container start (Docker's events for the site's label, the containers
// carrying its label, and Caddy's cold-start counter), every request
// answered 200 with the site's content. It prints the latency
// distribution.
//
// A site that has never run is a "fresh" herd (the container is created
// too); a site whose container exists is killed first, a "stopped" herd.
func herd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("herd", flag.ExitOnError)
	caddy := fs.String("caddy", "", "Caddy HTTP address")
	admin := fs.String("admin", "", "Caddy admin address")
	schema := fs.String("schema", "", "namespace")
	site := fs.String("site", "", "site id")
	host := fs.String("host", "", "site host")
	n := fs.Int("n", 1000, "concurrent requests")
	fs.Parse(args)
	want := "hello from " + strings.SplitN(*host, ".", 2)[0]

	cli, err := dockerClient(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()

	before, err := siteContainers(ctx, cli, *schema, *site)
	if err != nil {
		return err
	}
	mode := "fresh (no container yet: create + start)"
	if len(before) > 0 {
		mode = "stopped (container exists, killed before the herd)"
		if err := killAndWait(ctx, cli, before[0].ID); err != nil {
			return err
		}
		if err := waitCaddySeesStopped(ctx, *caddy, *host); err != nil {
			return err
		}
		time.Sleep(300 * time.Millisecond)
	}
	startsBefore, err := metric(ctx, *admin, coldStartsStarted)
	if err != nil {
		return err
	}

	// Docker's own account of what happens to the site's containers.
	ectx, stopEvents := context.WithCancel(ctx)
	defer stopEvents()
	msgs, errs := cli.Events(ectx, events.ListOptions{Filters: filters.NewArgs(
		filters.Arg("type", string(events.ContainerEventType)),
		filters.Arg("label", provisioner.LabelNamespace+"="+*schema),
		filters.Arg("label", provisioner.LabelSite+"="+*site),
	)})
	var evMu sync.Mutex
	evCount := map[events.Action]int{}
	evAt := map[events.Action]time.Time{} // first of each, by the engine's clock
	evDone := make(chan struct{})
	go func() {
		defer close(evDone)
		for {
			select {
			case m := <-msgs:
				evMu.Lock()
				evCount[m.Action]++
				if _, seen := evAt[m.Action]; !seen {
					evAt[m.Action] = time.Unix(0, m.TimeNano)
				}
				evMu.Unlock()
			case <-errs:
				return
			}
		}
	}()
	time.Sleep(100 * time.Millisecond) // the event stream is subscribed

	client := &http.Client{
		Timeout: 90 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConnsPerHost: *n,
			DisableKeepAlives:   true, // one connection per request, as n visitors would
		},
	}
	type result struct {
		status  int
		body    string
		err     error
		latency time.Duration
		done    time.Time
	}
	results := make([]result, *n)
	var wrote atomic.Int64     // requests fully written
	var firstResp atomic.Int64 // unix nanos of the first response header
	var wroteAtFirst atomic.Int64
	wroteAtFirst.Store(-1)
	release := make(chan struct{})
	var ready, wg sync.WaitGroup
	ready.Add(*n)
	wg.Add(*n)
	for i := range *n {
		go func() {
			defer wg.Done()
			trace := &httptrace.ClientTrace{
				WroteRequest: func(httptrace.WroteRequestInfo) { wrote.Add(1) },
				GotFirstResponseByte: func() {
					if firstResp.CompareAndSwap(0, time.Now().UnixNano()) {
						wroteAtFirst.Store(wrote.Load())
					}
				},
			}
			req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, "http://"+*caddy+"/", nil)
			if err != nil {
				results[i].err = err
				ready.Done()
				return
			}
			req.Host = *host
			ready.Done()
			<-release
			t0 := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				results[i] = result{err: err, latency: time.Since(t0), done: time.Now()}
				return
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			results[i] = result{status: resp.StatusCode, body: string(body), err: err, latency: time.Since(t0), done: time.Now()}
		}()
	}
	ready.Wait()
	t0 := time.Now()
	close(release)
	wg.Wait()
	total := time.Since(t0)
	time.Sleep(500 * time.Millisecond) // late events, if any
	stopEvents()
	<-evDone

	startsAfter, err := metric(ctx, *admin, coldStartsStarted)
	if err != nil {
		return err
	}
	after, err := siteContainers(ctx, cli, *schema, *site)
	if err != nil {
		return err
	}

	// Report.
	statuses := map[string]int{}
	var lat []time.Duration
	wrongBody := 0
	for _, r := range results {
		switch {
		case r.err != nil:
			statuses["error: "+shortErr(r.err)]++
		default:
			statuses[fmt.Sprint(r.status)]++
			if r.status == http.StatusOK && r.body != want {
				wrongBody++
			}
		}
		lat = append(lat, r.latency)
	}
	lat = sorted(lat)
	evMu.Lock()
	starts, creates := evCount[events.ActionStart], evCount[events.ActionCreate]
	evMu.Unlock()

	fmt.Printf("herd: %d concurrent GET %s/ via %s, site %s: %s\n", *n, *host, *caddy, *site, mode)
	fmt.Printf("requests written before the first response arrived: %d of %d\n", wroteAtFirst.Load(), *n)
	for _, a := range []events.Action{events.ActionCreate, events.ActionStart} {
		if at, ok := evAt[a]; ok {
			fmt.Printf("docker %q event at +%.0f ms (engine clock; \"start\" is emitted once the engine has started it)\n", a, ms(at.Sub(t0)))
		}
	}
	fmt.Printf("all %d answered after %.0f ms\n", *n, ms(total))
	keys := make([]string, 0, len(statuses))
	for k := range statuses {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("  status %s: %d\n", k, statuses[k])
	}
	fmt.Printf("  200 with the wrong body: %d\n", wrongBody)
	fmt.Printf("latency (ms): min %.1f  p50 %.1f  p90 %.1f  p99 %.1f  max %.1f\n",
		ms(lat[0]), ms(pct(lat, 0.5)), ms(pct(lat, 0.9)), ms(pct(lat, 0.99)), ms(lat[len(lat)-1]))
	printHistogram(lat)
	fmt.Printf("docker events for the site during the herd: create %d, start %d\n", creates, starts)
	fmt.Printf("containers labelled with the site: %d\n", len(after))
	fmt.Printf("caddy_tenants_cold_starts_total{result=\"started\"} rose by %.0f\n", startsAfter-startsBefore)

	var fails []error
	if statuses["200"] != *n || wrongBody != 0 {
		fails = append(fails, fmt.Errorf("%d of %d answered 200 with the site's content", statuses["200"]-wrongBody, *n))
	}
	if starts != 1 {
		fails = append(fails, fmt.Errorf("%d container starts, want exactly 1", starts))
	}
	if len(after) != 1 {
		fails = append(fails, fmt.Errorf("%d containers for the site, want 1", len(after)))
	}
	if startsAfter-startsBefore != 1 {
		fails = append(fails, fmt.Errorf("cold-start metric rose by %.0f, want 1", startsAfter-startsBefore))
	}
	if len(fails) > 0 {
		fmt.Println("herd: FAIL")
		return errors.Join(fails...)
	}
	fmt.Println("herd: PASS (exactly one start, all answered 200 with the site's content)")
	return nil
}

// printHistogram prints a small text histogram of sorted latencies in ten
// equal-width buckets from min to max.
func printHistogram(lat []time.Duration) {
	lo, hi := lat[0], lat[len(lat)-1]
	const buckets = 10
	width := (hi - lo) / buckets
	if width <= 0 {
		width = 1
	}
	counts := make([]int, buckets)
	for _, d := range lat {
		i := int((d - lo) / width)
		counts[min(i, buckets-1)]++
	}
	peak := 0
	for _, c := range counts {
		peak = max(peak, c)
	}
	for i, c := range counts {
		bar := strings.Repeat("#", (c*50+peak-1)/peak)
		fmt.Printf("  %7.1f – %7.1f ms %5d %s\n", ms(lo+time.Duration(i)*width), ms(lo+time.Duration(i+1)*width), c, bar)
	}
}

func shortErr(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return s
}
