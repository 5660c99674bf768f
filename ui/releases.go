package ui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// The releases pages: a site's releases with their changes and logs, a
// rollback to an earlier one, and a deploy from source whose build log
// the browser follows (see builds.go). Customers' users may look at
// their own sites' releases; only operators change them.

func (u *UI) routesReleases() {
	u.builds = newBuilds(maxBuilds, maxBuildLog)
	u.both("GET /sites/{ref}/releases", u.releases)
	u.both("GET /sites/{ref}/releases/{n}", u.release)
	u.op("POST /sites/{ref}/releases/{n}/rollback", u.rollback)
	u.op("POST /sites/{ref}/deploy", u.deploy)
	u.op("GET /sites/{ref}/builds/{id}", u.buildPage)
	u.op("GET /sites/{ref}/builds/{id}/stream", u.buildStream)
}

// releasesData is a site's releases page.
type releasesData struct {
	Site     *manage.Site
	Releases []manage.Release
	// Older is the "before" of the next page, 0 when this is the last.
	Older int
	// CanChange is set for operators: rollback and deploy.
	CanChange bool
	MaxUpload int64
}

// siteOf returns the site ref names as req may see it: any for an
// operator, only the customer's own for a customer's user.
func (u *UI) siteOf(ctx context.Context, req *request, ref string) (*manage.Site, error) {
	if req.Scope != nil {
		return req.Scope.Site(ctx, ref)
	}
	return u.svc.GetSite(ctx, ref)
}

func (u *UI) releases(w http.ResponseWriter, r *http.Request, req *request) error {
	v, err := u.releasesView(r, req)
	if err != nil {
		return err
	}
	u.render(w, http.StatusOK, "releases", v)
	return nil
}

// releasesView is the releases page of the site in r's path.
func (u *UI) releasesView(r *http.Request, req *request) (*view, error) {
	ctx := r.Context()
	site, err := u.siteOf(ctx, req, r.PathValue("ref"))
	if err != nil {
		return nil, err
	}
	before := 0
	if b := r.URL.Query().Get("before"); b != "" {
		if before, err = strconv.Atoi(b); err != nil || before < 1 {
			return nil, &manage.Error{Code: manage.Invalid, Field: "before", Message: "must be a release number"}
		}
	}
	d := &releasesData{Site: site, CanChange: req.Scope == nil, MaxUpload: u.cfg.MaxUpload}
	if req.Scope != nil {
		d.Releases, err = req.Scope.Releases(ctx, site.ID, before, 0)
	} else {
		d.Releases, err = u.svc.ListReleases(ctx, site.ID, before, 0)
	}
	if err != nil {
		return nil, err
	}
	if n := len(d.Releases); n == manage.DefaultReleaseLimit {
		d.Older = d.Releases[n-1].Number
	}
	return u.view(r, req, "Releases of "+site.Subdomain, "sites", d), nil
}

// releaseData is one release's page.
type releaseData struct {
	Site      *manage.Site
	Release   *manage.Release
	CanChange bool
}

func (u *UI) release(w http.ResponseWriter, r *http.Request, req *request) error {
	ctx := r.Context()
	n, err := releaseNumber(r)
	if err != nil {
		return err
	}
	site, err := u.siteOf(ctx, req, r.PathValue("ref"))
	if err != nil {
		return err
	}
	var rel *manage.Release
	if req.Scope != nil {
		rel, err = req.Scope.Release(ctx, site.ID, n)
	} else {
		rel, err = u.svc.GetRelease(ctx, site.ID, n)
	}
	if err != nil {
		return err
	}
	d := releaseData{Site: site, Release: rel, CanChange: req.Scope == nil}
	u.render(w, http.StatusOK, "release", u.view(r, req, fmt.Sprintf("Release %d of %s", n, site.Subdomain), "sites", d))
	return nil
}

// releaseNumber is the release number in r's path.
func releaseNumber(r *http.Request) (int, error) {
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 1 {
		return 0, &manage.Error{Code: manage.NotFound, Message: "there is no such release"}
	}
	return n, nil
}

