package ui

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

//go:embed templates/*.html
var templateFiles embed.FS

// pageSet holds one parsed template per page: the layout plus the page's
// own file, which defines "title" and "content" (and may define "head").
type pageSet map[string]*template.Template

func loadPages() (pageSet, error) {
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", "templates/partials.html")
	if err != nil {
		return nil, fmt.Errorf("parsing ui layout: %w", err)
	}
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		return nil, err
	}
	set := make(pageSet, len(names))
	for _, name := range names {
		base := path.Base(name)
		if base == "layout.html" || base == "partials.html" {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(templateFiles, name)
		if err != nil {
			return nil, fmt.Errorf("parsing ui page %s: %w", base, err)
		}
		set[strings.TrimSuffix(base, ".html")] = t
	}
	return set, nil
}

// view is what every page template gets.
type view struct {
	Title    string
	Nav      string // the navigation entry to mark current
	User     *tenants.User
	Operator bool
	CSRF     string
	Flash    string
	Path     string
	// Form holds a submitted form's values, to show them again with its
	// errors; Errors maps a field to its message, Error is the form's.
	Form   url.Values
	Errors map[string]string
	Error  string
	Data   any
}

// navItem is an entry of the main navigation; Key is the view's Nav
// that marks it current.
type navItem struct{ Key, Href, Label string }

var (
	operatorNav = []navItem{{"overview", "/", "Overview"}, {"sites", "/sites", "Sites"}, {"customers", "/customers", "Customers"},
		{"templates", "/templates", "Templates"}, {"plans", "/plans", "Plans"}, {"domains", "/domains", "Domains"},
		{"certificates", "/certificates", "Certificates"}, {"backups", "/backups", "Backups"}, {"billing", "/billing", "Billing"},
		{"audit", "/audit", "Audit log"}, {"keys", "/keys", "API keys"}, {"users", "/users", "Admins"}, {"settings", "/settings", "Settings"}}
	customerNav = []navItem{{"sites", "/", "Your sites"}, {"billing", "/billing", "Billing"}}
)

// Menu is the main navigation of v's user.
func (v *view) Menu() []navItem {
	if v.Operator {
		return operatorNav
	}
	return customerNav
}

// page is the view of req for a page.
func (u *UI) view(r *http.Request, req *request, title, nav string, data any) *view {
	v := &view{Title: title, Nav: nav, Path: r.URL.Path, Data: data, Form: url.Values{}, Errors: map[string]string{}}
	if req != nil {
		v.User, v.Operator, v.CSRF, v.Flash = req.User, req.User.Operator(), req.Session.CSRFToken, req.Flash
	}
	return v
}

// withError puts err into v as a form's error: a field's message next to
// its input, anything else above the form.
func (v *view) withError(err error, form url.Values) *view {
	v.Form = form
	var me *manage.Error
	if errors.As(manage.Wrap(err), &me) {
		if me.Field != "" {
			v.Errors[me.Field] = me.Message
			v.Error = "Please correct the field marked below."
		} else {
			v.Error = me.Message
		}
	}
	return v
}

// render writes page name with v.
func (u *UI) render(w http.ResponseWriter, status int, name string, v *view) {
	t, ok := u.pages[name]
	if !ok {
		u.log.Error("no such ui page", zap.String("page", name))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		u.log.Error("rendering ui page", zap.String("page", name), zap.Error(err))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// statusOf is the HTTP status of an action's error.
func statusOf(err error) int {
	var me *manage.Error
	if !errors.As(manage.Wrap(err), &me) {
		return http.StatusInternalServerError
	}
	switch me.Code {
	case manage.Invalid, manage.BuildFailed:
		return http.StatusUnprocessableEntity
	case manage.NotFound, manage.NoContainer:
		return http.StatusNotFound
	case manage.Conflict:
		return http.StatusConflict
	case manage.Denied:
		return http.StatusForbidden
	case manage.Unavailable, manage.NoRuntime, manage.NoCapacity:
		return http.StatusServiceUnavailable
	case manage.StartFailed, manage.Upstream:
		return http.StatusBadGateway
	case manage.NotConfigured:
		return http.StatusNotImplemented
	case manage.Canceled:
		return 499
	}
	return http.StatusInternalServerError
}

// renderError answers r with err's page: what went wrong, in the
// service's words (never internals), with the status the API would give.
func (u *UI) renderError(w http.ResponseWriter, r *http.Request, req *request, err error) {
	status := statusOf(err)
	msg := "Something went wrong on our side; it has been logged."
	var me *manage.Error
	if errors.As(manage.Wrap(err), &me) && me.Code != manage.Internal {
		msg = me.Message
		if me.Field != "" {
			msg = me.Field + ": " + msg
		}
	}
	if status >= 500 {
		u.log.Error("ui request failed", zap.String("path", r.URL.Path), zap.Error(err))
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	title := http.StatusText(status)
	if status == 499 {
		title = "Canceled"
	}
	u.render(w, status, "error", u.view(r, req, title, "", map[string]any{"Status": status, "Message": msg}))
}

// handler serves one page for a signed-in user.
type handler func(w http.ResponseWriter, r *http.Request, req *request) error

// wrap checks CSRF on unsafe requests and renders what a handler returns
// as an error.
func (u *UI) wrap(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := current(r)
		if err := checkCSRF(r, req.Session); err != nil {
			u.renderError(w, r, req, err)
			return
		}
		if err := h(w, r, req); err != nil {
			u.renderError(w, r, req, err)
		}
	})
}

// wrapPublic renders what a public handler returns as an error.
func (u *UI) wrapPublic(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r, nil); err != nil {
			u.renderError(w, r, nil, err)
		}
	})
}

