package ui

import (
	"embed"
	"net/http"
)

//go:embed static
var staticFiles embed.FS

// The stylesheet and the script are the UI's only resources, served from
// the binary under /static/ and cached for an hour (their names do not
// change with versions, so not longer).
func (u *UI) routesStatic() {
	files := http.FileServerFS(staticFiles)
	u.public.Handle("GET /static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	}))
	u.public.Handle("GET /favicon.ico", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=86400")
		w.WriteHeader(http.StatusNoContent)
	}))
}