// rollback makes a new release with an earlier one's spec, then shows
// the releases with how it went.
func (u *UI) rollback(w http.ResponseWriter, r *http.Request, req *request) error {
	ctx := r.Context()
	n, err := releaseNumber(r)
	if err != nil {
		return err
	}
	site, err := u.svc.GetSite(ctx, r.PathValue("ref"))
	if err != nil {
		return err
	}
	rel, err := u.svc.Rollback(ctx, req.User.Email, site.ID, n)
	target := "/sites/" + pathEsc(site.Subdomain) + "/releases"
	if err != nil {
		if rel == nil {
			return u.releasesError(w, r, req, err)
		}
		msg, _ := deployOutcome(rel, err)
		return u.redirect(w, r, req, target, "Rollback to release "+strconv.Itoa(n)+": "+msg+".")
	}
	msg, _ := deployOutcome(rel, nil)
	return u.redirect(w, r, req, target, "Rolled back to release "+strconv.Itoa(n)+": "+msg+".")
}

// releasesError shows the releases page again with err above it.
func (u *UI) releasesError(w http.ResponseWriter, r *http.Request, req *request, err error) error {
	v, verr := u.releasesView(r, req)
	if verr != nil {
		return err
	}
	v.withError(err, r.PostForm)
	if v.Errors["context"] == "" {
		// Only the upload has a field to show an error beside.
		v.Error = errorText(err)
	}
	u.render(w, statusOf(err), "releases", v)
	return nil
}

// deploy starts a deploy of the uploaded build context and sends the
// browser to the page that follows its log.
func (u *UI) deploy(w http.ResponseWriter, r *http.Request, req *request) error {
	ctx := r.Context()
	site, err := u.svc.GetSite(ctx, r.PathValue("ref"))
	if err != nil {
		return err
	}
	r.Body = http.MaxBytesReader(w, r.Body, u.cfg.MaxUpload)
	mr, err := r.MultipartReader()
	if err != nil {
		return u.releasesError(w, r, req, &manage.Error{Code: manage.Invalid, Field: "context", Message: "send the build context as a file upload"})
	}
	part, err := contextPart(mr)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			err = &manage.Error{Code: manage.Invalid, Field: "context", Message: fmt.Sprintf("the build context is larger than %s", humanBytes(tooLarge.Limit))}
		}
		return u.releasesError(w, r, req, err)
	}
	// The build runs after this request ends, so the upload is spooled
	// first (within MaxUpload): Deploy reads it whole before building
	// anyway.
	spool, err := spoolUpload(part)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			err = &manage.Error{Code: manage.Invalid, Field: "context", Message: fmt.Sprintf("the build context is larger than %s", humanBytes(tooLarge.Limit))}
		}
		return u.releasesError(w, r, req, err)
	}
	actor := req.User.Email
	b, err := u.builds.start(site.ID, site.Subdomain, func(ctx context.Context, log io.Writer) (*manage.Release, error) {
		defer spool.Close()
		return u.svc.Deploy(ctx, actor, site.ID, manage.DeployInput{Context: spool, Log: log})
	})
	if err != nil {
		spool.Close()
		return err
	}
	return u.redirect(w, r, req, "/sites/"+pathEsc(site.Subdomain)+"/builds/"+b.ID, "The deploy has started.")
}

// contextPart returns the form's "context" file.
func contextPart(mr *multipart.Reader) (*multipart.Part, error) {
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return nil, &manage.Error{Code: manage.Invalid, Field: "context", Message: "choose a build context (a .tar.gz with a Dockerfile at its root)"}
		}
		if err != nil {
			return nil, err
		}
		if p.FormName() == "context" && p.FileName() != "" {
			return p, nil
		}
		p.Close()
	}
}

// buildData is a build's page.
type buildData struct {
	Site   string
	Build  *build
	State  buildState
	Stream string
}

func (u *UI) buildPage(w http.ResponseWriter, r *http.Request, req *request) error {
	b, err := u.buildOf(r)
	if err != nil {
		return err
	}
	ref := pathEsc(b.Site)
	st := b.since(0)
	// The stream goes on from the lines the page shows already.
	d := buildData{Site: b.Site, Build: b, State: st, Stream: "/sites/" + ref + "/builds/" + b.ID + "/stream?from=" + strconv.Itoa(st.Next)}
	u.render(w, http.StatusOK, "build", u.view(r, req, "Deploy of "+b.Site, "sites", d))
	return nil
}

