package ui

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/agistaffers/caddy-multitenant/manage"
)

// Helpers of the operators' management pages (customers, plans, admins,
// keys, audit): a failed form comes back with its values and the
// service's message next to the field.

// formFailed re-renders page with the submitted form and err's message when
// err is the input's fault (Invalid, or a Conflict such as a taken email),
// with err's status; any other error goes to the error page.
func (u *UI) formFailed(w http.ResponseWriter, r *http.Request, v *view, page string, err error) error {
	if !manage.IsCode(err, manage.Invalid) && !manage.IsCode(err, manage.Conflict) {
		return err
	}
	// Passwords are never sent back, not even to the one who typed them.
	for _, f := range []string{"password", "confirm", "current"} {
		r.PostForm.Del(f)
	}
	u.render(w, statusOf(err), page, v.withError(err, r.PostForm))
	return nil
}

// badField is the error of a form field the page itself could not read.
func badField(field, msg string) error {
	return &manage.Error{Code: manage.Invalid, Field: field, Message: msg}
}

// formInt reads an integer field; empty is 0.
func formInt(form url.Values, field string) (int64, error) {
	s := strings.TrimSpace(form.Get(field))
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, badField(field, "must be a whole number")
	}
	return n, nil
}

// formCPUs reads a number of CPUs ("0.5") as nano-CPUs; empty is 0.
func formCPUs(form url.Values, field string) (int64, error) {
	s := strings.TrimSpace(form.Get(field))
	if s == "" {
		return 0, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f > 1e6 {
		return 0, badField(field, "must be a number of CPUs, such as 0.5")
	}
	return int64(f * 1e9), nil
}

// formMemory reads a size such as 512MiB, 1GiB, 64M or a plain number of
// bytes; empty is 0.
func formMemory(form url.Values, field string) (int64, error) {
	s := strings.TrimSpace(form.Get(field))
	if s == "" {
		return 0, nil
	}
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
		{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40}, {"B", 1}}
	mult := int64(1)
	for _, un := range units {
		if num, ok := strings.CutSuffix(s, un.suffix); ok {
			s, mult = strings.TrimSpace(num), un.mult
			break
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f*float64(mult) > 1<<50 {
		return 0, badField(field, "must be a size such as 512MiB or 2GiB")
	}
	return int64(f * float64(mult)), nil
}

// memoryText shows a size the way formMemory reads it back.
func memoryText(n int64) string {
	if n <= 0 {
		return ""
	}
	for _, un := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n%un.mult == 0 {
			return strconv.FormatInt(n/un.mult, 10) + un.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// cpusText shows nano-CPUs the way formCPUs reads them back.
func cpusText(n int64) string {
	if n <= 0 {
		return ""
	}
	return strconv.FormatFloat(float64(n)/1e9, 'f', -1, 64)
}

// baseURL is the scheme and host the request came to, for absolute links
// shown to be sent elsewhere (an invitation).
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func formatInt(n int64) string { return strconv.FormatInt(n, 10) }
