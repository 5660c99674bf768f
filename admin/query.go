package admin

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
)

type queryCtx struct{}

// parseQuery reads a query string strictly, by the rules of
// url.ParseQuery, but refuses instead of dropping: r.URL.Query() silently
// skips a pair with a ";" or a bad %-escape, so that a mangled filter
// (site_id=…;) lists, and a script then deletes, everything. Every error
// names its parameter: a malformed pair, a parameter the route does not
// take (a typo'd filter) or one given twice is a 400, a value that is not
// text (NUL, invalid UTF-8) a 422.
func parseQuery(raw string, allowed []string) (url.Values, error) {
	q := url.Values{}
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			return nil, malformedQuery(k, "the parameter name has an invalid %-escape")
		}
		if strings.Contains(pair, ";") {
			return nil, malformedQuery(name, `contains ";": separate parameters with "&", and escape a ";" in a value as %3B`)
		}
		value, err := url.QueryUnescape(v)
		if err != nil {
			return nil, malformedQuery(name, "the value has an invalid %-escape")
		}
		switch {
		case !slices.Contains(allowed, name):
			return nil, unknownParam(name, allowed)
		case q.Has(name):
			return nil, apiErr(http.StatusBadRequest, CodeDuplicateKey, name, "given more than once")
		case !utf8.ValidString(value):
			return nil, invalidParam(name, "is not valid UTF-8")
		case strings.IndexByte(value, 0) >= 0:
			return nil, invalidParam(name, "contains a NUL character")
		}
		q.Set(name, value)
	}
	return q, nil
}

func malformedQuery(name, msg string) *Error {
	return apiErr(http.StatusBadRequest, CodeMalformedQuery, printable(name), msg)
}

func unknownParam(name string, allowed []string) *Error {
	msg := fmt.Sprintf("unknown query parameter %q; this route takes none", printable(name))
	if len(allowed) > 0 {
		msg = fmt.Sprintf("unknown query parameter %q; this route takes %s", printable(name), strings.Join(allowed, ", "))
	}
	return apiErr(http.StatusBadRequest, CodeUnknownParameter, printable(name), msg)
}

// withQuery keeps a request's checked query for its handler.
func withQuery(r *http.Request, q url.Values) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), queryCtx{}, q))
}

// query returns the request's query as parseQuery checked it.
func query(r *http.Request) url.Values {
	q, _ := r.Context().Value(queryCtx{}).(url.Values)
	return q
}
