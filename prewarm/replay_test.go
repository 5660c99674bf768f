package prewarm_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agistaffers/caddy-multitenant/prewarm"
)

// The replay evaluation: synthetic traffic with a weekly pattern, over
// simulated weeks on a fake clock, through a platform run twice on the
// same traffic, without and with the real model and scheduler. The
// platform is simulated minute by minute with the provisioner's rules:
// a request to an asleep site starts it (a cold start, recorded as a
// wake-up, as the figures record it), a start at max_running stops the
// least recently used idle site first (provisioner/capacity.go's
// reserve), a site idle for idle_timeout is stopped (reaper.go), and a
// pre-warm takes free room only (StartIfRoom). The real provisioner
// cannot run weeks on a fake clock (it stamps activity with the wall
// clock and starts real containers), so its idle and capacity rules are
// reproduced here; requests take no time and starts are instant.
//
// Run it as a benchmark that prints its numbers with bench/prewarm.sh
// (go test -run TestReplay -v ./prewarm/).

const (
	replayWeeks     = 8 // the first four build the history
	replayEvalWeeks = 4 // the figures are of the last four
	replayIdle      = 15 * time.Minute
	replayMaxRun    = 6
)

// replayStart is a Monday, 00:00 UTC.
var replayStart = time.Date(2026, 9, 7, 0, 0, 0, 0, time.UTC)

type visit struct {
	site     string
	requests []time.Time // the first is the visit's first request
}

type siteKind struct {
	name  string
	count int
	// visits returns the site's visits of one day.
	visits func(r *rand.Rand, day time.Time) [][]time.Time
}

// session is a visitor's requests: the first at start, then one every 1
// to 6 minutes for 20 to 90 minutes.
func session(r *rand.Rand, start time.Time) []time.Time {
	out := []time.Time{start}
	end := start.Add(time.Duration(20+r.IntN(71)) * time.Minute)
	for t := start; ; {
		t = t.Add(time.Duration(60+r.IntN(300)) * time.Second)
		if t.After(end) {
			return out
		}
		out = append(out, t)
	}
}

func weekday(day time.Time) bool {
	return day.Weekday() != time.Saturday && day.Weekday() != time.Sunday
}

var replayKinds = []siteKind{
	// Office sites: a weekday morning's first visitor at 09:00 to 09:20
	// (85 % of weekdays), an afternoon's at 14:00 to 14:20 (60 %).
	{name: "office", count: 6, visits: func(r *rand.Rand, day time.Time) [][]time.Time {
		if !weekday(day) {
			return nil
		}
		var vs [][]time.Time
		if r.Float64() < 0.85 {
			vs = append(vs, session(r, day.Add(9*time.Hour+time.Duration(r.IntN(20*60))*time.Second)))
		}
		if r.Float64() < 0.6 {
			vs = append(vs, session(r, day.Add(14*time.Hour+time.Duration(r.IntN(20*60))*time.Second)))
		}
		return vs
	}},
	// Early sites: weekdays at 07:00 to 07:20 (90 %).
	{name: "early", count: 2, visits: func(r *rand.Rand, day time.Time) [][]time.Time {
		if !weekday(day) || r.Float64() >= 0.9 {
			return nil
		}
		return [][]time.Time{session(r, day.Add(7*time.Hour+time.Duration(r.IntN(20*60))*time.Second))}
	}},
	// Irregular sites: three visits a day at any time.
	{name: "irregular", count: 4, visits: func(r *rand.Rand, day time.Time) [][]time.Time {
		var vs [][]time.Time
		for range 3 {
			vs = append(vs, session(r, day.Add(time.Duration(r.IntN(24*3600))*time.Second)))
		}
		return vs
	}},
}

