package ui

import (
	"context"
	"fmt"
	"html/template"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/agistaffers/caddy-multitenant/manage"
)

// Charts are drawn on the server as inline SVG, so that they need no
// script and no library: axes, a few labelled gridlines, one mark per
// point or bar with a <title> for its value on hover, and the numbers
// again in a table for anyone who cannot see the picture. Only classes
// of style.css and presentation attributes style them (the CSP blocks
// style=""), and every text is escaped.

// Geometry of a time chart, in viewBox units.
const (
	chartW      = 400.0
	chartH      = 170.0
	chartLeft   = 48.0 // room for the y labels
	chartRight  = 8.0
	chartTop    = 10.0
	chartBottom = 22.0 // room for the x labels
	chartTicks  = 4    // gridlines above the baseline
)

// chartSpan is the time a chart's x axis covers: n steps from since.
type chartSpan struct {
	since time.Time
	step  time.Duration
	n     int
}

func (s chartSpan) end() time.Time { return s.since.Add(time.Duration(s.n) * s.step) }

// spanOf is the span of a window from since in steps of step whose
// every-step series has full points (counts have a point per step).
func spanOf(since time.Time, step time.Duration, full manage.Series) chartSpan {
	if step <= 0 {
		step = time.Hour
	}
	n := len(full.Points)
	if n == 0 {
		n = int(manage.DefaultFiguresWindow / step)
	}
	if n < 1 {
		n = 1
	}
	return chartSpan{since: since, step: step, n: n}
}

// chartSeries is one series as a chart shows it.
type chartSeries struct {
	label  string
	series manage.Series
}

// timeChart is a chart over time of one or two series of the same unit:
// lines, or bars (side by side when two).
type timeChart struct {
	caption string
	unit    string
	bars    bool
	span    chartSpan
	series  []chartSeries
}

// platformCharts renders the overview's charts of fig.
func platformCharts(fig *manage.PlatformFigures) template.HTML {
	if fig == nil {
		return ""
	}
	span := spanOf(fig.Since, fig.Step, fig.ColdStarts)
	var b strings.Builder
	timeChart{caption: "Running containers", unit: "count", span: span,
		series: []chartSeries{{"running", fig.Running}}}.write(&b)
	timeChart{caption: "Cold starts and failed starts per " + stepWord(fig.Step), unit: "count", bars: true, span: span,
		series: []chartSeries{{"cold starts", fig.ColdStarts}, {"failed starts", fig.Failures}}}.write(&b)
	return template.HTML(b.String())
}

// siteCharts renders a site's charts of fig.
func siteCharts(fig *manage.SiteFigures) template.HTML {
	if fig == nil {
		return ""
	}
	span := spanOf(fig.Since, fig.Step, fig.Requests)
	per := stepWord(fig.Step)
	var b strings.Builder
	timeChart{caption: "Requests and errors per " + per, unit: "requests", bars: true, span: span,
		series: []chartSeries{{"requests", fig.Requests}, {"errors (5xx)", fig.Errors}}}.write(&b)
	timeChart{caption: "Latency, p50 and p95", unit: "ms", span: span,
		series: []chartSeries{{"p50", fig.LatencyP50}, {"p95", fig.LatencyP95}}}.write(&b)
	timeChart{caption: "Cold-start duration (mean)", unit: "ms", span: span,
		series: []chartSeries{{"cold start", fig.ColdStartMs}}}.write(&b)
	timeChart{caption: "Memory (most used)", unit: "bytes", span: span,
		series: []chartSeries{{"memory", fig.Memory}}}.write(&b)
	timeChart{caption: "CPU (mean, % of one CPU)", unit: "percent", span: span,
		series: []chartSeries{{"CPU", fig.CPU}}}.write(&b)
	return template.HTML(b.String())
}

// stepWord names a step in "per …": hour, 5 min.
func stepWord(step time.Duration) string {
	switch {
	case step == time.Hour:
		return "hour"
	case step == time.Minute:
		return "minute"
	case step%time.Hour == 0:
		return strconv.Itoa(int(step/time.Hour)) + " h"
	case step > 0:
		return strconv.Itoa(int(step/time.Minute)) + " min"
	}
	return "step"
}

// esc escapes s for text and attribute values alike.
func esc(s string) string { return template.HTMLEscapeString(s) }

// num writes a coordinate compactly.
func num(v float64) string { return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64) }

