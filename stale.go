package multitenant

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/agistaffers/caddy-multitenant/provisioner"
	"github.com/agistaffers/caddy-multitenant/stale"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// Headers of a response served stale while its site starts: how old it
// is (Age), that it is a copy (Cache-Status, RFC 9211) and that it is
// stale (Warning 110, RFC 7234's, which clients still show).
const (
	staleCacheStatus = "caddy-multitenant; hit; detail=stale-while-starting"
	staleWarning     = `110 - "Response is Stale"`
)

// staleLoadTimeout bounds the database read of a copy for a request
// that found none in memory: past it, the request waits for the start
// as it would without a copy.
const staleLoadTimeout = 500 * time.Millisecond

// staleRewriteAfter is how long an unchanged answer (same status and
// body) is not written to the database again: a busy site's pages are
// written about once a minute each, not at every request.
const staleRewriteAfter = time.Minute

// staleResponses serves sites that opt in (serve_stale) with their last
// good responses while they start: it keeps what their running
// containers answer, writes it behind to PostgreSQL, answers a request
// for a stopped site from it and starts the site in the background.
type staleResponses struct {
	kept        *stale.Store
	db          *tenants.Store
	maxSite     int64
	maxResponse int64
	persist     bool
	logger      *zap.Logger

	writes   chan tenants.StaleResponse // copies waiting to be written behind
	starts   chan provisioner.Spec      // sites to start in the background
	starting sync.Map                   // site id → struct{}: a background start queued or running
}

func newStaleResponses(c *ServeStaleConfig, db *tenants.Store, logger *zap.Logger) *staleResponses {
	return &staleResponses{
		kept:        stale.NewStore(c.MaxSiteBytes, c.MaxMemoryBytes),
		db:          db,
		maxSite:     c.MaxSiteBytes,
		maxResponse: c.MaxResponseBytes,
		persist:     *c.Persist,
		logger:      logger,
		writes:      make(chan tenants.StaleResponse, 1024),
		starts:      make(chan provisioner.Spec, 256),
	}
}

// lookup returns the site's copy of the answer to r, from memory, else
// from the database (then kept in memory too), if r may be answered
// with one.
func (s *staleResponses) lookup(r *http.Request, route *tenants.Route) (*stale.Response, bool) {
	if !stale.ServableRequest(r) {
		return nil, false
	}
	siteID, key := route.SiteID, stale.Key(route.Host, r)
	resp, ok := s.kept.Get(siteID, key)
	if !ok && s.persist {
		resp, ok = s.load(r.Context(), siteID, key)
	}
	if !ok || !stale.Acceptable(r, resp) {
		return nil, false
	}
	return resp, true
}

func (s *staleResponses) load(ctx context.Context, siteID, key string) (*stale.Response, bool) {
	ctx, cancel := context.WithTimeout(ctx, staleLoadTimeout)
	defer cancel()
	row, err := s.db.GetStaleResponse(ctx, siteID, key)
	if err != nil {
		if !errors.Is(err, tenants.ErrNotFound) && ctx.Err() == nil {
			s.logger.Warn("reading a stale response", zap.String("site_id", siteID), zap.Error(err))
		}
		return nil, false
	}
	resp := &stale.Response{Status: row.Status, Header: row.Header, Body: row.Body, StoredAt: row.StoredAt}
	if resp.Header == nil {
		resp.Header = http.Header{}
	}
	s.kept.Put(siteID, key, resp)
	return resp, true
}

// serve writes resp, marked as a stale copy.
func serveStale(w http.ResponseWriter, resp *stale.Response) error {
	h := w.Header()
	for name, values := range resp.Header {
		h[name] = append([]string(nil), values...)
	}
	h.Set("Age", strconv.FormatInt(resp.Age(time.Now()), 10))
	h.Set("Cache-Status", staleCacheStatus)
	h.Add("Warning", staleWarning)
	w.WriteHeader(resp.Status)
	_, err := w.Write(resp.Body)
	return err
}

// startInBackground has the site started by the platform, not by the
// request: the start goes on after the stale answer was sent. A site
// already starting so is not queued again.
func (s *staleResponses) startInBackground(spec provisioner.Spec) {
	if _, queued := s.starting.LoadOrStore(spec.SiteID, struct{}{}); queued {
		return
	}
	select {
	case s.starts <- spec:
	default:
		// Full: the next request for the site queues it again.
		s.starting.Delete(spec.SiteID)
	}
}

