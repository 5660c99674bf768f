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

// Store holds the kept responses of every site, each site's within
// MaxSiteBytes, evicting its least recently used first.
type Store struct {
	maxSite int64

	mu    sync.RWMutex
	sites map[string]*siteResponses
}

// siteResponses are one site's kept responses, most recently used at the
// front.
type siteResponses struct {
	mu    sync.Mutex
	byKey map[string]*list.Element
	lru   list.List // of *entry
	bytes int64
}

type entry struct {
	key  string
	resp *Response
	size int64
}

// NewStore returns an empty store whose sites each keep at most
// maxSiteBytes.
func NewStore(maxSiteBytes int64) *Store {
	return &Store{maxSite: maxSiteBytes, sites: make(map[string]*siteResponses)}
}

// Put keeps resp as the site's response under key, replacing the one
// kept there, and evicts the site's least recently used responses until
// it is within its bound. A response larger than the bound on its own is
// not kept (and the one it would replace is dropped: it is no longer the
// last good one); Put reports whether resp was kept.
func (s *Store) Put(siteID, key string, resp *Response) bool {
	size := resp.size(key)
	site := s.site(siteID, true)
	site.mu.Lock()
	defer site.mu.Unlock()
	if el, ok := site.byKey[key]; ok {
		site.remove(el)
	}
	if size > s.maxSite {
		return false
	}
	site.byKey[key] = site.lru.PushFront(&entry{key: key, resp: resp, size: size})
	site.bytes += size
	for site.bytes > s.maxSite {
		site.remove(site.lru.Back())
	}
	return true
}

// Get returns the site's response kept under key, marking it used.
func (s *Store) Get(siteID, key string) (*Response, bool) {
	site := s.site(siteID, false)
	if site == nil {
		return nil, false
	}
	site.mu.Lock()
	defer site.mu.Unlock()
	el, ok := site.byKey[key]
	if !ok {
		return nil, false
	}
	site.lru.MoveToFront(el)
	return el.Value.(*entry).resp, true
}

// Stats returns how many responses the site has kept and their size.
func (s *Store) Stats(siteID string) (responses int, bytes int64) {
	site := s.site(siteID, false)
	if site == nil {
		return 0, 0
	}
	site.mu.Lock()
	defer site.mu.Unlock()
	return len(site.byKey), site.bytes
}

// Forget drops everything the site kept.
func (s *Store) Forget(siteID string) {
	s.mu.Lock()
	delete(s.sites, siteID)
	s.mu.Unlock()
}

// site returns the site's responses, made first if create.
func (s *Store) site(siteID string, create bool) *siteResponses {
	s.mu.RLock()
	site := s.sites[siteID]
	s.mu.RUnlock()
	if site != nil || !create {
		return site
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if site = s.sites[siteID]; site == nil {
		site = &siteResponses{byKey: make(map[string]*list.Element)}
		s.sites[siteID] = site
	}
	return site
}

func (site *siteResponses) remove(el *list.Element) {
	e := site.lru.Remove(el).(*entry)
	delete(site.byKey, e.key)
	site.bytes -= e.size
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
