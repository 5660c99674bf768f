// Package stale keeps, per site, the last good response to each
// cacheable request, bounded in bytes, so that a site that is starting
// can be answered at once with what it said last.
package stale

import (
	"container/list"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Response is a kept response.
type Response struct {
	Status int
	// Header is the response's header as the site sent it, hop-by-hop
	// fields removed.
	Header   http.Header
	Body     []byte
	StoredAt time.Time
	// Written is when its copy in the database was last written (zero:
	// never; set by the caller before Put, the response is not changed
	// after).
	Written time.Time
}

// size is what the response counts against its site's bound: its body,
// its header and its key.
func (r *Response) size(key string) int64 {
	n := len(key) + len(r.Body)
	for name, values := range r.Header {
		for _, v := range values {
			n += len(name) + len(v) + 4 // ": " and CRLF
		}
	}
	return int64(n)
}

// Age is the response's age at now (RFC 9111 §4.2.3): the Age it came
// with plus how long it was kept, in whole seconds.
func (r *Response) Age(now time.Time) int64 {
	kept := int64(now.Sub(r.StoredAt) / time.Second)
	if kept < 0 {
		kept = 0
	}
	if came, err := strconv.ParseInt(r.Header.Get("Age"), 10, 64); err == nil && came > 0 {
		return came + kept
	}
	return kept
}

// hopByHop are the fields that belong to one connection, not to the
// response (RFC 9110 §7.6.1).
var hopByHop = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// CleanHeader returns a copy of h without its hop-by-hop fields (also
// those Connection names), as it is kept.
func CleanHeader(h http.Header) http.Header {
	out := h.Clone()
	for _, v := range h["Connection"] {
		for _, name := range splitList(v) {
			out.Del(name)
		}
	}
	for _, name := range hopByHop {
		delete(out, name)
	}
	return out
}

// Store holds the kept responses of every site: each site's within
// maxSite, all of them within maxTotal, the least recently used evicted
// first (the site's own to keep within its bound, anyone's for the
// total).
type Store struct {
	maxSite, maxTotal int64

	mu    sync.Mutex
	sites map[string]*siteResponses
	all   list.List // of *entry, most recently used first
	total int64
}

// siteResponses are one site's kept responses.
type siteResponses struct {
	id    string
	byKey map[string]*entry
	lru   list.List // of *entry, most recently used first
	bytes int64
}

type entry struct {
	site          *siteResponses
	key           string
	resp          *Response
	size          int64
	inSite, inAll *list.Element
}

// NewStore returns an empty store whose sites each keep at most
// maxSiteBytes, and all together at most maxTotalBytes.
func NewStore(maxSiteBytes, maxTotalBytes int64) *Store {
	return &Store{maxSite: maxSiteBytes, maxTotal: maxTotalBytes, sites: make(map[string]*siteResponses)}
}

// Put keeps resp as the site's response under key, replacing the one
// kept there, and evicts the least recently used responses until the
// site and the store are within their bounds. A response larger than a
// bound on its own is not kept (and the one it would replace is
// dropped: it is no longer the last good one); Put reports whether resp
// was kept.
func (s *Store) Put(siteID, key string, resp *Response) bool {
	size := resp.size(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	site := s.sites[siteID]
	if site != nil {
		if e, ok := site.byKey[key]; ok {
			s.remove(e)
		}
	}
	if size > s.maxSite || size > s.maxTotal {
		return false
	}
	if site = s.sites[siteID]; site == nil { // remove may have dropped it
		site = &siteResponses{id: siteID, byKey: make(map[string]*entry)}
		s.sites[siteID] = site
	}
	e := &entry{site: site, key: key, resp: resp, size: size}
	e.inSite, e.inAll = site.lru.PushFront(e), s.all.PushFront(e)
	site.byKey[key] = e
	site.bytes += size
	s.total += size
	for site.bytes > s.maxSite {
		s.remove(site.lru.Back().Value.(*entry))
	}
	for s.total > s.maxTotal {
		s.remove(s.all.Back().Value.(*entry))
	}
	return true
}

// Get returns the site's response kept under key, marking it used.
func (s *Store) Get(siteID, key string) (*Response, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	site := s.sites[siteID]
	if site == nil {
		return nil, false
	}
	e, ok := site.byKey[key]
	if !ok {
		return nil, false
	}
	site.lru.MoveToFront(e.inSite)
	s.all.MoveToFront(e.inAll)
	return e.resp, true
}

// Stats returns how many responses the site has kept and their size.
func (s *Store) Stats(siteID string) (responses int, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if site := s.sites[siteID]; site != nil {
		return len(site.byKey), site.bytes
	}
	return 0, 0
}

// Total returns the size of every site's kept responses.
func (s *Store) Total() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// Forget drops everything the site kept.
func (s *Store) Forget(siteID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if site := s.sites[siteID]; site != nil {
		for _, e := range site.byKey {
			s.remove(e)
		}
	}
}

// remove drops e, and its site once it keeps nothing.
func (s *Store) remove(e *entry) {
	site := e.site
	site.lru.Remove(e.inSite)
	s.all.Remove(e.inAll)
	delete(site.byKey, e.key)
	site.bytes -= e.size
	s.total -= e.size
	if len(site.byKey) == 0 {
		delete(s.sites, site.id)
	}
}

// splitList splits a comma-separated header value into its trimmed,
// non-empty items.
func splitList(v string) []string {
	var out []string
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
