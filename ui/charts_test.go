package ui

import (
	"encoding/xml"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/agistaffers/caddy-multitenant/manage"
)

// parseXML fails the test unless s is well-formed XML (wrapped in one
// root: it holds several figures) and returns how often each element
// occurs, by class for rect, circle and polyline.
func parseXML(t *testing.T, s string) map[string]int {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader("<root>" + s + "</root>"))
	d.Strict = true
	count := map[string]int{}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return count
		}
		if err != nil {
			t.Fatalf("not XML: %v\n%s", err, s)
		}
		if se, ok := tok.(xml.StartElement); ok {
			name := se.Name.Local
			for _, a := range se.Attr {
				if a.Name.Local == "class" && (name == "rect" || name == "circle" || name == "polyline") {
					name += "." + a.Value
				}
				if a.Name.Local == "style" {
					t.Fatalf("a style attribute (blocked by the CSP): %s", s)
				}
			}
			count[name]++
		}
	}
}

func series(name, unit string, since time.Time, step time.Duration, values ...float64) manage.Series {
	s := manage.Series{Name: name, Unit: unit}
	for i, v := range values {
		s.Points = append(s.Points, manage.Point{At: since.Add(time.Duration(i) * step), Value: v})
	}
	return s
}

func TestPlatformChartsMarks(t *testing.T) {
	since := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	fig := &manage.PlatformFigures{Since: since, Step: time.Hour,
		Running:    series("running", "count", since, time.Hour, 1, 3, 2),
		ColdStarts: series("cold_starts", "count", since, time.Hour, 0, 5, 1, 0),
		Failures:   series("failures", "count", since, time.Hour, 0, 1, 0, 0),
	}
	out := string(platformCharts(fig))
	c := parseXML(t, out)
	if c["figure"] != 2 || c["svg"] != 2 || c["figcaption"] != 2 {
		t.Fatalf("figures %d, svgs %d: %v", c["figure"], c["svg"], c)
	}
	if c["circle.line"] != 3 || c["polyline.line"] != 1 {
		t.Fatalf("running: %d dots, %d lines; want 3 and 1", c["circle.line"], c["polyline.line"])
	}
	if c["rect.bar"] != 4 || c["rect.bar second"] != 4 {
		t.Fatalf("bars %d and %d, want 4 each", c["rect.bar"], c["rect.bar second"])
	}
	// A title per mark, and the data again in tables.
	if c["title"] != 3+4+4 || c["table"] != 2 {
		t.Fatalf("titles %d, tables %d", c["title"], c["table"])
	}
	for _, want := range []string{`role="img"`, `aria-label="Running containers over the last 4 h. running: min 1, max 3, last 2."`, `class="grid"`, `class="axis"`} {
		if !strings.Contains(out, want) {
			t.Errorf("no %s in\n%s", want, out)
		}
	}
}

func TestSiteChartsUnitsAndEmpty(t *testing.T) {
	since := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	step := 15 * time.Minute
	fig := &manage.SiteFigures{Since: since, Step: step,
		Requests: series("requests", "requests", since, step, 12000, 30000),
		Errors:   series("errors", "errors", since, step, 0, 2),
		// One point: a dot, no line.
		LatencyP50:  series("latency_p50", "ms", since.Add(step), step, 2500),
		ColdStartMs: manage.Series{Name: "cold_start_ms", Unit: "ms"},
		Memory:      series("memory", "bytes", since, step, 3<<30, 1<<30),
	}
	out := string(siteCharts(fig))
	c := parseXML(t, out)
	if c["figure"] != 5 {
		t.Fatalf("%d figures, want 5: %v", c["figure"], c)
	}
	if c["svg"] != 3 || strings.Count(out, "No data yet.") != 2 {
		t.Fatalf("svgs %d, empty charts %d; want 3 and 2 (cold starts, CPU)", c["svg"], strings.Count(out, "No data yet."))
	}
	if c["polyline.line"] != 1 { // the memory's; the latency has one point
		t.Fatalf("%d polylines, want 1", c["polyline.line"])
	}
	for _, want := range []string{"30k", "2.5 s", "3 GiB", ">4 GiB<"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
}

func TestChartsEscape(t *testing.T) {
	hostile := `<script>alert("x")</script>&`
	out := string(barsChart("Memory "+hostile, "bytes", []namedValue{{Name: hostile, Value: 100 << 20}, {Name: "b", Value: 0}}))
	c := parseXML(t, out)
	if strings.Contains(out, "<script>") || c["script"] != 0 {
		t.Fatalf("not escaped:\n%s", out)
	}
	if c["rect.bar"] != 2 {
		t.Fatalf("%d bars, want 2", c["rect.bar"])
	}
	if !strings.Contains(out, "&lt;script&gt;") {
		t.Fatalf("the name is missing:\n%s", out)
	}
	since := time.Now().Truncate(time.Hour)
	tc := string(platformCharts(&manage.PlatformFigures{Since: since, Step: time.Hour,
		Running: manage.Series{}, ColdStarts: series(hostile, "count", since, time.Hour, 1)}))
	parseXML(t, tc)
	if strings.Contains(tc, "<script>") {
		t.Fatalf("not escaped:\n%s", tc)
	}
}

func TestChartsNothing(t *testing.T) {
	if platformCharts(nil) != "" || siteCharts(nil) != "" {
		t.Fatal("charts of nil")
	}
	out := string(platformCharts(&manage.PlatformFigures{Step: time.Hour}))
	parseXML(t, out)
	if strings.Count(out, "No data yet.") != 2 || strings.Contains(out, "<svg") {
		t.Fatalf("empty figures:\n%s", out)
	}
	out = string(barsChart("Memory", "bytes", nil))
	parseXML(t, out)
	if !strings.Contains(out, "No data yet.") {
		t.Fatalf("empty bars:\n%s", out)
	}
	// All zero: an axis up to 1, no division by zero.
	since := time.Now().Truncate(time.Hour)
	out = string(platformCharts(&manage.PlatformFigures{Since: since, Step: time.Hour,
		ColdStarts: series("c", "count", since, time.Hour, 0, 0), Failures: series("f", "count", since, time.Hour, 0, 0)}))
	parseXML(t, out)
	if strings.Contains(out, "NaN") || strings.Contains(out, "Inf") {
		t.Fatalf("zeros:\n%s", out)
	}
}

// The overview shows the platform's charts and the memory of the running
// sites (none here: no data yet), well-formed.
func TestOverviewCharts(t *testing.T) {
	t.Parallel()
	tu := newTestUI(t, manage.Config{})
	tu.operator("ops@example.org")
	b := tu.browser()
	b.login("ops@example.org")
	status, _, body := b.get("/")
	if status != 200 {
		t.Fatalf("overview: %d\n%s", status, body)
	}
	i := strings.Index(body, `<section class="charts"`)
	j := strings.Index(body[i:], "</section>")
	if i < 0 || j < 0 {
		t.Fatalf("no charts section:\n%s", body)
	}
	charts := body[i : i+j+len("</section>")]
	c := parseXML(t, charts)
	if c["figure"] != 3 || !strings.Contains(charts, "Memory per running site") || !strings.Contains(charts, "Cold starts and failed starts") {
		t.Fatalf("overview charts:\n%s", charts)
	}
}
