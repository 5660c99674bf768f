package multitenant

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// DefaultQuietUserAgents are the User-Agent substrings (matched without
// regard to case) of uptime monitors and crawlers, whose requests do not
// wake a stopped site: monitors that would keep every site awake, and
// search engines, SEO and AI crawlers. Link previews (Slackbot,
// Discordbot, Twitterbot) are left out on purpose: a person is waiting
// for them.
var DefaultQuietUserAgents = []string{
	// Uptime monitors.
	"uptimerobot", "pingdom", "statuscake", "site24x7", "betteruptime", "better uptime",
	"uptime-kuma", "updown.io", "freshping", "hetrixtools", "nodeping", "newrelicpinger",
	"datadog/synthetics", "checkly", "uptimia", "montastic", "monitis",
	// Search engines.
	"googlebot", "google-inspectiontool", "adsbot-google", "bingbot", "bingpreview", "yandexbot",
	"baiduspider", "duckduckbot", "slurp", "applebot", "seznambot", "sogou", "exabot", "petalbot",
	// SEO and AI crawlers.
	"ahrefsbot", "semrushbot", "mj12bot", "dotbot", "rogerbot", "blexbot", "dataforseobot",
	"bytespider", "gptbot", "claudebot", "ccbot", "amazonbot", "perplexitybot", "facebookexternalhit",
}

// DefaultQuietPaths are the paths whose requests do not wake a stopped
// site.
var DefaultQuietPaths = []string{"/robots.txt", "/favicon.ico"}

// Defaults of the answers to quiet requests for a stopped site.
const (
	DefaultRobotsTxt       = "User-agent: *\nAllow: /\n"
	DefaultQuietStatus     = http.StatusServiceUnavailable
	DefaultQuietRetryAfter = time.Hour
	DefaultQuietBody       = "This site is asleep; it wakes at the next visit.\n"
)

// StayAsleep names the requests that should not wake a stopped site:
// uptime monitors and crawlers (by User-Agent) and paths such as
// /robots.txt and /favicon.ico. A stopped site answers them itself,
// without starting its container (robots.txt with a text that allows
// everything, anything else with a 503 and Retry-After); a running site
// serves them, but they are no activity: they never keep it awake.
//
// Caddyfile (inside tenant or tenant_proxy):
//
//	stay_asleep {
//		user_agents      <substring>...   # replace the default list
//		more_user_agents <substring>...   # add to it (or to user_agents)
//		paths            <path>...        # replace /robots.txt /favicon.ico
//		more_paths       <path>...
//		robots_txt       <text>           # a heredoc for several lines
//		status           <code>
//		retry_after      <duration>
//		body             <text>
//	}
//	stay_asleep off                       # every request wakes its site
type StayAsleep struct {
	// Off makes every request wake its site and count as its activity.
	// Default: false.
	Off bool `json:"off,omitempty"`

	// UserAgents are substrings of the User-Agent header, matched
	// without regard to case, of the requests that do not wake a site.
	// Default: DefaultQuietUserAgents (UptimeRobot, Pingdom, StatusCake,
	// Googlebot, bingbot and more).
	UserAgents []string `json:"user_agents,omitempty"`

	// MoreUserAgents are added to UserAgents (or its default). Default:
	// none.
	MoreUserAgents []string `json:"more_user_agents,omitempty"`

	// Paths are request paths (exact) that do not wake a site. Default:
	// /robots.txt and /favicon.ico.
	Paths []string `json:"paths,omitempty"`

	// MorePaths are added to Paths (or its default). Default: none.
	MorePaths []string `json:"more_paths,omitempty"`

	// RobotsTxt is what GET /robots.txt of a stopped site answers (200,
	// text/plain). Default: "User-agent: *\nAllow: /\n".
	RobotsTxt string `json:"robots_txt,omitempty"`

	// Status is the status of the other answers for a stopped site.
	// Default: 503.
	Status int `json:"status,omitempty"`

	// RetryAfter is sent with a 503, in whole seconds. Default: 1h.
	RetryAfter caddy.Duration `json:"retry_after,omitempty"`

	// Body is the text/plain body of the other answers. Default: "This
	// site is asleep; it wakes at the next visit.".
	Body string `json:"body,omitempty"`
}

// quietRequests is a provisioned StayAsleep.
type quietRequests struct {
	off        bool
	byFirst    [256][][]byte // the lowercase substrings by their first byte: one pass over a User-Agent
	paths      []string
	robots     []byte
	status     int
	retryAfter string
	body       []byte
}