// replayTraffic makes every site's visits over the replay, the same for
// both runs.
func replayTraffic(seed uint64) (sites []string, kindOf map[string]string, visits []visit) {
	r := rand.New(rand.NewPCG(seed, 15))
	kindOf = map[string]string{}
	for _, k := range replayKinds {
		for i := range k.count {
			id := fmt.Sprintf("%s-%d", k.name, i)
			sites = append(sites, id)
			kindOf[id] = k.name
		}
	}
	for d := range replayWeeks * 7 {
		day := replayStart.AddDate(0, 0, d)
		for _, k := range replayKinds {
			for i := range k.count {
				for _, reqs := range k.visits(r, day) {
					visits = append(visits, visit{site: fmt.Sprintf("%s-%d", k.name, i), requests: reqs})
				}
			}
		}
	}
	return sites, kindOf, visits
}

// simSite is a site of the simulated platform.
type simSite struct {
	running    bool
	lastActive time.Time
}

// simPlatform is the platform the replay drives: its engine (the
// provisioner's rules) and its store (the history the root package's
// store keeps in PostgreSQL: wake-ups and pre-warm events).
type simPlatform struct {
	now        time.Time
	sites      map[string]*simSite
	order      []string
	maxRunning int

	wakeups map[string][]time.Time // cold starts requests waited for
	events  []prewarm.Event
	firsts  map[int64]time.Time // event id (index+1) → first visitor

	maxSeen, refused, evicted int
	containerMinutes          map[string]int
}

func newSimPlatform(sites []string) *simPlatform {
	p := &simPlatform{sites: map[string]*simSite{}, order: sites, maxRunning: replayMaxRun,
		wakeups: map[string][]time.Time{}, firsts: map[int64]time.Time{}, containerMinutes: map[string]int{}}
	for _, id := range sites {
		p.sites[id] = &simSite{}
	}
	return p
}

func (p *simPlatform) running() int {
	n := 0
	for _, s := range p.sites {
		if s.running {
			n++
		}
	}
	return n
}

func (p *simPlatform) start(id string) {
	s := p.sites[id]
	s.running, s.lastActive = true, p.now
	p.maxSeen = max(p.maxSeen, p.running())
}

// request serves one request at p.now: warm reports whether the site was
// running.
func (p *simPlatform) request(id string) (warm bool) {
	s := p.sites[id]
	if s.running {
		s.lastActive = p.now
		return true
	}
	// reserve: at the cap, stop the least recently used idle site.
	for p.running() >= p.maxRunning {
		var lru string
		for _, o := range p.order {
			if os := p.sites[o]; os.running && (lru == "" || os.lastActive.Before(p.sites[lru].lastActive)) {
				lru = o
			}
		}
		p.sites[lru].running = false
		p.evicted++
	}
	p.start(id)
	p.wakeups[id] = append(p.wakeups[id], p.now)
	return false
}

// reap stops the sites idle for replayIdle.
func (p *simPlatform) reap() {
	for _, s := range p.sites {
		if s.running && p.now.Sub(s.lastActive) >= replayIdle {
			s.running = false
		}
	}
}

func (p *simPlatform) activity() []prewarm.Activity {
	var acts []prewarm.Activity
	for _, id := range p.order {
		if s := p.sites[id]; s.running {
			acts = append(acts, prewarm.Activity{SiteID: id, LastActive: s.lastActive})
		}
	}
	return acts
}

// The engine.

func (p *simPlatform) Running(id string) bool { return p.sites[id].running }
func (p *simPlatform) Room() bool             { return p.running() < p.maxRunning }
func (p *simPlatform) StartIfRoom(_ context.Context, id string) error {
	if !p.Room() {
		p.refused++
		return prewarm.ErrNoRoom
	}
	p.start(id)
	return nil
}

// The store.

func (p *simPlatform) Candidates(_ context.Context, slot time.Time, weeks int) ([]prewarm.Candidate, error) {
	var out []prewarm.Candidate
	for _, id := range p.order {
		firsts := slices.Clone(p.wakeups[id])
		for i, e := range p.events {
			if at, ok := p.firsts[int64(i+1)]; ok && e.SiteID == id {
				firsts = append(firsts, at)
			}
		}
		out = append(out, prewarm.Candidate{SiteID: id, FirstRequests: firsts})
	}
	return out, nil
}

