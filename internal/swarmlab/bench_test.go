package swarmlab

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/agistaffers/caddy-multitenant/internal/testimage"
)

// BenchmarkSwarmScaleUpFloor measures the lab's own floor of a Swarm cold
// start: scale 0->1 through the engine API to the first 200, for a task
// reached by its overlay IP and, side by side (rounds alternate), for one
// reached by its mode=host published port. What a runtime on top of Swarm
// adds is measured against it (bench/swarm-floor.sh runs this; issue 14's
// benchmark quotes both). Each op is one scale-up of each; the scale-down
// between them is not timed, but reported.
func BenchmarkSwarmScaleUpFloor(b *testing.B) {
	l := Start(b)
	image := testimage.Build(b, testimage.DefaultTag)
	l.LoadImage(b, image)
	target := l.Nodes[1]
	const published = 18080
	byIP, byPort := "floor-ip", "floor-port"
	createService(b, l, siteService(l, image, byIP, "node.hostname=="+target.Hostname, 0))
	createService(b, l, siteService(l, image, byPort, "node.hostname=="+target.Hostname, published))

	var ipTimes, portTimes, addrTimes, downTimes []time.Duration
	scaleDown := func(ctx context.Context, service string) {
		begun := time.Now()
		if err := l.Scale(ctx, service, 0); err != nil {
			b.Fatal(err)
		}
		if err := l.WaitStopped(ctx, service); err != nil {
			b.Fatal(err)
		}
		downTimes = append(downTimes, time.Since(begun))
	}
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		// By task IP: scale, the task's address from the API, first 200.
		begun := time.Now()
		if err := l.Scale(ctx, byIP, 1); err != nil {
			b.Fatal(err)
		}
		task, err := l.WaitTask(ctx, byIP, func(Task) bool { return true })
		if err != nil {
			b.Fatal(err)
		}
		addrTimes = append(addrTimes, time.Since(begun))
		if _, err := WaitHTTP(ctx, siteURL(task.IP, sitePort)); err != nil {
			b.Fatal(err)
		}
		ipTimes = append(ipTimes, time.Since(begun))

		// By the mode=host port of the node the constraint names.
		begun = time.Now()
		if err := l.Scale(ctx, byPort, 1); err != nil {
			b.Fatal(err)
		}
		if _, err := WaitHTTP(ctx, siteURL(target.Addr, published)); err != nil {
			b.Fatal(err)
		}
		portTimes = append(portTimes, time.Since(begun))

		b.StopTimer()
		scaleDown(ctx, byIP)
		scaleDown(ctx, byPort)
		cancel()
		b.StartTimer()
	}
	report(b, "task-IP", ipTimes)
	report(b, "host-port", portTimes)
	report(b, "IP-in-API", addrTimes)
	report(b, "scale-down", downTimes)
}

// report logs the percentiles of ds and reports p50 and p99 as metrics.
func report(b *testing.B, what string, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	pct := func(p float64) time.Duration { return s[min(len(s)-1, int(p*float64(len(s))))] }
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(pct(0.50)), "p50-ms/"+what)
	b.ReportMetric(ms(pct(0.99)), "p99-ms/"+what)
	b.Logf("%-10s n=%d min %v p50 %v p99 %v max %v", what, len(s),
		s[0].Round(time.Millisecond), pct(0.50).Round(time.Millisecond), pct(0.99).Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond))
}
