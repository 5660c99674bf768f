package ui

import (
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// uptimeClass is how a chart marks an uptime state; the legend and the
// table say it in words too.
var uptimeClass = map[string]string{
	tenants.UptimeUp:        "bar",
	tenants.UptimeAsleep:    "sleep",
	tenants.UptimeFailed:    "bar second",
	tenants.UptimeUnhealthy: "bar warn",
}

// uptimeChart draws u's intervals as one timeline over its window, with
// a legend of the time in each state and the intervals in a table.
func uptimeChart(u *manage.SiteUptime) template.HTML {
	if u == nil {
		return ""
	}
	esc := template.HTMLEscapeString
	const w, h, top, barH = 400.0, 44.0, 4.0, 22.0
	span := u.Until.Sub(u.Since).Seconds()
	x := func(t time.Time) float64 {
		if span <= 0 {
			return 0
		}
		f := t.Sub(u.Since).Seconds() / span
		return min(max(f, 0), 1) * w
	}
	var b strings.Builder
	b.WriteString(`<figure class="chart"><figcaption>States over the last 24 hours</figcaption>`)
	if len(u.Intervals) == 0 {
		b.WriteString(`<p class="muted">No history yet: the site has not run in this window.</p></figure>`)
		return template.HTML(b.String())
	}
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %.0f %.0f" role="img" aria-label="%s">`, w, h, esc(uptimeSummary(u)))
	fmt.Fprintf(&b, `<rect class="unknown" x="0" y="%.0f" width="%.0f" height="%.0f"/>`, top, w, barH)
	for _, in := range u.Intervals {
		end := u.Until
		if in.EndedAt != nil && in.EndedAt.Before(end) {
			end = *in.EndedAt
		}
		x0, x1 := x(in.StartedAt), x(end)
		if x1-x0 < 0.5 {
			x1 = x0 + 0.5 // a short incident stays visible
		}
		fmt.Fprintf(&b, `<rect class="%s" x="%.2f" y="%.0f" width="%.2f" height="%.0f"><title>%s: %s – %s</title></rect>`,
			uptimeClass[in.State], x0, top, x1-x0, barH, esc(stateOf(in.State).Word), esc(when(in.StartedAt)), esc(endWord(in.EndedAt)))
	}
	fmt.Fprintf(&b, `<line class="axis" x1="0" y1="%.0f" x2="%.0f" y2="%.0f"/>`, top+barH, w, top+barH)
	fmt.Fprintf(&b, `<text x="0" y="%.0f">%s</text>`, h-2, esc(u.Since.UTC().Format("15:04 UTC")))
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="end">now</text>`, w, h-2)
	b.WriteString(`</svg><ul class="legend">`)
	for _, st := range tenants.UptimeStates {
		fmt.Fprintf(&b, `<li>%s %s</li>`, stateHTML(st), esc(duration(u.Seconds[st])))
	}
	b.WriteString(`</ul><details><summary>Intervals</summary><table><thead><tr><th scope="col">State</th><th scope="col">From</th><th scope="col">Until</th></tr></thead><tbody>`)
	for _, in := range u.Intervals {
		fmt.Fprintf(&b, `<tr><td>%s</td><td>%s</td><td>%s</td></tr>`, stateHTML(in.State), esc(when(in.StartedAt)), esc(endWord(in.EndedAt)))
	}
	b.WriteString(`</tbody></table></details></figure>`)
	return template.HTML(b.String())
}

func stateHTML(state string) string {
	s := stateOf(state)
	return fmt.Sprintf(`<span class="state %s"><span aria-hidden="true">%s</span> %s</span>`,
		s.Class, template.HTMLEscapeString(s.Symbol), template.HTMLEscapeString(s.Word))
}

func endWord(t *time.Time) string {
	if t == nil {
		return "now"
	}
	return when(t)
}

// uptimeSummary says the chart in words, for those who cannot see it.
func uptimeSummary(u *manage.SiteUptime) string {
	parts := make([]string, 0, len(tenants.UptimeStates))
	for _, st := range tenants.UptimeStates {
		parts = append(parts, st+" "+duration(u.Seconds[st]))
	}
	return "Last 24 hours: " + strings.Join(parts, ", ")
}

// duration words a number of seconds: 0s, 45s, 12m, 3h 20m.
func duration(secs float64) string {
	d := time.Duration(secs) * time.Second
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	}
	return fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
}