func (p *simPlatform) RecordPrewarm(_ context.Context, e prewarm.Event) (int64, bool, error) {
	for _, o := range p.events {
		if o.SiteID == e.SiteID && o.Slot.Equal(e.Slot) {
			return 0, false, nil
		}
	}
	p.events = append(p.events, e)
	return int64(len(p.events)), true, nil
}

func (p *simPlatform) Prune(context.Context, time.Time) error { return nil }

func (p *simPlatform) SetFirstRequests(_ context.Context, firsts []prewarm.FirstRequest) error {
	for _, f := range firsts {
		p.firsts[f.EventID] = f.At
	}
	return nil
}

// replayResult is what one run measured over the evaluation weeks.
type replayResult struct {
	firsts, warm       map[string]int // by kind of site
	containerHours     map[string]float64
	prewarms, hits     int64
	maxRunning         int
	refused, evictions int
}

func (r replayResult) rate(kind string) float64 {
	if kind == "" {
		f, w := 0, 0
		for k := range r.firsts {
			f, w = f+r.firsts[k], w+r.warm[k]
		}
		return float64(w) / float64(f)
	}
	return float64(r.warm[kind]) / float64(r.firsts[kind])
}

func (r replayResult) hours() float64 {
	h := 0.0
	for _, v := range r.containerHours {
		h += v
	}
	return h
}

