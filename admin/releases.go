package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/agistaffers/caddy-multitenant/manage"
)

// Release answers are the admin service's.
type Release = manage.Release

// RollbackInput names the release to go back to; without it, the one
// live before the live one.
type RollbackInput struct {
	Release int `json:"release,omitempty"`
}

// DefaultMaxUpload is the largest build context a deploy takes unless
// configured otherwise.
const DefaultMaxUpload = 100 << 20

// isUpload reports whether r is a deploy, whose body is a build context
// bounded by MaxUpload rather than MaxBody.
func isUpload(r *http.Request) bool {
	rest, ok := strings.CutPrefix(r.URL.Path, Prefix+"/sites/")
	return ok && r.Method == http.MethodPost && strings.HasSuffix(rest, "/deploy") && strings.Count(rest, "/") == 1
}

func (a *API) listReleases(w http.ResponseWriter, r *http.Request) error {
	q := query(r)
	before, err := intParam(q.Get("before"), "before", 1, 1<<31-1)
	if err != nil {
		return err
	}
	limit, err := intParam(q.Get("limit"), "limit", 1, 500)
	if err != nil {
		return err
	}
	items, err := a.svc.ListReleases(r.Context(), ref(r), before, limit)
	if err != nil {
		return err
	}
	out := releaseList{Items: items}
	if out.Items == nil {
		out.Items = []Release{}
	}
	if limit == 0 {
		limit = manage.DefaultReleaseLimit
	}
	if n := len(items); n > 0 && n == limit {
		out.NextBefore = items[n-1].Number
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) getRelease(w http.ResponseWriter, r *http.Request) error {
	n, err := intParam(r.PathValue("n"), "n", 1, 1<<31-1)
	if err != nil {
		return err
	}
	rel, err := a.svc.GetRelease(r.Context(), ref(r), n)
	return ok(w, rel, err)
}

func (a *API) rollback(w http.ResponseWriter, r *http.Request) error {
	// The site first: a missing one is a 404 whatever the body.
	if _, err := a.svc.GetSite(r.Context(), ref(r)); err != nil {
		return err
	}
	var in RollbackInput
	if err := decodeOptional(r, &in); err != nil {
		return err
	}
	rel, err := a.svc.Rollback(r.Context(), actor(r), ref(r), in.Release)
	return ok(w, rel, err)
}

// deploy builds the uploaded build context (a tar.gz with a Dockerfile)
// and rolls the release out, answering with an event stream: "log"
// events with the build's output as it comes (one line each), then one
// "release" event with the release as it ended, or an "error" event.
// What fails before the build starts (no such site, not a tar.gz) is an
// ordinary error answer.
func (a *API) deploy(w http.ResponseWriter, r *http.Request) error {
	if _, err := a.svc.GetSite(r.Context(), ref(r)); err != nil {
		return err
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || !buildContextTypes[mt] {
			return apiErr(http.StatusUnsupportedMediaType, CodeUnsupportedMedia, "", "the body must be a build context: application/gzip (a tar.gz)")
		}
	}
	events := &eventStream{w: w}
	rel, err := a.svc.Deploy(r.Context(), actor(r), ref(r), manage.DeployInput{Context: r.Body, Log: events})
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		err = bodyTooLarge(tooLarge.Limit)
	}
	if !events.started() {
		return ok(w, rel, err)
	}
	if err != nil {
		e := a.toAPIError(r, err)
		e.RequestID = requestID(r)
		events.send("error", struct {
			Error *Error `json:"error"`
		}{e})
		return nil
	}
	events.send("release", rel)
	return nil
}

var buildContextTypes = map[string]bool{"application/gzip": true, "application/x-gzip": true,
	"application/x-tar": true, "application/octet-stream": true}

// eventStream writes server-sent events, the first of them with the
// stream's headers; as a writer it sends each line as a "log" event.
type eventStream struct {
	w       http.ResponseWriter
	mu      sync.Mutex
	open    bool
	partial []byte
}

func (s *eventStream) started() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.open
}

// Write sends every complete line of b as a "log" event.
func (s *eventStream) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.partial = append(s.partial, b...)
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			break
		}
		s.event("log", string(s.partial[:i]))
		s.partial = s.partial[i+1:]
	}
	return len(b), nil
}

// send sends v as JSON in one event, after what is left of the log.
func (s *eventStream) send(name string, v any) {
	b, _ := json.Marshal(v)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.partial) > 0 {
		s.event("log", string(s.partial))
		s.partial = nil
	}
	s.event(name, string(b))
}

// event writes one event and flushes it; s.mu is held. Data is one line.
func (s *eventStream) event(name, data string) {
	if !s.open {
		s.open = true
		h := s.w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Accel-Buffering", "no")
		s.w.WriteHeader(http.StatusOK)
	}
	fmt.Fprintf(s.w, "event: %s\ndata: %s\n\n", name, strings.ReplaceAll(data, "\r", ""))
	_ = http.NewResponseController(s.w).Flush()
}

// intParam parses an optional whole-number parameter within [lo, hi]; 0
// when it is absent.
func intParam(v, name string, lo, hi int) (int, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, invalidParam(name, fmt.Sprintf("must be a whole number from %d to %d", lo, hi))
	}
	return n, nil
}

type releaseList struct {
	Items      []Release `json:"items"`
	NextBefore int       `json:"next_before,omitempty"`
}
