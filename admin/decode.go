package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// DefaultMaxBody is the largest request body the API reads by default.
const DefaultMaxBody = 1 << 20

// decodeBody reads the request body (already limited by ServeHTTP) as
// exactly one JSON value into v. Unknown members, trailing data, a body
// that is not JSON and one over the size limit are all refused before
// anything is changed.
func decodeBody(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return apiErr(http.StatusUnsupportedMediaType, CodeUnsupportedMedia, "", "the body must be application/json")
		}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return bodyTooLarge(tooLarge.Limit)
		}
		return err
	}
	return decodeJSON(body, v)
}

func bodyTooLarge(limit int64) *Error {
	return apiErr(http.StatusRequestEntityTooLarge, CodeBodyTooLarge, "", fmt.Sprintf("the body is larger than %d bytes", limit))
}

// decodeJSON decodes body, one JSON object, into v strictly: besides
// encoding/json's checks, text that is not text (NUL, invalid UTF-8, lone
// surrogates) is refused with 422 and a member given twice with 400, both
// naming the field.
func decodeJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return apiErr(http.StatusBadRequest, CodeMalformedJSON, "", "the body is empty; send a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return apiErr(http.StatusBadRequest, CodeMalformedJSON, "", "unexpected data after the JSON object")
	}
	return checkJSONText(body)
}

// jsonError turns encoding/json's errors into API errors naming the field.
func jsonError(err error) *Error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return apiErr(http.StatusBadRequest, CodeMalformedJSON, "", fmt.Sprintf("malformed JSON at byte %d: %v", syntax.Offset, syntax))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return apiErr(http.StatusBadRequest, CodeMalformedJSON, "", "malformed JSON: unexpected end of the body")
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return apiErr(http.StatusBadRequest, CodeInvalidType, "", "the body must be a JSON object")
		}
		return apiErr(http.StatusBadRequest, CodeInvalidType, field, fmt.Sprintf("%s must be %s", field, jsonKind(typ.Type.Kind().String())))
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		name, _ = strconv.Unquote(name)
		return apiErr(http.StatusBadRequest, CodeUnknownField, name, fmt.Sprintf("unknown field %q", name))
	}
	return apiErr(http.StatusBadRequest, CodeMalformedJSON, "", "malformed JSON: "+strings.TrimPrefix(msg, "json: "))
}

func jsonKind(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "int", "int64":
		return fmt.Sprintf("an integer from %d to %d", math.MinInt64, math.MaxInt64)
	case "float64":
		return "a number"
	case "bool":
		return "a boolean"
	case "map", "struct":
		return "an object"
	case "slice":
		return "an array"
	case "ptr":
		return "a value of another type"
	}
	return "of another type"
}

// page reads ?limit= and ?after= of a listing.
func page(r *http.Request) (tenants.Page, error) {
	q := query(r)
	var p tenants.Page
	n, err := limitParam(r)
	if err != nil {
		return p, err
	}
	p.Limit = n
	if s := q.Get("after"); s != "" {
		if !manage.IsID(s) {
			return p, invalidParam("after", "must be the id of the last item of the previous page")
		}
		p.After = s
	}
	return p, nil
}

// boolParam reads a boolean query parameter: absent is false.
func boolParam(r *http.Request, name string) (bool, error) {
	s := query(r).Get(name)
	if s == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, invalidParam(name, "must be true or false")
	}
	return b, nil
}

// list is the shape of every listing. NextAfter, when set, is the ?after=
// value that fetches the next page.
type list[T any] struct {
	Items     []T    `json:"items"`
	NextAfter string `json:"next_after,omitempty"`
}

func newList[T any](items []T, p tenants.Page, id func(*T) string) list[T] {
	if items == nil {
		items = []T{}
	}
	l := list[T]{Items: items}
	limit := p.Limit
	if limit == 0 {
		limit = 50
	}
	if len(items) == limit {
		l.NextAfter = id(&items[len(items)-1])
	}
	return l
}

// limitParam reads ?limit=, 1 to 500; 0 when absent.
func limitParam(r *http.Request) (int, error) {
	s := query(r).Get("limit")
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 500 {
		return 0, invalidParam("limit", "must be an integer from 1 to 500")
	}
	return n, nil
}

// rawOrNil returns stored JSON as a raw value, nil (null) when empty.
func rawOrNil(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return json.RawMessage(b)
}