// replay runs the platform over the traffic, minute by minute, with the
// scheduler when withPrewarm.
func replay(t testing.TB, withPrewarm bool, sites []string, kindOf map[string]string, visits []visit) replayResult {
	t.Helper()
	p := newSimPlatform(sites)
	ctx := context.Background()
	sched := prewarm.New(prewarm.Config{Store: p, Engine: p, Now: func() time.Time { return p.now },
		Model: prewarm.Model{Weeks: prewarm.DefaultWeeks, Threshold: prewarm.DefaultThreshold}, Lead: prewarm.DefaultLead})

	type req struct {
		at    time.Time
		site  string
		first bool
	}
	var reqs []req
	for _, v := range visits {
		for i, at := range v.requests {
			reqs = append(reqs, req{at: at, site: v.site, first: i == 0})
		}
	}
	slices.SortStableFunc(reqs, func(a, b req) int { return a.at.Compare(b.at) })

	res := replayResult{firsts: map[string]int{}, warm: map[string]int{}, containerHours: map[string]float64{}}
	evalFrom := replayStart.Add(time.Duration(replayWeeks-replayEvalWeeks) * prewarm.Week)
	end := replayStart.Add(replayWeeks * prewarm.Week)
	next := 0
	var startsBefore, hitsBefore int64
	for p.now = replayStart; p.now.Before(end); p.now = p.now.Add(time.Minute) {
		if p.now.Equal(evalFrom) {
			st := sched.Stats()
			startsBefore, hitsBefore = st.Starts, st.Hits
			p.maxSeen, p.refused, p.evicted = p.running(), 0, 0
		}
		eval := !p.now.Before(evalFrom)
		p.reap()
		if withPrewarm {
			if slot := prewarm.SlotOf(p.now).Add(prewarm.Slot); p.now.Equal(slot.Add(-sched.Lead())) {
				if _, err := sched.Warm(ctx, slot); err != nil {
					t.Fatal(err)
				}
			}
			sched.Observe(p.now, p.activity())
			if err := sched.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
		minuteEnd := p.now.Add(time.Minute)
		for ; next < len(reqs) && reqs[next].at.Before(minuteEnd); next++ {
			r := reqs[next]
			saved := p.now
			p.now = r.at
			warm := p.request(r.site)
			p.now = saved
			if eval && r.first {
				res.firsts[kindOf[r.site]]++
				if warm {
					res.warm[kindOf[r.site]]++
				}
			}
		}
		if eval {
			for _, id := range sites {
				if p.sites[id].running {
					res.containerHours[kindOf[id]] += 1.0 / 60
				}
			}
		}
		if n := p.running(); n > p.maxSeen {
			p.maxSeen = n
		}
	}
	st := sched.Stats()
	res.prewarms, res.hits = st.Starts-startsBefore, st.Hits-hitsBefore
	res.maxRunning, res.refused, res.evictions = p.maxSeen, p.refused, p.evicted
	return res
}

func TestReplayWeeklyPattern(t *testing.T) {
	sites, kindOf, visits := replayTraffic(2026)
	without := replay(t, false, sites, kindOf, visits)
	with := replay(t, true, sites, kindOf, visits)

	var b strings.Builder
	fmt.Fprintf(&b, "pre-warm replay: %d sites, %d weeks (figures of the last %d), idle_timeout %s, max_running %d, lead %s, weeks %d, threshold %.2f\n",
		len(sites), replayWeeks, replayEvalWeeks, replayIdle, replayMaxRun, prewarm.DefaultLead, prewarm.DefaultWeeks, prewarm.DefaultThreshold)
	fmt.Fprintf(&b, "%-10s %-8s %14s %14s %16s %16s\n", "sites", "visits", "warm without", "warm with", "cont.-h without", "cont.-h with")
	for _, k := range append(slicesOfKinds(), "") {
		name, firsts := k, 0
		if k == "" {
			name = "all"
			for _, n := range without.firsts {
				firsts += n
			}
		} else {
			firsts = without.firsts[k]
		}
		hw, hp := without.hours(), with.hours()
		if k != "" {
			hw, hp = without.containerHours[k], with.containerHours[k]
		}
		fmt.Fprintf(&b, "%-10s %-8d %13.1f%% %13.1f%% %16.1f %16.1f\n", name, firsts, 100*without.rate(k), 100*with.rate(k), hw, hp)
	}
	fmt.Fprintf(&b, "pre-warms %d, with a visitor %d (%.0f%%); most running at once: %d without, %d with (max_running %d); LRU evictions %d without, %d with; pre-warm starts refused for want of room %d\n",
		with.prewarms, with.hits, 100*float64(with.hits)/float64(max(with.prewarms, 1)), without.maxRunning, with.maxRunning, replayMaxRun,
		without.evictions, with.evictions, with.refused)
	t.Log("\n" + b.String())

	if with.rate("") <= without.rate("") {
		t.Errorf("pre-warm does not improve the warm-hit rate of first requests: %.3f with, %.3f without", with.rate(""), without.rate(""))
	}
	for _, k := range []string{"office", "early"} {
		if with.rate(k) <= without.rate(k) {
			t.Errorf("%s sites: pre-warm does not improve the warm-hit rate: %.3f with, %.3f without", k, with.rate(k), without.rate(k))
		}
	}
	if with.maxRunning > replayMaxRun || without.maxRunning > replayMaxRun {
		t.Errorf("more than max_running %d ran at once: %d with pre-warm, %d without", replayMaxRun, with.maxRunning, without.maxRunning)
	}
	if with.refused != 0 {
		t.Errorf("the scheduler asked for %d pre-warm starts with no room (it must check Room first)", with.refused)
	}
	if with.prewarms == 0 || with.hits == 0 {
		t.Errorf("pre-warms %d, hits %d: the scheduler did nothing", with.prewarms, with.hits)
	}
}

func slicesOfKinds() []string {
	var out []string
	for _, k := range replayKinds {
		out = append(out, k.name)
	}
	return out
}

// BenchmarkReplay reports the replay's figures as benchmark metrics:
// warm-hit rate of first requests and container-hours over the last 4
// weeks, without and with pre-warm (go test -run '^$' -bench Replay
// ./prewarm/).
func BenchmarkReplay(b *testing.B) {
	sites, kindOf, visits := replayTraffic(2026)
	var without, with replayResult
	for range b.N {
		without = replay(b, false, sites, kindOf, visits)
		with = replay(b, true, sites, kindOf, visits)
	}
	b.ReportMetric(100*without.rate(""), "warm%-without")
	b.ReportMetric(100*with.rate(""), "warm%-with")
	b.ReportMetric(without.hours(), "container-h-without")
	b.ReportMetric(with.hours(), "container-h-with")
}