// buildOf is the build in r's path, of the site in it.
func (u *UI) buildOf(r *http.Request) (*build, error) {
	b := u.builds.get(r.PathValue("id"))
	if b == nil {
		return nil, &manage.Error{Code: manage.NotFound, Message: "there is no such build here: only the last " +
			strconv.Itoa(maxBuilds) + " deploys started from this server's web UI are kept, and one started on another node of the platform can only be followed there. Its release, with its log, is on the site's releases page."}
	}
	site, err := u.svc.GetSite(r.Context(), r.PathValue("ref"))
	if err != nil {
		return nil, err
	}
	if site.ID != b.SiteID {
		return nil, &manage.Error{Code: manage.NotFound, Message: "there is no such build of this site"}
	}
	return b, nil
}

// buildStream sends a build's log as server-sent events: "line" per
// line, from the start, then as it comes, and at the end a line with the
// outcome and an "end" event. With ?from=n it starts at line n (what a
// page showed already).
func (u *UI) buildStream(w http.ResponseWriter, r *http.Request, req *request) error {
	b, err := u.buildOf(r)
	if err != nil {
		return err
	}
	from := r.URL.Query().Get("from")
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		from = id // a reconnect: on from the last line it got
	}
	next, _ := strconv.Atoi(from)
	if next < 0 {
		next = 0
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	for {
		st := b.since(next)
		if st.Skipped > 0 {
			sendEvent(w, "line", fmt.Sprintf("[%d earlier lines left out]", st.Skipped))
		}
		first := st.Next - len(st.Lines)
		for i, l := range st.Lines {
			fmt.Fprintf(w, "id: %d\n", first+i+1)
			sendEvent(w, "line", l)
		}
		next = st.Next
		if st.Done {
			sendEvent(w, "line", "== "+st.Outcome)
			sendEvent(w, "end", st.Outcome)
			_ = rc.Flush()
			return nil
		}
		if err := rc.Flush(); err != nil {
			return nil
		}
		select {
		case <-st.Changed:
		case <-r.Context().Done():
			return nil
		}
	}
}

// sendEvent writes one server-sent event whose data is one line.
func sendEvent(w io.Writer, name, data string) {
	data = strings.NewReplacer("\r", "", "\n", " ").Replace(data)
	fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, data)
}

// releaseWord says a release's status in words.
func releaseWord(status string) string {
	switch status {
	case tenants.ReleaseBuilding:
		return "building"
	case tenants.ReleasePending:
		return "rolling out"
	case tenants.ReleaseLive:
		return "live"
	case tenants.ReleaseFailed:
		return "failed"
	case tenants.ReleaseSuperseded:
		return "superseded"
	case tenants.ReleaseRolledBack:
		return "rolled back"
	}
	return status
}

// canRollBack reports whether a release is one to go back to: it served
// and is not live.
func canRollBack(status string) bool {
	return status == tenants.ReleaseSuperseded || status == tenants.ReleaseRolledBack
}

func init() {
	funcs["releaseWord"] = releaseWord
	funcs["canRollBack"] = canRollBack
}

// pathEsc escapes a path segment.
func pathEsc(s string) string { return url.PathEscape(s) }

// spooled is an upload in a temporary file, removed when closed.
type spooled struct{ *os.File }

func (s spooled) Close() error {
	err := s.File.Close()
	_ = os.Remove(s.File.Name())
	return err
}

// spoolUpload copies r to a temporary file and returns it at its start.
func spoolUpload(r io.Reader) (io.ReadCloser, error) {
	f, err := os.CreateTemp("", "ui-deploy-*.tar.gz")
	if err != nil {
		return nil, fmt.Errorf("spooling the upload: %w", err)
	}
	s := spooled{f}
	if _, err := io.Copy(f, r); err != nil {
		s.Close()
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		s.Close()
		return nil, fmt.Errorf("spooling the upload: %w", err)
	}
	return s, nil
}
