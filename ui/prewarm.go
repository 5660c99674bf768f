package ui

import (
	"fmt"
	"time"

	"github.com/agistaffers/caddy-multitenant/manage"
)

// prewarmsShown is how many of a site's pre-warms its page lists.
const prewarmsShown = 10

// prewarmRow is one pre-warm as the site's page lists it, in UTC: the
// slot, the model's likelihood, and what came of it ("pre-warmed at
// 08:58, first visitor 09:01").
type prewarmRow struct {
	Slot, Probability, Outcome string
	Hit                        bool
}

// prewarmRows words the site's pre-warms at now.
func prewarmRows(list []manage.Prewarm, now time.Time) []prewarmRow {
	rows := make([]prewarmRow, len(list))
	for i, e := range list {
		r := prewarmRow{
			Slot:        e.SlotStart.UTC().Format("Mon Jan 2, 15:04 UTC"),
			Probability: fmt.Sprintf("%.0f %%", 100*e.Probability),
			Outcome:     "pre-warmed at " + e.PrewarmedAt.UTC().Format("15:04") + ", ",
		}
		switch {
		case e.FirstRequestAt != nil:
			r.Outcome += "first visitor " + clock(e.SlotStart, *e.FirstRequestAt)
			r.Hit = true
		case now.Before(e.SlotStart.Add(time.Hour)):
			r.Outcome += "no visitor yet"
		default:
			r.Outcome += "no visitor"
		}
		rows[i] = r
	}
	return rows
}

// clock is t's time of day in UTC, with its date when it is not the
// day of ref.
func clock(ref, t time.Time) string {
	t, ref = t.UTC(), ref.UTC()
	if t.YearDay() != ref.YearDay() || t.Year() != ref.Year() {
		return t.Format("Jan 2, 15:04")
	}
	return t.Format("15:04")
}
