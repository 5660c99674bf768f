// Package prewarm starts sites shortly before their usual first request,
// so that the first visitor after a night asleep finds the site warm.
//
// The model is deliberately simple and explainable: a site's wake-ups
// (the first requests that found it asleep, and the first visitors of the
// hours it was pre-warmed for) are rolled up per hour of the week, and
// the hour slot S is pre-warmed when the fraction of the last N weeks
// with a first request in the same hour, one, two … N weeks before S, is
// at least a threshold. Every decision carries that fraction and the
// weeks behind it.
//
// The Scheduler acts on the model: Lead before a slot it starts the
// sites the model names that are asleep, in free room under the
// platform's cap only (never stopping a site to make room), records each
// pre-warm, and notices, from the activity the platform already shares
// between its nodes once a second, the slot's first visitor. The
// package knows neither SQL nor Docker: the root package wires its Store
// and Engine.
package prewarm

import (
	"fmt"
	"strings"
	"time"
)

// Defaults of the model and the scheduler.
const (
	DefaultLead      = 2 * time.Minute
	DefaultWeeks     = 4
	DefaultThreshold = 0.5
	// MaxWeeks is the longest history the model looks at: the per-site
	// figures the wake-ups are read from are kept 30 days.
	MaxWeeks = 4
	// Retention is how long pre-warms are kept, as the figures are.
	Retention = 30 * 24 * time.Hour
)

// Week is the period of the pattern the model looks for, and Slot the
// length of one of its slots.
const (
	Week = 7 * 24 * time.Hour
	Slot = time.Hour
)

// SlotOf returns the start of the hour slot t falls in, in UTC.
func SlotOf(t time.Time) time.Time { return t.UTC().Truncate(Slot) }

// Model decides which hour slots of a site to pre-warm.
type Model struct {
	// Weeks is how many past weeks are looked at. Default: 4.
	Weeks int
	// Threshold is the fraction of those weeks, in (0, 1], that must
	// have had a first request in the slot. Default: 0.5.
	Threshold float64
}

// withDefaults fills in the zero fields.
func (m Model) withDefaults() Model {
	if m.Weeks <= 0 {
		m.Weeks = DefaultWeeks
	}
	if m.Threshold <= 0 {
		m.Threshold = DefaultThreshold
	}
	return m
}

// Decision is the model's answer for one site and one slot, with its
// reasons.
type Decision struct {
	SiteID string
	// Slot is the start of the hour slot.
	Slot time.Time
	// Probability is the fraction of the Weeks looked at that had a first
	// request in the slot; Support holds, for each of those weeks, its
	// first request there (newest week first).
	Probability float64
	Weeks       int
	Support     []time.Time
	// Threshold is the fraction the decision was held against, and Warm
	// whether it was reached.
	Threshold float64
	Warm      bool
}

// Decide rolls up firstRequests (the site's wake-ups, in any order and
// from any time: those outside the weeks' slots are ignored) into the
// decision for slot.
func (m Model) Decide(siteID string, slot time.Time, firstRequests []time.Time) Decision {
	m = m.withDefaults()
	slot = SlotOf(slot)
	d := Decision{SiteID: siteID, Slot: slot, Weeks: m.Weeks, Threshold: m.Threshold}
	for w := 1; w <= m.Weeks; w++ {
		from := slot.Add(-time.Duration(w) * Week)
		var first time.Time
		for _, t := range firstRequests {
			if !t.Before(from) && t.Before(from.Add(Slot)) && (first.IsZero() || t.Before(first)) {
				first = t
			}
		}
		if !first.IsZero() {
			d.Support = append(d.Support, first.UTC())
		}
	}
	d.Probability = float64(len(d.Support)) / float64(m.Weeks)
	// A small epsilon so that 2 of 4 weeks meets a threshold of 0.5
	// however the fraction rounds.
	d.Warm = d.Probability+1e-9 >= m.Threshold
	return d
}

// String explains the decision in one line, e.g. "Mon 09:00 UTC: 3 of
// the last 4 weeks had a first request (09:03, 09:01, 09:07), p=0.75 >=
// 0.50: pre-warm".
func (d Decision) String() string {
	times := make([]string, len(d.Support))
	for i, t := range d.Support {
		times[i] = t.Format("Jan 2 15:04")
	}
	verdict, cmp := "pre-warm", ">="
	if !d.Warm {
		verdict, cmp = "leave asleep", "<"
	}
	return fmt.Sprintf("%s UTC: %d of the last %d weeks had a first request (%s), p=%.2f %s %.2f: %s",
		d.Slot.Format("Mon 15:04"), len(d.Support), d.Weeks, strings.Join(times, ", "), d.Probability, cmp, d.Threshold, verdict)
}
