package multitenant

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
)

//go:embed pages/*.html
var builtinPages embed.FS

// Pages visitors may see instead of a site's content. Each can be replaced
// by a file <name>.html in the handler's pages_dir: a complete html/template
// document executed with a pageData.
const (
	pageNotFound    = "not_found"
	pageSuspended   = "suspended"
	pageStarting    = "starting"
	pageError       = "error"
	pageUnavailable = "unavailable"
)

var pageNames = []string{pageNotFound, pageSuspended, pageStarting, pageError, pageUnavailable}

// readyPath is polled by the starting page: 204 once the site runs. It
// sits under /.well-known/ so it cannot collide with a site's own paths.
const readyPath = "/.well-known/caddy-multitenant/ready"

// pageData is what page templates can use.
type pageData struct {
	Host       string
	Status     int
	StatusText string
	RetryAfter int    // seconds; 0 when not set
	ReadyPath  string // for the starting page's script
}

type pageSet map[string]*template.Template

// loadPages parses the built-in pages and, where dir has one, the
// operator's replacement. A page that does not parse is a config error.
func loadPages(dir string) (pageSet, error) {
	layout, err := template.ParseFS(builtinPages, "pages/layout.html")
	if err != nil {
		return nil, err
	}
	set := make(pageSet, len(pageNames))
	for _, name := range pageNames {
		if dir != "" {
			file := filepath.Join(dir, name+".html")
			src, err := os.ReadFile(file)
			switch {
			case err == nil:
				t, err := template.New(name).Parse(string(src))
				if err != nil {
					return nil, fmt.Errorf("pages_dir: %w", err)
				}
				set[name] = t
				continue
			case !errors.Is(err, fs.ErrNotExist):
				return nil, fmt.Errorf("pages_dir: %w", err)
			}
		}
		base, err := layout.Clone()
		if err != nil {
			return nil, err
		}
		t, err := base.ParseFS(builtinPages, "pages/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("built-in page %s: %w", name, err)
		}
		set[name] = t.Lookup("layout")
	}
	return set, nil
}

// serve writes page with status. Pages are never cached: what they say
// (starting, suspended) changes.
func (ps pageSet) serve(w http.ResponseWriter, r *http.Request, name string, status int, retryAfter int) error {
	var buf bytes.Buffer
	err := ps[name].Execute(&buf, pageData{
		Host:       r.Host,
		Status:     status,
		StatusText: http.StatusText(status),
		RetryAfter: retryAfter,
		ReadyPath:  readyPath,
	})
	if err != nil {
		return fmt.Errorf("rendering %s page: %w", name, err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	if retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(retryAfter))
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, err = w.Write(buf.Bytes())
	}
	return err
}
