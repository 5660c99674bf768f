package prewarm_test

import (
	"strings"
	"testing"
	"time"

	"github.com/agistaffers/caddy-multitenant/prewarm"
)

func TestDecide(t *testing.T) {
	slot := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC) // a Monday
	week := func(w int, hm string) time.Time {
		d, _ := time.ParseDuration(hm)
		return slot.Add(-time.Duration(w)*prewarm.Week + d)
	}
	firsts := []time.Time{
		week(1, "3m"), week(1, "40m"), // two in one week count once, the earliest
		week(2, "59m59s"),
		week(3, "60m"),            // the next hour: no support
		week(4, "-1s"),            // the hour before
		week(5, "5m"),             // beyond the weeks looked at
		slot.Add(-24 * time.Hour), // the day before
		slot.Add(-prewarm.Week / 2),
	}
	m := prewarm.Model{Weeks: 4, Threshold: 0.5}
	d := m.Decide("site", slot.Add(17*time.Minute), firsts)
	if !d.Slot.Equal(slot) || d.Weeks != 4 || d.Probability != 0.5 || !d.Warm {
		t.Fatalf("decision %+v, want slot %s, p 0.5, warm", d, slot)
	}
	if len(d.Support) != 2 || !d.Support[0].Equal(week(1, "3m")) || !d.Support[1].Equal(week(2, "59m59s")) {
		t.Fatalf("support %v", d.Support)
	}
	if s := d.String(); !strings.Contains(s, "Mon 09:00 UTC: 2 of the last 4 weeks") || !strings.Contains(s, "p=0.50 >= 0.50: pre-warm") {
		t.Fatalf("explanation %q", s)
	}
	if d := (prewarm.Model{Weeks: 4, Threshold: 0.75}).Decide("site", slot, firsts); d.Warm || !strings.Contains(d.String(), "leave asleep") {
		t.Fatalf("threshold 0.75 met by 2 of 4 weeks: %s", d)
	}
	if d := m.Decide("site", slot, nil); d.Warm || d.Probability != 0 {
		t.Fatalf("no history pre-warms: %s", d)
	}
	if d := (prewarm.Model{}).Decide("site", slot, firsts); d.Weeks != prewarm.DefaultWeeks || d.Threshold != prewarm.DefaultThreshold {
		t.Fatalf("defaults not applied: %+v", d)
	}
}
