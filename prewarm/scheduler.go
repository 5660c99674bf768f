package prewarm

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// ErrNoRoom is what Engine.StartIfRoom returns (wrapped) when the
// platform's cap on running sites leaves no free room.
var ErrNoRoom = errors.New("no free room under max_running")

// Candidate is a site the scheduler may pre-warm (its switch is on and it
// serves), with its first requests in the slots of the weeks looked at.
type Candidate struct {
	SiteID        string
	FirstRequests []time.Time
}

// Event is one pre-warm: the site, the slot it was warmed for, the
// model's probability, and when the site was ready.
type Event struct {
	SiteID      string
	Slot        time.Time
	Probability float64
	At          time.Time
}

// FirstRequest is the first visitor of a pre-warmed slot.
type FirstRequest struct {
	EventID int64
	At      time.Time
}

// Store is the history the scheduler reads and the record it writes.
type Store interface {
	// Candidates returns the sites that may be pre-warmed for slot, each
	// with its first requests in the same hour 1 to weeks weeks before
	// (sites with none may be left out).
	Candidates(ctx context.Context, slot time.Time, weeks int) ([]Candidate, error)
	// RecordPrewarm records e; recorded is false when the site's slot was
	// pre-warmed already.
	RecordPrewarm(ctx context.Context, e Event) (id int64, recorded bool, err error)
	// SetFirstRequests records first visitors, in one batch.
	SetFirstRequests(ctx context.Context, firsts []FirstRequest) error
	// Prune removes the pre-warms made before before.
	Prune(ctx context.Context, before time.Time) error
}

// Engine starts sites.
type Engine interface {
	// Running reports whether the site is known to run (or to be
	// starting), on this node or another.
	Running(siteID string) bool
	// Room reports whether one more site may run without stopping
	// another.
	Room() bool
	// StartIfRoom starts the site and waits until it is ready, into
	// free room only: it never stops another site to make room, and
	// fails with ErrNoRoom instead.
	StartIfRoom(ctx context.Context, siteID string) error
}

// Config configures a Scheduler. Zero values mean the documented
// default.
type Config struct {
	// Lead is how long before a slot its sites are started. Default: 2m.
	Lead time.Duration
	// Model decides which sites to start.
	Model  Model
	Store  Store
	Engine Engine
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Logger defaults to a no-op logger.
	Logger *zap.Logger
}

// Scheduler pre-warms sites before their slots and notices their first
// visitors. Its methods are safe for concurrent use.
type Scheduler struct {
	cfg Config
	log *zap.Logger

	mu      sync.Mutex
	pending map[string]pending // site id → its pre-warm waiting for a visitor
	found   []FirstRequest     // first visitors waiting to be flushed

	starts, hits atomic.Int64
}

// pending is a pre-warm whose first visitor has not come yet.
type pending struct {
	eventID int64
	at      time.Time // the site was ready then
	// missingSince is when the site was first seen in use nowhere
	// (zero while it is in use): a moment out of sight (a node's
	// container replaced, a node not yet reporting it) is no sleep.
	missingSince time.Time
}

// New returns a Scheduler; it does no I/O.
func New(cfg Config) *Scheduler {
	if cfg.Lead <= 0 {
		cfg.Lead = DefaultLead
	}
	cfg.Model = cfg.Model.withDefaults()
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return &Scheduler{cfg: cfg, log: cfg.Logger, pending: make(map[string]pending)}
}

// Lead returns how long before a slot its sites are started.
func (s *Scheduler) Lead() time.Duration { return s.cfg.Lead }

// Report says what one Warm did.
type Report struct {
	Slot time.Time
	// Decisions are the model's, one per candidate, most likely first.
	Decisions []Decision
	// Started are the sites started; Running those the model named that
	// ran already; NoRoom those left asleep for want of room; Failed
	// those whose start failed.
	Started, Running, NoRoom, Failed []string
}

// Warm starts, for slot, the sites the model names that are asleep, the
// most likely first, while there is free room; it records each pre-warm
// and watches for its first visitor. A slot that has begun is not warmed
// (its visitors have woken their sites themselves).
func (s *Scheduler) Warm(ctx context.Context, slot time.Time) (Report, error) {
	slot = SlotOf(slot)
	rep := Report{Slot: slot}
	if !s.cfg.Now().Before(slot) {
		return rep, nil
	}
	cands, err := s.cfg.Store.Candidates(ctx, slot, s.cfg.Model.Weeks)
	if err != nil {
		return rep, fmt.Errorf("reading the sites' first requests: %w", err)
	}
	if err := s.cfg.Store.Prune(ctx, slot.Add(-Retention)); err != nil {
		s.log.Warn("pruning old pre-warms", zap.Error(err))
	}
	for _, c := range cands {
		rep.Decisions = append(rep.Decisions, s.cfg.Model.Decide(c.SiteID, slot, c.FirstRequests))
	}
	slices.SortStableFunc(rep.Decisions, func(a, b Decision) int {
		return cmp.Or(cmp.Compare(b.Probability, a.Probability), cmp.Compare(a.SiteID, b.SiteID))
	})
	for i, d := range rep.Decisions {
		if !d.Warm {
			continue
		}
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
		if s.cfg.Engine.Running(d.SiteID) {
			rep.Running = append(rep.Running, d.SiteID)
			continue
		}
		if !s.cfg.Engine.Room() {
			rep.NoRoom = append(rep.NoRoom, s.noRoom(rep.Decisions[i:])...)
			break
		}
		err := s.cfg.Engine.StartIfRoom(ctx, d.SiteID)
		switch {
		case errors.Is(err, ErrNoRoom):
			rep.NoRoom = append(rep.NoRoom, s.noRoom(rep.Decisions[i:])...)
			return rep, nil
		case err != nil:
			s.log.Warn("pre-warming site", zap.String("site_id", d.SiteID), zap.Error(err))
			rep.Failed = append(rep.Failed, d.SiteID)
			continue
		}
		at := s.cfg.Now()
		s.starts.Add(1)
		rep.Started = append(rep.Started, d.SiteID)
		id, recorded, err := s.cfg.Store.RecordPrewarm(ctx, Event{SiteID: d.SiteID, Slot: slot, Probability: d.Probability, At: at})
		if err != nil {
			return rep, fmt.Errorf("recording the pre-warm of site %s: %w", d.SiteID, err)
		}
		s.log.Info("pre-warmed site", zap.String("site_id", d.SiteID), zap.Time("slot", slot), zap.String("why", d.String()))
		if recorded {
			s.arm(d.SiteID, id, at)
		}
	}
	return rep, nil
}

// noRoom lists the sites of ds the model would start that are asleep.
func (s *Scheduler) noRoom(ds []Decision) []string {
	var ids []string
	for _, d := range ds {
		if d.Warm && !s.cfg.Engine.Running(d.SiteID) {
			ids = append(ids, d.SiteID)
		}
	}
	return ids
}

// Stats counts what the scheduler did since it was made.
type Stats struct {
	// Starts are the pre-warms made, Hits those whose slot had its first
	// visitor before the site went back to sleep.
	Starts, Hits int64
}

// Stats returns the scheduler's counts.
func (s *Scheduler) Stats() Stats { return Stats{Starts: s.starts.Load(), Hits: s.hits.Load()} }
