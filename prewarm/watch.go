package prewarm

import (
	"context"
	"time"
)

// How a pre-warm learns of its first visitor without costing requests
// anything: the platform already gathers, once a second, every node's use
// of the sites (requests in flight, last activity) to keep idle reapers
// off sites another node serves. Observe reads that: a pre-warmed site
// whose last activity moved past the pre-warm had its first visitor then
// (to a second; the activity of a monitor, which wakes nothing, does not
// count); one that is in use nowhere for asleepAfter went back to sleep
// without one. Flush writes what was found, in one batch.

// forgetAfter bounds how long a pre-warm waits for its visitor in memory:
// far longer than any idle timeout lets a site run unused.
const forgetAfter = 24 * time.Hour

// asleepAfter is how long a pre-warmed site must be in use nowhere before
// it counts as asleep again: several rounds of the nodes' reports, far
// below any idle timeout.
const asleepAfter = 5 * time.Second

// ActivityResolution is how far behind the real time a request's
// activity stamp may be: the provisioner stamps requests with a clock it
// refreshes every 250 ms at most (a loaded machine lags more), so a
// visitor within this of a pre-warm cannot be told from the pre-warm's
// own start, and only one after it is found.
const ActivityResolution = time.Second

// Activity is the use of one site, by one node or several together.
type Activity struct {
	SiteID string
	// LastActive is when a request or connection last began or ended.
	LastActive time.Time
	// Busy is true while a request or connection is in flight.
	Busy bool
}

// arm watches for the first visitor of the site pre-warmed at at.
func (s *Scheduler) arm(siteID string, eventID int64, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending[siteID] = pending{eventID: eventID, at: at}
}

// Pending returns how many pre-warms wait for their first visitor, or
// for it to be recorded: while none does, Observe and Flush have nothing
// to do.
func (s *Scheduler) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending) + len(s.found)
}

// Observe takes the use of the sites as seen at asOf: every site running
// or in use on any node, with their activity (one entry per node is
// fine). It notes the first visitors of pre-warmed sites for Flush, and
// forgets the pre-warms of sites that went back to sleep.
func (s *Scheduler) Observe(asOf time.Time, acts []Activity) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) == 0 {
		return
	}
	use := make(map[string]Activity, len(acts))
	for _, a := range acts {
		if prev, ok := use[a.SiteID]; ok {
			a.Busy = a.Busy || prev.Busy
			if prev.LastActive.After(a.LastActive) {
				a.LastActive = prev.LastActive
			}
		}
		use[a.SiteID] = a
	}
	for id, p := range s.pending {
		if !p.at.Before(asOf) {
			continue // armed after the snapshot was taken
		}
		a, inUse := use[id]
		switch {
		case asOf.Sub(p.at) > forgetAfter:
			delete(s.pending, id)
		case !inUse:
			if p.missingSince.IsZero() {
				p.missingSince = asOf
				s.pending[id] = p
			} else if asOf.Sub(p.missingSince) >= asleepAfter {
				delete(s.pending, id) // asleep again: no visitor
			}
		case a.LastActive.After(p.at.Add(ActivityResolution)):
			s.found = append(s.found, FirstRequest{EventID: p.eventID, At: a.LastActive})
			s.hits.Add(1)
			delete(s.pending, id)
		case a.Busy:
			s.found = append(s.found, FirstRequest{EventID: p.eventID, At: asOf})
			s.hits.Add(1)
			delete(s.pending, id)
		case !p.missingSince.IsZero():
			p.missingSince = time.Time{}
			s.pending[id] = p
		}
	}
}

// Flush records the first visitors Observe found; on failure they wait
// for the next Flush.
func (s *Scheduler) Flush(ctx context.Context) error {
	s.mu.Lock()
	found := s.found
	s.found = nil
	s.mu.Unlock()
	if len(found) == 0 {
		return nil
	}
	if err := s.cfg.Store.SetFirstRequests(ctx, found); err != nil {
		s.mu.Lock()
		s.found = append(found, s.found...)
		s.mu.Unlock()
		return err
	}
	return nil
}