func (s *StayAsleep) provision() (*quietRequests, error) {
	c := s
	if c == nil {
		c = &StayAsleep{}
	}
	q := &quietRequests{off: c.Off, robots: []byte(c.RobotsTxt), status: c.Status, body: []byte(c.Body)}
	agents := c.UserAgents
	if len(agents) == 0 {
		agents = DefaultQuietUserAgents
	}
	for _, a := range slices.Concat(agents, c.MoreUserAgents) {
		if a = strings.TrimSpace(a); a == "" {
			return nil, errors.New("stay_asleep user_agents: an empty substring would match every request")
		}
		lower := []byte(strings.ToLower(a))
		q.byFirst[lower[0]] = append(q.byFirst[lower[0]], lower)
	}
	q.paths = c.Paths
	if len(q.paths) == 0 {
		q.paths = DefaultQuietPaths
	}
	q.paths = slices.Concat(q.paths, c.MorePaths)
	for _, p := range q.paths {
		if !strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("stay_asleep paths: %q does not start with /", p)
		}
	}
	if c.RobotsTxt == "" {
		q.robots = []byte(DefaultRobotsTxt)
	}
	if q.status == 0 {
		q.status = DefaultQuietStatus
	}
	if q.status < 200 || q.status > 599 {
		return nil, fmt.Errorf("stay_asleep status: %d is no HTTP status", q.status)
	}
	if c.Body == "" {
		q.body = []byte(DefaultQuietBody)
	}
	retry := time.Duration(c.RetryAfter)
	if retry == 0 {
		retry = DefaultQuietRetryAfter
	}
	if retry < 0 {
		return nil, errors.New("stay_asleep retry_after: must not be negative")
	}
	q.retryAfter = strconv.Itoa(max(1, int(retry/time.Second)))
	return q, nil
}

// maxAgentLen bounds the part of a User-Agent that is looked at: every
// pattern sits well within it, and the copy stays on the stack.
const maxAgentLen = 256

// matches reports whether r should not wake its site. It is on the hot
// path of every request: no allocation.
func (q *quietRequests) matches(r *http.Request) bool {
	if q.off {
		return false
	}
	if slices.Contains(q.paths, r.URL.Path) {
		return true
	}
	ua := r.Header.Get("User-Agent")
	if ua == "" {
		return false
	}
	var buf [maxAgentLen]byte
	n := copy(buf[:], ua)
	lower := buf[:n]
	for i, c := range lower {
		if 'A' <= c && c <= 'Z' {
			lower[i] = c + ('a' - 'A')
		}
	}
	for i, c := range lower {
		for _, a := range q.byFirst[c] {
			if bytes.HasPrefix(lower[i:], a) {
				return true
			}
		}
	}
	return false
}

// serve answers a quiet request for a stopped site.
func (q *quietRequests) serve(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	if r.URL.Path == "/robots.txt" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		h.Set("Content-Length", strconv.Itoa(len(q.robots)))
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			w.Write(q.robots)
		}
		return nil
	}
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(q.body)))
	if q.status == http.StatusServiceUnavailable || q.status == http.StatusTooManyRequests {
		h.Set("Retry-After", q.retryAfter)
	}
	w.WriteHeader(q.status)
	if r.Method != http.MethodHead {
		w.Write(q.body)
	}
	return nil
}

// unmarshalCaddyfile reads a stay_asleep option; the dispenser is at
// its name.
func (s *StayAsleep) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		if d.Val() != "off" || d.NextArg() {
			return d.Err("stay_asleep: the only argument is off")
		}
		s.Off = true
		return nil
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		switch opt {
		case "user_agents", "more_user_agents", "paths", "more_paths":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.Errf("stay_asleep %s: expected at least one argument", opt)
			}
			switch opt {
			case "user_agents":
				s.UserAgents = append(s.UserAgents, args...)
			case "more_user_agents":
				s.MoreUserAgents = append(s.MoreUserAgents, args...)
			case "paths":
				s.Paths = append(s.Paths, args...)
			default:
				s.MorePaths = append(s.MorePaths, args...)
			}
		case "robots_txt":
			if err := oneArg(d, &s.RobotsTxt); err != nil {
				return err
			}
		case "body":
			if err := oneArg(d, &s.Body); err != nil {
				return err
			}
		case "status":
			var v string
			if err := oneArg(d, &v); err != nil {
				return err
			}
			n, err := strconv.Atoi(v)
			if err != nil {
				return d.Errf("stay_asleep status: %v", err)
			}
			s.Status = n
		case "retry_after":
			if err := durationArg(d, &s.RetryAfter); err != nil {
				return err
			}
		default:
			return d.Errf("unrecognized stay_asleep option %q", opt)
		}
	}
	return nil
}
