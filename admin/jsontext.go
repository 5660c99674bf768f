package admin

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// checkJSONText walks one JSON value that encoding/json has already
// decoded, for what it lets through silently: invalid UTF-8 (replaced by
// U+FFFD), NUL and lone UTF-16 surrogates written as \u escapes (decoded
// to NUL and U+FFFD), and a member given twice in one object (the last
// wins). The first finding is an API error naming the field by its path,
// such as env.FOO or cap_add[1]; in a member name, the offending
// characters show as U+FFFD.
//
// Members of the top-level object are compared case-insensitively, the
// way encoding/json matches them to struct fields: "name" and "Name" set
// the same field.
func checkJSONText(body []byte) error {
	s := &textScanner{b: body}
	s.value("", 0)
	return s.err
}

type textScanner struct {
	b   []byte
	i   int
	err error
}

func (s *textScanner) value(path string, depth int) {
	s.space()
	switch s.peek() {
	case '{':
		s.object(path, depth)
	case '[':
		s.array(path, depth)
	case '"':
		if _, problem := s.str(); problem != "" {
			s.fail(apiErr(http.StatusUnprocessableEntity, CodeInvalid, path, problem))
		}
	default: // a number, true, false or null
		for s.i < len(s.b) && !strings.ContainsRune(",]} \t\r\n", rune(s.b[s.i])) {
			s.i++
		}
	}
}

func (s *textScanner) object(path string, depth int) {
	s.i++ // {
	seen := map[string]bool{}
	for s.err == nil {
		s.space()
		if s.peek() == '}' {
			s.i++
			return
		}
		name, problem := s.str()
		field := name
		if path != "" {
			field = path + "." + name
		}
		if problem != "" {
			s.fail(apiErr(http.StatusUnprocessableEntity, CodeInvalid, field, "the member name "+problem))
			return
		}
		key := name
		if depth == 0 {
			key = foldCase(name)
		}
		if seen[key] {
			s.fail(apiErr(http.StatusBadRequest, CodeDuplicateKey, field, fmt.Sprintf("%q appears more than once", name)))
			return
		}
		seen[key] = true
		s.space()
		s.i++ // :
		s.value(field, depth+1)
		s.space()
		if s.peek() == ',' {
			s.i++
		}
	}
}

func (s *textScanner) array(path string, depth int) {
	s.i++ // [
	for n := 0; s.err == nil; n++ {
		s.space()
		if s.peek() == ']' {
			s.i++
			return
		}
		s.value(path+"["+strconv.Itoa(n)+"]", depth+1)
		s.space()
		if s.peek() == ',' {
			s.i++
		}
	}
}

// str reads a string at s.i and returns it decoded, with every character
// that is not text replaced by U+FFFD, and what the first one was.
func (s *textScanner) str() (text, problem string) {
	if s.peek() != '"' {
		s.malformed()
		return "", ""
	}
	s.i++
	var b strings.Builder
	note := func(p string) {
		if problem == "" {
			problem = p
		}
		b.WriteRune(utf8.RuneError)
	}
	for s.err == nil {
		switch c := s.peek(); {
		case c == '"':
			s.i++
			return b.String(), problem
		case c == '\\':
			s.escape(&b, note)
		case c < utf8.RuneSelf:
			b.WriteByte(c)
			s.i++
		default:
			r, size := utf8.DecodeRune(s.b[s.i:])
			s.i += size
			if r == utf8.RuneError && size == 1 {
				note("is not valid UTF-8")
				continue
			}
			b.WriteRune(r)
		}
	}
	return "", ""
}

// escape decodes the escape sequence at s.i.
func (s *textScanner) escape(b *strings.Builder, note func(string)) {
	if s.i+1 >= len(s.b) {
		s.malformed()
		return
	}
	c := s.b[s.i+1]
	if c != 'u' {
		s.i += 2
		b.WriteByte(unescaped[c])
		return
	}
	r, ok := s.hex4(s.i + 2)
	if !ok {
		s.malformed()
		return
	}
	s.i += 6
	switch {
	case r == 0:
		note(`contains a NUL character (\u0000)`)
	case utf16IsHigh(r):
		if low, ok := s.lowSurrogate(); ok {
			b.WriteRune((r-0xD800)<<10 + (low - 0xDC00) + 0x10000)
			return
		}
		note("contains a lone UTF-16 surrogate escape, which is not text")
	case utf16IsLow(r):
		note("contains a lone UTF-16 surrogate escape, which is not text")
	default:
		b.WriteRune(r)
	}
}

// lowSurrogate consumes a \uDC00-\uDFFF escape at s.i, if there is one.
func (s *textScanner) lowSurrogate() (rune, bool) {
	if s.i+1 >= len(s.b) || s.b[s.i] != '\\' || s.b[s.i+1] != 'u' {
		return 0, false
	}
	r, ok := s.hex4(s.i + 2)
	if !ok || !utf16IsLow(r) {
		return 0, false
	}
	s.i += 6
	return r, true
}

func (s *textScanner) hex4(at int) (rune, bool) {
	if at+4 > len(s.b) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(s.b[at:at+4]), 16, 32)
	return rune(n), err == nil
}

// unescaped maps the letter of a one-character escape to what it stands for.
var unescaped = [256]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

func utf16IsHigh(r rune) bool { return r >= 0xD800 && r < 0xDC00 }
func utf16IsLow(r rune) bool  { return r >= 0xDC00 && r < 0xE000 }

func (s *textScanner) space() {
	for s.i < len(s.b) && strings.IndexByte(" \t\r\n", s.b[s.i]) >= 0 {
		s.i++
	}
}

// peek returns the byte at s.i; 0 at the end, which no JSON text has
// where a byte is expected.
func (s *textScanner) peek() byte {
	if s.i >= len(s.b) {
		s.malformed()
		return 0
	}
	return s.b[s.i]
}

func (s *textScanner) fail(e *Error) {
	if s.err == nil {
		s.err = e
	}
}

// malformed stops the scan: encoding/json accepted the body, so the
// scanner and it disagree on what JSON is.
func (s *textScanner) malformed() {
	s.fail(apiErr(http.StatusBadRequest, CodeMalformedJSON, "", "malformed JSON"))
}

// foldCase maps s to one representative of the strings equal to it under
// Unicode simple case folding, the equality strings.EqualFold and
// encoding/json's field matching use.
func foldCase(s string) string {
	var b strings.Builder
	for _, r := range s {
		min := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < min {
				min = f
			}
		}
		b.WriteRune(min)
	}
	return b.String()
}
