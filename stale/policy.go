package stale

import (
	"net/http"
	"strconv"
	"strings"
)

// Key is the key a request's response is kept under: method, host (as
// the site's routing normalized it: lowercase, no port, so that nodes
// behind different ports share copies), path and query. Nothing of the
// request's headers is in it, which is why only responses that vary on
// nothing but Accept-Encoding are kept.
func Key(host string, r *http.Request) string {
	return r.Method + " " + host + r.URL.RequestURI()
}

// StorableRequest reports whether the response to r may be kept, by the
// rules of a shared cache (RFC 9111) and a careful one's: a GET, no
// credentials (Authorization, RFC 9111 §3.5; and no Cookie, as Varnish
// goes: a request with cookies may get an answer made for that visitor
// that forgot to say so), no Range (a part is no copy of the resource)
// and no Cache-Control: no-store.
func StorableRequest(r *http.Request) bool {
	h := r.Header
	return r.Method == http.MethodGet && len(h["Authorization"]) == 0 && len(h["Cookie"]) == 0 &&
		len(h["Range"]) == 0 && !hasDirective(h["Cache-Control"], "no-store")
}

// ServableRequest reports whether r may be answered with a kept copy:
// the same requests whose answers are kept (so a signed-in visitor never
// gets the page of an anonymous one), and not one that asks for a fresh
// answer (a forced reload sends Cache-Control: no-cache).
func ServableRequest(r *http.Request) bool {
	return StorableRequest(r) && !hasDirective(r.Header["Cache-Control"], "no-cache") &&
		!hasDirective(r.Header["Pragma"], "no-cache")
}

// StorableResponse reports whether a response with status and header may
// be kept and served stale by a shared cache: a status cacheable by
// default (RFC 9110 §15.1) without a part of a range, no Set-Cookie, a
// Cache-Control that lets a shared cache keep it and serve it without
// asking the origin (none of no-store, private, no-cache,
// must-revalidate, proxy-revalidate, or s-maxage, which implies
// proxy-revalidate: RFC 9111 §5.2.2), no Pragma: no-cache without a
// Cache-Control, and a Vary that names at most Accept-Encoding.
func StorableResponse(status int, h http.Header) bool {
	if !cacheableStatus(status) || len(h["Set-Cookie"]) > 0 || len(h["Content-Range"]) > 0 {
		return false
	}
	cc := h["Cache-Control"]
	for _, d := range []string{"no-store", "private", "no-cache", "must-revalidate", "proxy-revalidate", "s-maxage"} {
		if hasDirective(cc, d) {
			return false
		}
	}
	if len(cc) == 0 && hasDirective(h["Pragma"], "no-cache") {
		return false
	}
	for _, v := range h["Vary"] {
		for field := range strings.SplitSeq(v, ",") {
			if f := strings.TrimSpace(field); f != "" && !strings.EqualFold(f, "Accept-Encoding") {
				return false
			}
		}
	}
	return true
}

// Acceptable reports whether a kept response suits r: a copy encoded
// (gzip, br, zstd) goes only to a client that accepts that encoding.
func Acceptable(r *http.Request, resp *Response) bool {
	enc := strings.TrimSpace(resp.Header.Get("Content-Encoding"))
	if enc == "" || strings.EqualFold(enc, "identity") {
		return true
	}
	for _, v := range r.Header["Accept-Encoding"] {
		for coding := range strings.SplitSeq(v, ",") {
			name, params, _ := strings.Cut(coding, ";")
			name = strings.TrimSpace(name)
			if (strings.EqualFold(name, enc) || name == "*") && !zeroQ(params) {
				return true
			}
		}
	}
	return false
}

// zeroQ reports whether an Accept-Encoding item's parameters say q=0:
// not acceptable.
func zeroQ(params string) bool {
	for param := range strings.SplitSeq(params, ";") {
		name, value, _ := strings.Cut(param, "=")
		if strings.EqualFold(strings.TrimSpace(name), "q") {
			q, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
			return err == nil && q == 0
		}
	}
	return false
}

// cacheableStatus: the statuses a cache may keep without explicit
// freshness (RFC 9110 §15.1), 206 aside (ranges are not kept).
func cacheableStatus(status int) bool {
	switch status {
	case http.StatusOK, http.StatusNonAuthoritativeInfo, http.StatusNoContent,
		http.StatusMultipleChoices, http.StatusMovedPermanently, http.StatusPermanentRedirect,
		http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusGone,
		http.StatusRequestURITooLong, http.StatusNotImplemented:
		return true
	}
	return false
}

// hasDirective reports whether the comma-separated values name the
// directive, with or without an argument, in any case.
func hasDirective(values []string, directive string) bool {
	for _, v := range values {
		for item := range strings.SplitSeq(v, ",") {
			name, _, _ := strings.Cut(item, "=")
			if strings.EqualFold(strings.TrimSpace(name), directive) {
				return true
			}
		}
	}
	return false
}