// runStarts starts the queued sites, each within timeout, until ctx
// ends; wg owns the starts.
func (s *staleResponses) runStarts(ctx context.Context, prov *provisioner.Provisioner, timeout time.Duration, wg *sync.WaitGroup) {
	for {
		select {
		case <-ctx.Done():
			return
		case spec := <-s.starts:
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer s.starting.Delete(spec.SiteID)
				startCtx, cancel := context.WithTimeout(ctx, timeout)
				defer cancel()
				if _, err := prov.Ensure(startCtx, spec); err != nil && ctx.Err() == nil {
					s.logger.Warn("starting a site served stale", zap.String("site_id", spec.SiteID), zap.Error(err))
				}
			}()
		}
	}
}

// record passes the request on to next, keeping a copy of the answer if
// it may be served stale later.
func (s *staleResponses) record(w http.ResponseWriter, r *http.Request, route *tenants.Route, next caddyhttp.Handler) error {
	rec := &staleRecorder{ResponseWriterWrapper: caddyhttp.ResponseWriterWrapper{ResponseWriter: w}, max: s.maxResponse}
	err := next.ServeHTTP(rec, r)
	if err != nil || rec.status == 0 || rec.skip || r.Context().Err() != nil {
		return err
	}
	if cl := rec.header.Get("Content-Length"); cl != "" && cl != strconv.Itoa(rec.body.Len()) {
		return nil // cut short
	}
	now := time.Now()
	resp := &stale.Response{Status: rec.status, Header: rec.header, Body: bytes.Clone(rec.body.Bytes()), StoredAt: now, Written: now}
	siteID, key := route.SiteID, stale.Key(route.Host, r)
	prev, had := s.kept.Get(siteID, key)
	unchanged := had && prev.Status == resp.Status && bytes.Equal(prev.Body, resp.Body) && now.Sub(prev.Written) < staleRewriteAfter
	if unchanged {
		resp.Written = prev.Written
	}
	if !s.kept.Put(siteID, key, resp) || !s.persist || unchanged {
		return nil
	}
	select {
	case s.writes <- tenants.StaleResponse{SiteID: siteID, Key: key, Status: resp.Status, Header: resp.Header, Body: resp.Body, StoredAt: resp.StoredAt}:
	default:
		// Full: the memory copy serves this node; the next answer to
		// the request is written instead.
	}
	return nil
}

// writeBehind writes queued copies to the database in batches, at most
// once a second, the latest of each key only, until ctx ends.
func (s *staleResponses) writeBehind(ctx context.Context) {
	type siteKey struct{ site, key string }
	writeBehind(ctx, s.writes, func(r tenants.StaleResponse) siteKey { return siteKey{r.SiteID, r.Key} },
		func(ctx context.Context, batch []tenants.StaleResponse) bool {
			if err := s.db.SaveStaleResponses(ctx, batch, s.maxSite); err != nil {
				s.logger.Warn("writing stale responses; dropped (the sites' next answers are written instead)",
					zap.Int("responses", len(batch)), zap.Error(err))
			}
			return true
		})
}

// staleRecorder passes a response on and keeps a copy of it while it
// may still be kept: a status and header a shared cache may store, a
// body within max.
type staleRecorder struct {
	caddyhttp.ResponseWriterWrapper
	max    int64
	status int
	header http.Header // as the status was written, hop-by-hop fields removed
	body   bytes.Buffer
	skip   bool
}

// WriteHeader decides, at the final status, whether the response may be
// kept; informational ones pass.
func (rec *staleRecorder) WriteHeader(code int) {
	if code >= 200 && rec.status == 0 {
		rec.status = code
		h := rec.ResponseWriter.Header()
		switch {
		case !stale.StorableResponse(code, h), len(h["Trailer"]) > 0:
			rec.skip = true
		default:
			if n, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64); err == nil && n > rec.max {
				rec.skip = true
			} else {
				rec.header = stale.CleanHeader(h)
			}
		}
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *staleRecorder) Write(b []byte) (int, error) {
	if rec.status == 0 {
		rec.WriteHeader(http.StatusOK)
	}
	n, err := rec.ResponseWriter.Write(b)
	if !rec.skip {
		if int64(rec.body.Len()+n) > rec.max {
			rec.skip = true
			rec.body = bytes.Buffer{}
		} else {
			rec.body.Write(b[:n])
		}
	}
	if err != nil {
		rec.skip = true
	}
	return n, err
}

// ReadFrom copies through Write: the wrapper's own would hand the body
// to the writer underneath, past the copy.
func (rec *staleRecorder) ReadFrom(r io.Reader) (int64, error) {
	return io.Copy(writerOnly{rec}, r)
}

// writerOnly hides every method but Write, so io.Copy does not call
// ReadFrom again.
type writerOnly struct{ io.Writer }

// Interface guards
var (
	_ http.ResponseWriter = (*staleRecorder)(nil)
	_ io.ReaderFrom       = (*staleRecorder)(nil)
)
