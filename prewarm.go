package multitenant

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/agistaffers/caddy-multitenant/prewarm"
	"github.com/agistaffers/caddy-multitenant/provisioner"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// How the platform wires the pre-warm scheduler (package prewarm): its
// history and records are the store's, its starts the provisioner's
// (StartIfRoom: free room only), its first visitors are noticed in the
// activity the nodes share once a second (activity.go), so a request
// pays nothing for it, and its slots are jobs on the queue (jobs.go).

// newPrewarm returns the platform's scheduler, nil with prewarm off.
func (p *platform) newPrewarm(a *App) *prewarm.Scheduler {
	c := a.Prewarm
	if c.Off {
		return nil
	}
	return prewarm.New(prewarm.Config{
		Lead:   time.Duration(c.Lead),
		Model:  c.model(),
		Store:  prewarmStore{p.store},
		Engine: &prewarmEngine{p: p, maxRunning: a.MaxRunning},
		Logger: a.logger.Named("prewarm"),
	})
}

// prewarmingNow reports whether the site's start in progress is a
// pre-warm's: no request waited for it (it is no cold start in the
// figures), and no room for it is no incident.
func (p *platform) prewarmingNow(siteID string) bool {
	_, ok := p.prewarming.Load(siteID)
	return ok
}

// observePrewarms tells the scheduler how the sites were used at asOf,
// here (mine) and on the other nodes (peers), and records the first
// visitors it found.
func (p *platform) observePrewarms(ctx context.Context, asOf time.Time, mine, peers []provisioner.Activity) {
	acts := make([]prewarm.Activity, 0, len(mine)+len(peers))
	for _, list := range [][]provisioner.Activity{mine, peers} {
		for _, a := range list {
			acts = append(acts, prewarm.Activity{SiteID: a.SiteID, LastActive: a.LastActive, Busy: a.InFlight > 0 || a.Upgraded > 0})
		}
	}
	p.prewarm.Observe(asOf, acts)
	if err := p.prewarm.Flush(ctx); err != nil {
		p.logger.Warn("recording first visitors of pre-warmed sites; will retry", zap.Error(err))
	}
}

// prewarmStore is the scheduler's view of the store.
type prewarmStore struct{ store *tenants.Store }

func (s prewarmStore) Candidates(ctx context.Context, slot time.Time, weeks int) ([]prewarm.Candidate, error) {
	hist, err := s.store.PrewarmHistory(ctx, slot, weeks)
	if err != nil {
		return nil, err
	}
	out := make([]prewarm.Candidate, len(hist))
	for i, h := range hist {
		out[i] = prewarm.Candidate{SiteID: h.SiteID, FirstRequests: h.FirstRequests}
	}
	return out, nil
}

func (s prewarmStore) RecordPrewarm(ctx context.Context, e prewarm.Event) (int64, bool, error) {
	return s.store.RecordPrewarm(ctx, e.SiteID, e.Slot, e.Probability, e.At)
}

func (s prewarmStore) SetFirstRequests(ctx context.Context, firsts []prewarm.FirstRequest) error {
	out := make([]tenants.PrewarmFirstRequest, len(firsts))
	for i, f := range firsts {
		out[i] = tenants.PrewarmFirstRequest{EventID: f.EventID, At: f.At}
	}
	return s.store.SetPrewarmFirstRequests(ctx, out)
}

func (s prewarmStore) Prune(ctx context.Context, before time.Time) error {
	return s.store.PrunePrewarms(ctx, before)
}

// prewarmEngine is the scheduler's view of the provisioner.
type prewarmEngine struct {
	p          *platform
	maxRunning int
}

func (e *prewarmEngine) Running(siteID string) bool {
	_, running := e.p.prov.Upstream(siteID)
	return running
}

func (e *prewarmEngine) Room() bool {
	return e.maxRunning <= 0 || e.p.prov.Running() < e.maxRunning
}

func (e *prewarmEngine) StartIfRoom(ctx context.Context, siteID string) error {
	if !e.p.engineReady.Load() {
		return provisioner.ErrEngineUnavailable
	}
	spec, err := e.p.policy.siteSpec(ctx, e.p.store, siteID)
	if err != nil {
		return fmt.Errorf("reading site %s: %w", siteID, err)
	}
	e.p.prewarming.Store(siteID, struct{}{})
	defer e.p.prewarming.Delete(siteID)
	_, err = e.p.prov.StartIfRoom(ctx, spec)
	if errors.Is(err, provisioner.ErrCapacity) {
		return fmt.Errorf("starting site %s: %w", siteID, prewarm.ErrNoRoom)
	}
	return err
}