// redirect sends the browser to target after a form post (303, so a
// reload does not post again), leaving msg for the next page.
func (u *UI) redirect(w http.ResponseWriter, r *http.Request, req *request, target, msg string) error {
	if msg != "" {
		u.flash(r.Context(), req, msg)
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
	return nil
}

// notFound is the error of a page that does not exist.
var notFound = &manage.Error{Code: manage.NotFound, Message: "there is no such page"}

// queryValue escapes s for a URL's query. It is typed as a URL so that
// html/template leaves its escapes alone: a plain string in a query would
// be escaped twice ("a:b" linked as a%253Ab, which finds nothing).
func queryValue(s string) template.URL { return template.URL(url.QueryEscape(s)) }

var funcs = template.FuncMap{
	"ago":      ago,
	"when":     when,
	"bytes":    humanBytes,
	"cpus":     func(nano int64) string { return fmt.Sprintf("%.2g", float64(nano)/1e9) },
	"pathq":    url.PathEscape,
	"query":    queryValue,
	"lower":    strings.ToLower,
	"join":     strings.Join,
	"stateOf":  stateOf,
	"sortKeys": sortedKeys,
	"deref":    deref,
	"dict": func(kv ...any) map[string]any {
		m := make(map[string]any, len(kv)/2)
		for i := 0; i+1 < len(kv); i += 2 {
			m[fmt.Sprint(kv[i])] = kv[i+1]
		}
		return m
	},
	"svg": func(s string) template.HTML { return template.HTML(s) }, // only for charts.go's output
}

// stateInfo is how a container state is shown: a word and a symbol, never
// colour alone.
type stateInfo struct {
	Word, Symbol, Class string
}

func stateOf(state string) stateInfo {
	switch state {
	case "running":
		return stateInfo{"running", "●", "ok"}
	case "starting", "created":
		return stateInfo{"starting", "◐", "busy"}
	case "failed":
		return stateInfo{"failed", "✕", "bad"}
	case "unhealthy":
		return stateInfo{"unhealthy", "▲", "bad"}
	case "healthy":
		return stateInfo{"healthy", "●", "ok"}
	case "up":
		return stateInfo{"up", "●", "ok"}
	case "asleep":
		return stateInfo{"asleep", "○", "idle"}
	case "stopped":
		return stateInfo{"stopped (asleep)", "○", "idle"}
	case "paused":
		return stateInfo{"asleep (warm)", "◌", "idle"}
	case "", "absent", "removed":
		return stateInfo{"never started", "–", "idle"}
	}
	return stateInfo{state, "?", "idle"}
}

func ago(t any) string {
	var at time.Time
	switch v := t.(type) {
	case time.Time:
		at = v
	case *time.Time:
		if v == nil {
			return "never"
		}
		at = *v
	default:
		return ""
	}
	if at.IsZero() {
		return "never"
	}
	d := time.Since(at)
	future := d < 0
	if future {
		d = -d
	}
	var s string
	switch {
	case d < time.Minute:
		s = fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		s = fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		s = fmt.Sprintf("%dh", int(d.Hours()))
	default:
		s = fmt.Sprintf("%dd", int(d.Hours()/24))
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

func when(t any) string {
	switch v := t.(type) {
	case time.Time:
		return v.UTC().Format("2006-01-02 15:04:05 UTC")
	case *time.Time:
		if v == nil {
			return ""
		}
		return v.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	return ""
}

func humanBytes(n any) string {
	var b float64
	switch v := n.(type) {
	case int64:
		b = float64(v)
	case int:
		b = float64(v)
	case float64:
		b = v
	case *int64:
		if v == nil {
			return "–"
		}
		b = float64(*v)
	default:
		return ""
	}
	if b == 0 {
		return "–"
	}
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for b >= 1024 && i < len(units)-1 {
		b /= 1024
		i++
	}
	if b == float64(int64(b)) {
		return fmt.Sprintf("%d %s", int64(b), units[i])
	}
	return fmt.Sprintf("%.1f %s", b, units[i])
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