// formatValue writes v in unit, scaled to be readable: 1.5 GiB, 12 ms,
// 2.3 s, 4.2k.
func formatValue(v float64, unit string) string {
	switch unit {
	case "bytes":
		return humanBytes(v)
	case "ms":
		if math.Abs(v) >= 1000 {
			return trimFloat(v/1000) + " s"
		}
		return trimFloat(v) + " ms"
	case "percent":
		return trimFloat(v) + " %"
	}
	a := math.Abs(v)
	switch {
	case a >= 1e9:
		return trimFloat(v/1e9) + "G"
	case a >= 1e6:
		return trimFloat(v/1e6) + "M"
	case a >= 1e4:
		return trimFloat(v/1e3) + "k"
	}
	return trimFloat(v)
}

// trimFloat writes v with at most 3 significant digits, as an integer
// when it is one.
func trimFloat(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// niceMax is the top of a y axis for values up to max: 1, 2, 4, 6 or 8
// times a power of ten (so that its chartTicks gridlines fall on round
// values), and at least 1 (a flat zero still has an axis).
func niceMax(max float64) float64 {
	if max <= 0 || math.IsNaN(max) || math.IsInf(max, 0) {
		return 1
	}
	if max < 1 {
		max = 1
	}
	p := math.Pow(10, math.Floor(math.Log10(max)))
	for _, m := range []float64{1, 2, 4, 6, 8, 10} {
		if max <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// niceTop is the top of a y axis in unit: for bytes a nice multiple of
// a power of 1024, so that the gridlines read 1 GiB, not 0.93 GiB.
func niceTop(max float64, unit string) float64 {
	switch unit {
	case "count", "requests", "errors":
		// Whole numbers: gridlines at 1, 2, 3, 4 at least, never 0.25.
		return niceMax(math.Max(max, chartTicks))
	case "bytes":
		if max < 1024 {
			return niceMax(max)
		}
	default:
		return niceMax(max)
	}
	p := 1.0
	for max/p >= 1024 {
		p *= 1024
	}
	return niceMax(max/p) * p
}

// stats are a series' min, max and last value.
func stats(s manage.Series) (lo, hi, last float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, p := range s.Points {
		lo, hi = math.Min(lo, p.Value), math.Max(hi, p.Value)
	}
	return lo, hi, s.Points[len(s.Points)-1].Value
}

// write writes c as a figure: the SVG, or "no data yet", and the data as
// a table.
func (c timeChart) write(b *strings.Builder) {
	b.WriteString(`<figure class="chart"><figcaption>` + esc(c.caption) + `</figcaption>`)
	var summary []string
	hi := 0.0
	for _, s := range c.series {
		if len(s.series.Points) == 0 {
			continue
		}
		lo, max, last := stats(s.series)
		hi = math.Max(hi, max)
		summary = append(summary, fmt.Sprintf("%s: min %s, max %s, last %s", s.label,
			formatValue(lo, c.unit), formatValue(max, c.unit), formatValue(last, c.unit)))
	}
	if len(summary) == 0 {
		b.WriteString(`<p class="muted">No data yet.</p></figure>`)
		return
	}
	top := niceTop(hi, c.unit)
	plotW, plotH := chartW-chartLeft-chartRight, chartH-chartTop-chartBottom
	base := chartTop + plotH
	y := func(v float64) float64 { return base - v/top*plotH }
	span := float64(c.span.n) * float64(c.span.step)
	x := func(at time.Time) float64 { return chartLeft + float64(at.Sub(c.span.since))/span*plotW }

	label := c.caption + " over the last " + shortSpan(time.Duration(span)) + ". " + strings.Join(summary, "; ") + "."
	fmt.Fprintf(b, `<svg class="chart" viewBox="0 0 %s %s" role="img" aria-label="%s">`, num(chartW), num(chartH), esc(label))
	// Gridlines with their values, then the axes over them.
	for i := 1; i <= chartTicks; i++ {
		v := top * float64(i) / chartTicks
		fmt.Fprintf(b, `<line class="grid" x1="%s" y1="%s" x2="%s" y2="%s"/>`, num(chartLeft), num(y(v)), num(chartW-chartRight), num(y(v)))
		fmt.Fprintf(b, `<text x="%s" y="%s" text-anchor="end">%s</text>`, num(chartLeft-4), num(y(v)+3), esc(formatValue(v, c.unit)))
	}
	fmt.Fprintf(b, `<text x="%s" y="%s" text-anchor="end">0</text>`, num(chartLeft-4), num(base+3))
	fmt.Fprintf(b, `<line class="axis" x1="%s" y1="%s" x2="%s" y2="%s"/>`, num(chartLeft), num(chartTop), num(chartLeft), num(base))
	fmt.Fprintf(b, `<line class="axis" x1="%s" y1="%s" x2="%s" y2="%s"/>`, num(chartLeft), num(base), num(chartW-chartRight), num(base))
	for i, at := range []time.Time{c.span.since, c.span.since.Add(time.Duration(span / 2)), c.span.end()} {
		anchor := [...]string{"start", "middle", "end"}[i]
		fmt.Fprintf(b, `<text x="%s" y="%s" text-anchor="%s">%s</text>`, num(x(at)), num(chartH-6), anchor, esc(at.UTC().Format("15:04")))
	}
	slot := plotW / float64(c.span.n)
	for i, s := range c.series {
		class := "line"
		if c.bars {
			class = "bar"
		}
		if i > 0 {
			class += " second"
		}
		if c.bars {
			w := slot * 0.8 / float64(len(c.series))
			for _, p := range s.series.Points {
				h := base - y(p.Value)
				fmt.Fprintf(b, `<rect class="%s" x="%s" y="%s" width="%s" height="%s"><title>%s</title></rect>`,
					class, num(x(p.At)+slot*0.1+w*float64(i)), num(y(p.Value)), num(math.Max(w, 0.5)), num(h), pointTitle(s.label, p, c.unit))
			}
			continue
		}
		if len(s.series.Points) > 1 {
			pts := make([]string, len(s.series.Points))
			for j, p := range s.series.Points {
				pts[j] = num(x(p.At)+slot/2) + "," + num(y(p.Value))
			}
			fmt.Fprintf(b, `<polyline class="%s" points="%s"/>`, class, strings.Join(pts, " "))
		}
		// A dot per point: what hovering shows, and all a single point is.
		for _, p := range s.series.Points {
			fmt.Fprintf(b, `<circle class="%s" cx="%s" cy="%s" r="2"><title>%s</title></circle>`,
				class, num(x(p.At)+slot/2), num(y(p.Value)), pointTitle(s.label, p, c.unit))
		}
	}
	b.WriteString(`</svg>`)
	c.writeTable(b)
	b.WriteString(`</figure>`)
}

// pointTitle is the hover text of a point, escaped.
func pointTitle(label string, p manage.Point, unit string) string {
	return esc(label + " at " + p.At.UTC().Format("Jan 2 15:04") + " UTC: " + formatValue(p.Value, unit))
}

// writeTable writes c's data as a table inside a closed <details>.
func (c timeChart) writeTable(b *strings.Builder) {
	times := map[time.Time]bool{}
	values := make([]map[time.Time]float64, len(c.series))
	for i, s := range c.series {
		values[i] = map[time.Time]float64{}
		for _, p := range s.series.Points {
			times[p.At] = true
			values[i][p.At] = p.Value
		}
	}
	order := make([]time.Time, 0, len(times))
	for t := range times {
		order = append(order, t)
	}
	sort.Slice(order, func(i, j int) bool { return order[i].Before(order[j]) })
	b.WriteString(`<details><summary>Data</summary><table><thead><tr><th scope="col">From (UTC)</th>`)
	for _, s := range c.series {
		b.WriteString(`<th scope="col">` + esc(s.label) + `</th>`)
	}
	b.WriteString(`</tr></thead><tbody>`)
	for _, t := range order {
		b.WriteString(`<tr><td>` + esc(t.UTC().Format("Jan 2 15:04")) + `</td>`)
		for i := range c.series {
			cell := "–"
			if v, ok := values[i][t]; ok {
				cell = formatValue(v, c.unit)
			}
			b.WriteString(`<td>` + esc(cell) + `</td>`)
		}
		b.WriteString(`</tr>`)
	}
	b.WriteString(`</tbody></table></details>`)
}

// shortSpan writes a chart's span: 24 h, 90 min.
func shortSpan(d time.Duration) string {
	if d%time.Hour == 0 {
		return strconv.Itoa(int(d/time.Hour)) + " h"
	}
	return strconv.Itoa(int(d/time.Minute)) + " min"
}

// namedValue is one bar of a chart by name.
type namedValue struct {
	Name  string
	Value float64
}

// Geometry of a chart by name: one horizontal bar per name.
const (
	barRow   = 18.0
	barLabel = 110.0 // room for the names
	barValue = 60.0  // room for the values after the bars
)

// barsChart renders values as horizontal bars, one per name, largest
// first, in unit.
func barsChart(caption, unit string, values []namedValue) template.HTML {
	var b strings.Builder
	b.WriteString(`<figure class="chart"><figcaption>` + esc(caption) + `</figcaption>`)
	if len(values) == 0 {
		b.WriteString(`<p class="muted">No data yet.</p></figure>`)
		return template.HTML(b.String())
	}
	values = append([]namedValue(nil), values...)
	sort.SliceStable(values, func(i, j int) bool { return values[i].Value > values[j].Value })
	top := niceTop(values[0].Value, unit)
	h := chartTop + barRow*float64(len(values)) + chartBottom
	plotW := chartW - barLabel - barValue
	label := fmt.Sprintf("%s: %d sites, the most %s (%s), the least %s (%s).", caption, len(values),
		values[0].Name, formatValue(values[0].Value, unit), values[len(values)-1].Name, formatValue(values[len(values)-1].Value, unit))
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %s %s" role="img" aria-label="%s">`, num(chartW), num(h), esc(label))
	base := h - chartBottom
	for i := 0; i <= chartTicks; i++ {
		v := top * float64(i) / chartTicks
		gx := barLabel + v/top*plotW
		class := "grid"
		if i == 0 {
			class = "axis"
		}
		fmt.Fprintf(&b, `<line class="%s" x1="%s" y1="%s" x2="%s" y2="%s"/>`, class, num(gx), num(chartTop), num(gx), num(base))
		fmt.Fprintf(&b, `<text x="%s" y="%s" text-anchor="middle">%s</text>`, num(gx), num(h-6), esc(formatValue(v, unit)))
	}
	for i, v := range values {
		ry := chartTop + barRow*float64(i)
		name := v.Name
		if len([]rune(name)) > 18 {
			name = string([]rune(name)[:17]) + "…"
		}
		fmt.Fprintf(&b, `<text x="%s" y="%s" text-anchor="end">%s</text>`, num(barLabel-4), num(ry+barRow*0.65), esc(name))
		fmt.Fprintf(&b, `<rect class="bar" x="%s" y="%s" width="%s" height="%s"><title>%s</title></rect>`,
			num(barLabel), num(ry+2), num(math.Max(v.Value/top*plotW, 0.5)), num(barRow-4), esc(v.Name+": "+formatValue(v.Value, unit)))
		fmt.Fprintf(&b, `<text x="%s" y="%s">%s</text>`, num(barLabel+v.Value/top*plotW+4), num(ry+barRow*0.65), esc(formatValue(v.Value, unit)))
	}
	b.WriteString(`</svg><details><summary>Data</summary><table><thead><tr><th scope="col">Site</th><th scope="col">Value</th></tr></thead><tbody>`)
	for _, v := range values {
		b.WriteString(`<tr><td>` + esc(v.Name) + `</td><td>` + esc(formatValue(v.Value, unit)) + `</td></tr>`)
	}
	b.WriteString(`</tbody></table></details></figure>`)
	return template.HTML(b.String())
}

// maxMemorySites is how many running sites the overview's memory chart
// asks figures of: one query each, so bounded.
const maxMemorySites = 30

// memoryChart renders the latest memory of each running site (of the
// last ten minutes' samples), for the overview.
func (u *UI) memoryChart(ctx context.Context, sites []manage.Site) (template.HTML, error) {
	var values []namedValue
	n := 0
	for _, s := range sites {
		if s.State != "running" {
			continue
		}
		if n++; n > maxMemorySites {
			break
		}
		fig, err := u.svc.SiteFigures(ctx, s.ID, 10*time.Minute, time.Minute)
		if err != nil {
			return "", err
		}
		if pts := fig.Memory.Points; len(pts) > 0 {
			values = append(values, namedValue{Name: s.Subdomain, Value: pts[len(pts)-1].Value})
		}
	}
	caption := "Memory per running site (latest)"
	if n > maxMemorySites {
		caption = fmt.Sprintf("Memory of %d of the running sites (latest)", maxMemorySites)
	}
	return barsChart(caption, "bytes", values), nil
}
