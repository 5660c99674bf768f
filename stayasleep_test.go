package multitenant

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The default lists catch monitors and crawlers without regard to case,
// and people and link previews are not caught; operators extend or
// replace the lists; off catches nothing.
func TestStayAsleepMatches(t *testing.T) {
	req := func(path, agent string) *http.Request {
		r := httptest.NewRequest("GET", "http://a.example.com"+path, nil)
		r.Header.Set("User-Agent", agent)
		return r
	}
	def, err := (*StayAsleep)(nil).provision()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path, agent string
		quiet       bool
	}{
		{"/", "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)", true},
		{"/", "Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)", true},
		{"/", "Mozilla/5.0 (compatible; StatusCake)", true},
		{"/", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", true},
		{"/", "Mozilla/5.0 (compatible; BINGBOT/2.0; +http://www.bing.com/bingbot.htm)", true},
		{"/", "Uptime-Kuma/1.23.0", true},
		{"/robots.txt", "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0", true},
		{"/favicon.ico", "", true},
		{"/", "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0", false},
		{"/", "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", false},
		{"/", "", false},
		{"/robots.txt/x", "curl/8.0", false},
		{"/", strings.Repeat("x", 1000) + "googlebot", false}, // beyond what is looked at
	} {
		if got := def.matches(req(c.path, c.agent)); got != c.quiet {
			t.Errorf("%s %q: quiet %v, want %v", c.path, c.agent, got, c.quiet)
		}
	}

	own, err := (&StayAsleep{UserAgents: []string{"MyMonitor"}, MorePaths: []string{"/healthz"}}).provision()
	if err != nil {
		t.Fatal(err)
	}
	if !own.matches(req("/", "mymonitor/1")) || own.matches(req("/", "Googlebot")) || !own.matches(req("/healthz", "")) || !own.matches(req("/robots.txt", "")) {
		t.Error("replaced user agents, added paths")
	}
	more, _ := (&StayAsleep{MoreUserAgents: []string{"MyMonitor"}}).provision()
	if !more.matches(req("/", "MyMonitor")) || !more.matches(req("/", "Googlebot")) {
		t.Error("added user agents")
	}
	off, _ := (&StayAsleep{Off: true}).provision()
	if off.matches(req("/robots.txt", "Googlebot")) {
		t.Error("off")
	}
	for _, bad := range []*StayAsleep{{UserAgents: []string{" "}}, {Paths: []string{"robots.txt"}}, {Status: 42}} {
		if _, err := bad.provision(); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

// A stopped site answers robots.txt with the allowing text, anything
// else with the configured status, Retry-After and body; HEAD without
// one.
func TestStayAsleepAnswers(t *testing.T) {
	q, err := (&StayAsleep{Body: "zzz\n"}).provision()
	if err != nil {
		t.Fatal(err)
	}
	serve := func(method, path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		q.serve(w, httptest.NewRequest(method, "http://a.example.com"+path, nil))
		return w
	}
	if w := serve("GET", "/robots.txt"); w.Code != 200 || w.Body.String() != DefaultRobotsTxt {
		t.Errorf("robots.txt: %d %q", w.Code, w.Body)
	}
	if w := serve("GET", "/"); w.Code != 503 || w.Body.String() != "zzz\n" || w.Header().Get("Retry-After") != "3600" {
		t.Errorf("a crawler: %d %q %v", w.Code, w.Body, w.Header())
	}
	if w := serve("HEAD", "/favicon.ico"); w.Code != 503 || w.Body.Len() != 0 {
		t.Errorf("HEAD: %d %q", w.Code, w.Body)
	}
}

func TestStayAsleepCaddyfile(t *testing.T) {
	out, err := adapt(t, `http://:8080 {
	tenant_proxy {
		stay_asleep {
			user_agents      MyMonitor
			more_user_agents other-bot
			more_paths       /healthz
			robots_txt <<TXT
				User-agent: *
				Disallow: /
				TXT
			status           204
			retry_after      90s
			body             asleep
		}
		header_up X-Site {tenant.site_id}
	}
	tenant /only {
		stay_asleep off
	}
}`)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"stay_asleep":{"body":"asleep","more_paths":["/healthz"],"more_user_agents":["other-bot"],"retry_after":90000000000,"robots_txt":"User-agent: *\nDisallow: /","status":204,"user_agents":["MyMonitor"]}`,
		`"X-Site":["{tenant.site_id}"]`,
		`"stay_asleep":{"off":true}`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s in\n%s", want, out)
		}
	}
	for _, bad := range []string{"stay_asleep on", "stay_asleep {\n\t\t\tnope 1\n\t\t}", "stay_asleep {\n\t\t\tuser_agents\n\t\t}"} {
		if _, err := adapt(t, "http://:8080 {\n\ttenant_proxy {\n\t\t"+bad+"\n\t}\n}"); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// The check is on the hot path of every request: it does not allocate.
func TestStayAsleepMatchesAllocs(t *testing.T) {
	q, _ := (*StayAsleep)(nil).provision()
	r := httptest.NewRequest("GET", "http://a.example.com/page", nil)
	r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0")
	if n := testing.AllocsPerRun(100, func() { q.matches(r) }); n != 0 {
		t.Fatalf("%v allocations a request", n)
	}
}

func BenchmarkStayAsleepMatches(b *testing.B) {
	q, _ := (*StayAsleep)(nil).provision()
	r := httptest.NewRequest("GET", "http://a.example.com/page", nil)
	r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0")
	b.ReportAllocs()
	for b.Loop() {
		q.matches(r)
	}
}
