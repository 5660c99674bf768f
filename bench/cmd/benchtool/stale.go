package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"time"
)

// stale measures, side by side in one run, the time to first byte of a
// GET through Caddy:
//
//   - hot:         the site running (tenant_proxy's hot path), a new
//     connection per request;
//   - stale-first: the first GET after the site's container was killed
//     (Caddy having seen it stop), answered from the kept copy while the
//     site starts in the background;
//   - stale-next:  further GETs during that start, every 100 ms;
//
// and how long the background start took to serve the live site again
// (from the first stale answer until the readiness probe says running).
// The site's template serves stale and its app boots in LISTEN_DELAY.
func staleBench(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("stale", flag.ExitOnError)
	caddy := fs.String("caddy", "", "Caddy HTTP address")
	schema := fs.String("schema", "", "namespace")
	site := fs.String("site", "", "site id")
	host := fs.String("host", "", "site host")
	runs := fs.Int("runs", 30, "cold starts")
	hotPerRun := fs.Int("hot", 5, "hot-path GETs per run")
	fs.Parse(args)
	want := "hello from " + strings.SplitN(*host, ".", 2)[0]

	cli, err := dockerClient(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	if err := waitOK(ctx, []string{"-caddy", *caddy, "-host", *host}); err != nil {
		return err
	}
	siteC, err := siteContainer(ctx, cli, *schema, *site)
	if err != nil {
		return err
	}
	fmt.Printf("site container %s (%s), env %v\n", siteC.Name[1:], siteC.Config.Image, listenDelay(siteC.Config.Env))

	var hot, first, next, toLive []time.Duration
	for i := range *runs {
		for range *hotPerRun {
			d, cacheStatus, err := ttfb(ctx, *caddy, *host, want)
			if err != nil {
				return fmt.Errorf("run %d, hot: %w", i+1, err)
			}
			if cacheStatus != "" {
				return fmt.Errorf("run %d, hot: answered from a copy (%s)", i+1, cacheStatus)
			}
			hot = append(hot, d)
		}
		if err := killAndWait(ctx, cli, siteC.ID); err != nil {
			return err
		}
		if err := waitCaddySeesStopped(ctx, *caddy, *host); err != nil {
			return err
		}
		t0 := time.Now()
		d, cacheStatus, err := ttfb(ctx, *caddy, *host, want)
		if err != nil {
			return fmt.Errorf("run %d, first stale GET: %w", i+1, err)
		}
		if !strings.Contains(cacheStatus, "stale-while-starting") {
			return fmt.Errorf("run %d: the first GET during the start was not a stale copy (Cache-Status %q)", i+1, cacheStatus)
		}
		first = append(first, d)
		for {
			status, _, err := get(ctx, oneShot, *caddy, *host, readyPath)
			if err == nil && status == http.StatusNoContent {
				toLive = append(toLive, time.Since(t0))
				break
			}
			if time.Since(t0) > 60*time.Second {
				return fmt.Errorf("run %d: the site did not come up within 60s of the stale answer", i+1)
			}
			time.Sleep(100 * time.Millisecond)
			d, cacheStatus, err := ttfb(ctx, *caddy, *host, want)
			if err != nil {
				return fmt.Errorf("run %d, stale GET: %w", i+1, err)
			}
			if strings.Contains(cacheStatus, "stale-while-starting") {
				next = append(next, d)
			}
		}
		fmt.Printf("run %2d: hot %6.2f ms   stale-first %6.2f ms   live again after %7.1f ms\n",
			i+1, ms(median(sorted(hot[len(hot)-*hotPerRun:]))), ms(first[i]), ms(toLive[i]))
	}

	fmt.Println()
	fmt.Printf("%-12s %6s %8s %8s %8s %8s   (time to first byte, ms; new connection each)\n", "", "n", "min", "p50", "p99", "max")
	for _, row := range []struct {
		name string
		d    []time.Duration
	}{{"hot", hot}, {"stale-first", first}, {"stale-next", next}, {"live-again", toLive}} {
		if len(row.d) == 0 {
			continue
		}
		s := sorted(row.d)
		fmt.Printf("%-12s %6d %8.2f %8.2f %8.2f %8.2f\n", row.name, len(s), ms(s[0]), ms(median(s)), ms(pct(s, 0.99)), ms(s[len(s)-1]))
	}
	fmt.Println("(live-again: from the first stale answer until Caddy has the site running, for reference)")
	h, f := median(sorted(hot)), median(sorted(first))
	fmt.Printf("\nstale-first p50 %.2f ms vs hot p50 %.2f ms: %+.2f ms; goal (the hot-path figure, a few ms): %s\n",
		ms(f), ms(h), ms(f-h), verdict(f < h+5*time.Millisecond))
	return nil
}

// ttfb GETs / of host through Caddy on a new connection and returns the
// time to the response's first byte and its Cache-Status; the body must
// be want.
func ttfb(ctx context.Context, caddy, host, want string) (time.Duration, string, error) {
	var firstByte time.Time
	trace := &httptrace.ClientTrace{GotFirstResponseByte: func() { firstByte = time.Now() }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, "http://"+caddy+"/", nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	t0 := time.Now()
	resp, err := oneShot.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || string(body) != want {
		return 0, "", fmt.Errorf("GET /: %d %q %v", resp.StatusCode, body, err)
	}
	return firstByte.Sub(t0), resp.Header.Get("Cache-Status"), nil
}

func listenDelay(env []string) string {
	for _, kv := range env {
		if strings.HasPrefix(kv, "LISTEN_DELAY=") {
			return kv
		}
	}
	return "LISTEN_DELAY unset"
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}
