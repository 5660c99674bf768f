package multitenant

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/agistaffers/caddy-multitenant/figures"
	"github.com/agistaffers/caddy-multitenant/provisioner"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// How the platform keeps its figures: at the end of every minute it reads
// the stats of the running containers (each once, a few at a time, never
// on a request's path), rolls the minute up and saves what is pending in
// one round trip, which also prunes every node's figures older than
// figuresRetention. Minutes that fail to save wait in the recorder's
// rings (figures.RingMinutes at most) for the next round.
const (
	figuresRetention   = 30 * 24 * time.Hour
	statsConcurrency   = 4
	statsTimeout       = 20 * time.Second
	figuresSaveTimeout = 10 * time.Second
)

// keepFigures rolls up and saves the figures every minute until ctx
// ends, then saves the minute so far.
func (p *platform) keepFigures(ctx context.Context) {
	var prev map[string]provisioner.ContainerStats
	failing := false
	defer func() {
		// Bounded, so that a clean shutdown records the minute so far.
		final, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		p.saveFigures(final, &failing)
	}()
	for {
		next := time.Now().Truncate(time.Minute).Add(time.Minute)
		timer := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			timer.Stop()
			p.figures.Roll(time.Now().Truncate(time.Minute), nil, -1)
			return
		case <-timer.C:
		}
		samples, running, latest := p.sampleContainers(ctx, prev)
		prev = latest
		if dropped := p.figures.Roll(next.Add(-time.Minute), samples, running); dropped > 0 {
			p.logger.Warn("dropped unsaved figures: the database was away too long", zap.Int("minutes", dropped))
		}
		if ctx.Err() != nil {
			return
		}
		saveCtx, cancel := context.WithTimeout(ctx, figuresSaveTimeout)
		p.saveFigures(saveCtx, &failing)
		cancel()
	}
}

// sampleContainers reads the running containers' stats: each site's
// sample (its CPU use from prev, the previous samples) and how many run,
// -1 without the engine.
func (p *platform) sampleContainers(ctx context.Context, prev map[string]provisioner.ContainerStats) (map[string]figures.Sample, int, map[string]provisioner.ContainerStats) {
	if !p.engineReady.Load() {
		return nil, -1, nil
	}
	ctx, cancel := context.WithTimeout(ctx, statsTimeout)
	defer cancel()
	running, stats, err := p.prov.SampleStats(ctx, statsConcurrency)
	if err != nil {
		if !errors.Is(ctx.Err(), context.Canceled) { // not the shutdown
			p.logger.Warn("reading container stats", zap.Error(err))
		}
		return nil, -1, prev
	}
	samples := make(map[string]figures.Sample, len(stats))
	latest := make(map[string]provisioner.ContainerStats, len(stats))
	for _, s := range stats {
		sample := figures.Sample{MemoryBytes: s.MemoryBytes}
		sample.CPUPercent, sample.HasCPU = s.CPUPercent(prev[s.SiteID])
		samples[s.SiteID], latest[s.SiteID] = sample, s
	}
	return samples, running, latest
}

// saveFigures saves the pending minutes, and forgets the sites the
// database no longer has.
func (p *platform) saveFigures(ctx context.Context, failing *bool) {
	sites, platform := p.figures.Pending()
	gone, err := p.store.SaveFigures(ctx, p.node, tenants.FiguresBatch{
		Sites:    toStoreMinutes(sites),
		Platform: toStorePlatformMinutes(platform),
		Known:    p.figures.IDs(),
		Before:   time.Now().Add(-figuresRetention),
	})
	if err != nil {
		if !*failing {
			p.logger.Warn("saving figures; will retry", zap.Int("site_minutes", len(sites)), zap.Error(err))
		}
		*failing = true
		return
	}
	*failing = false
	p.figures.Saved()
	p.figures.Forget(gone)
	// A deleted site's kept answers go too (its rows in PostgreSQL went
	// with the site).
	for _, id := range gone {
		p.stale.kept.Forget(id)
	}
}

func toStoreMinutes(ms []figures.Minute) []tenants.SiteMinute {
	out := make([]tenants.SiteMinute, len(ms))
	for i, m := range ms {
		out[i] = tenants.SiteMinute{SiteID: m.SiteID, At: m.At, SiteBucket: tenants.SiteBucket{
			Requests:    int64(m.Latency.Count()),
			Errors:      int64(m.Errors),
			Latency:     m.Latency.Counts(),
			ColdStarts:  int64(m.ColdStarts),
			ColdStartMs: float64(m.ColdStartTime) / float64(time.Millisecond),
		}}
		if c := m.Container; c != nil {
			memory := int64(c.MemoryBytes)
			out[i].MemoryBytes = &memory
			if c.HasCPU {
				cpu := c.CPUPercent
				out[i].CPUPercent = &cpu
			}
		}
	}
	return out
}

func toStorePlatformMinutes(ms []figures.PlatformMinute) []tenants.PlatformMinute {
	out := make([]tenants.PlatformMinute, len(ms))
	for i, m := range ms {
		out[i] = tenants.PlatformMinute{At: m.At,
			PlatformBucket: tenants.PlatformBucket{ColdStarts: int64(m.ColdStarts), Failures: int64(m.Failures)}}
		if m.Running >= 0 {
			running := int64(m.Running)
			out[i].Running = &running
		}
	}
	return out
}
