package ui

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// The sites pages: the list and the new-site wizard (operators), a site's
// page with its live status, actions, env, limits and charts, and its
// logs. The site's page, status, actions and logs are shared with the
// site's customer's users through siteScope.

func (u *UI) routesSites() {
	u.op("GET /sites", u.sitesList)
	u.op("GET /sites/new", u.siteNew)
	u.op("POST /sites/new", u.siteCreate)
	u.both("GET /sites/{ref}", u.siteDetail)
	u.both("GET /sites/{ref}/status", u.siteStatus)
	u.both("POST /sites/{ref}/actions/{action}", u.siteAction)
	u.both("GET /sites/{ref}/logs", u.siteLogs)
	u.both("GET /sites/{ref}/logs/stream", u.siteLogStream)
	u.op("POST /sites/{ref}/env", u.siteEnv)
	u.op("POST /sites/{ref}/warm", u.siteWarm)
	u.op("POST /sites/{ref}/delete", u.siteDelete)
}

// siteStates are the states the list filters by.
var siteStates = []string{"running", "starting", "stopped", "failed", "absent"}

// filterState is the list filter a container state falls under.
func filterState(state string) string {
	switch state {
	case "created", "starting":
		return "starting"
	case "paused", "stopped":
		return "stopped"
	case "", "absent", "removed":
		return "absent"
	case "unhealthy":
		return "failed"
	}
	return state
}

type sitesData struct {
	Sites      []manage.Site
	Customers  []manage.Customer
	States     []string
	State      string
	Customer   string
	BaseDomain string
}

func (u *UI) sitesList(w http.ResponseWriter, r *http.Request, req *request) error {
	ctx := r.Context()
	q := r.URL.Query()
	d := sitesData{States: siteStates, State: q.Get("state"), Customer: q.Get("customer"), BaseDomain: u.baseDomain()}
	if d.State != "" && !slices.Contains(siteStates, d.State) {
		return &manage.Error{Code: manage.Invalid, Field: "state", Message: "must be one of " + strings.Join(siteStates, ", ")}
	}
	sites, err := u.svc.AllSites(ctx, manage.SiteFilter{Customer: d.Customer})
	if err != nil {
		return err
	}
	for _, s := range sites {
		if d.State == "" || filterState(s.State) == d.State {
			d.Sites = append(d.Sites, s)
		}
	}
	if d.Customers, err = u.svc.AllCustomers(ctx, ""); err != nil {
		return err
	}
	u.render(w, http.StatusOK, "sites", u.view(r, req, "Sites", "sites", d))
	return nil
}

// baseDomain is the platform's domain: sites are <subdomain>.<it>.
func (u *UI) baseDomain() string {
	return u.svc.Store().Options().BaseDomain
}

// siteURL is the address of the site with subdomain sub.
func (u *UI) siteURL(sub string) string {
	if base := u.baseDomain(); base != "" {
		return "http://" + sub + "." + base
	}
	return ""
}

// The new-site wizard: step 1 chooses the customer, step 2 the template
// (both GET forms, so each step is a plain link and works without JS),
// step 3 the subdomain and env, pre-filled with the template's defaults,
// posted to CreateSite.

type newSiteData struct {
	Customers []manage.Customer
	Templates []tenants.Template
	Customer  *manage.Customer
	Template  *tenants.Template
	// Env is the env textarea's initial text: the template's defaults.
	Env        string
	BaseDomain string
}

func (u *UI) newSiteData(ctx context.Context, customer, tmpl string) (*newSiteData, error) {
	d := &newSiteData{BaseDomain: u.baseDomain()}
	var err error
	if d.Customers, err = u.svc.AllCustomers(ctx, ""); err != nil {
		return nil, err
	}
	if d.Templates, err = u.svc.AllTemplates(ctx); err != nil {
		return nil, err
	}
	for i := range d.Customers {
		if c := &d.Customers[i]; customer != "" && (c.ID == customer || c.Email == customer) {
			d.Customer = c
		}
	}
	for i := range d.Templates {
		if t := &d.Templates[i]; tmpl != "" && (t.ID == tmpl || t.Slug == tmpl) {
			d.Template = t
		}
	}
	if d.Template != nil {
		d.Env = formatEnv(d.Template.Env, true)
	}
	return d, nil
}

func (u *UI) siteNew(w http.ResponseWriter, r *http.Request, req *request) error {
	q := r.URL.Query()
	d, err := u.newSiteData(r.Context(), q.Get("customer_id"), q.Get("template_id"))
	if err != nil {
		return err
	}
	u.render(w, http.StatusOK, "site_new", u.view(r, req, "New site", "sites", d))
	return nil
}

func (u *UI) siteCreate(w http.ResponseWriter, r *http.Request, req *request) error {
	ctx := r.Context()
	if err := r.ParseForm(); err != nil {
		return err
	}
	d, err := u.newSiteData(ctx, r.PostFormValue("customer_id"), r.PostFormValue("template_id"))
	if err != nil {
		return err
	}
	in := manage.SiteInput{Customer: r.PostFormValue("customer_id"), Template: r.PostFormValue("template_id"),
		Subdomain: strings.TrimSpace(r.PostFormValue("subdomain"))}
	var defaults map[string]string
	if d.Template != nil {
		defaults = d.Template.Env
	}
	env, err := parseEnv("env", r.PostFormValue("env"))
	if err == nil {
		err = unmask("env", env, defaults)
	}
	if err == nil {
		in.Env = overrides(env, defaults)
		var site *manage.Site
		if site, err = u.svc.CreateSite(ctx, actor(req), in); err == nil {
			msg := "Site " + site.Subdomain + " created."
			if len(site.Warnings) > 0 {
				msg += " " + strings.Join(site.Warnings, "; ")
			}
			return u.redirect(w, r, req, "/sites/"+url.PathEscape(site.Subdomain), msg)
		}
	}
	form := url.Values{}
	for k, vs := range r.PostForm {
		form[k] = vs
	}
	form.Set("env", maskLines(r.PostFormValue("env")))
	v := u.view(r, req, "New site", "sites", d).withError(err, form)
	envField(v)
	u.render(w, statusOf(err), "site_new", v)
	return nil
}

// envField files an error of one env variable ("env.KEY") under the env
// textarea.
func envField(v *view) {
	for k, msg := range v.Errors {
		if strings.HasPrefix(k, "env.") {
			v.Errors["env"] = strings.TrimPrefix(k, "env.") + ": " + msg
		}
	}
}

// The site's page.

type siteData struct {
	Site   *manage.Site
	URL    string
	Status statusData
	// Env are the site's own variables (overrides), TemplateEnv its
	// template's defaults; both with secret values masked.
	Env, TemplateEnv []envRow
	Template         *tenants.Template
	Limits           []limitRow
	Charts           template.HTML
	Uptime           *manage.SiteUptime
	Prewarms         []prewarmRow // the latest few
	Scaling          scalingData
	Releases         []manage.Release // the latest few
	UptimeChart      template.HTML
	Actions          []siteActionButton
	Operator         bool
	// ServeStale is the site's own serve-stale setting as the form's
	// value: on, off, or "" for its template's.
	ServeStale string
	// Stale is what PostgreSQL keeps of the site's stale responses
	// (operators only).
	Stale manage.StaleCopies
}

// siteActionButton is one of the site's action buttons.
type siteActionButton struct {
	Action, Label, Class string
}

// siteActions are the buttons of the site's actions; redeploy is the
// operators'.
func siteActions(operator bool) []siteActionButton {
	out := []siteActionButton{{manage.ActionStart, "Start", "primary"}, {manage.ActionStop, "Stop", "danger"}, {manage.ActionRestart, "Restart", ""}}
	if operator {
		out = append(out, siteActionButton{manage.ActionRedeploy, "Redeploy", ""})
	}
	return out
}

// statusData is the status panel's.
type statusData struct {
	Ref    string
	Status *manage.RuntimeStatus
}

// envRow is one variable as the env editor shows it.
type envRow struct {
	Key, Value string
	Secret     bool
}

// limitRow is one container limit and where it comes from.
type limitRow struct {
	Name, Value, From string
}

func (u *UI) siteDetail(w http.ResponseWriter, r *http.Request, req *request) error {
	return u.renderSite(w, r, req, r.PathValue("ref"), nil)
}

// siteData gathers the page of site as req's user sees it: through the
// customer's scope for a customer's user, with the template, its env and
// the limits for operators.
func (u *UI) siteData(ctx context.Context, req *request, site *manage.Site) (siteData, error) {
	sc := u.sites(req)
	st, err := sc.SiteStatus(ctx, site.ID)
	if err != nil {
		return siteData{}, err
	}
	d := siteData{Site: site, URL: u.siteURL(site.Subdomain), Status: statusData{Ref: site.Subdomain, Status: st},
		Env: maskEnv(site.Env), Operator: req.Scope == nil, Actions: siteActions(req.Scope == nil)}
	if site.ServeStale != nil {
		d.ServeStale = onOff(*site.ServeStale)
	}
	if d.Operator {
		if d.Template, err = u.svc.GetTemplate(ctx, site.TemplateID); err != nil {
			return siteData{}, err
		}
		d.TemplateEnv = maskEnv(d.Template.Env)
		if d.Limits, err = u.siteLimits(ctx, site, d.Template); err != nil {
			return siteData{}, err
		}
		if d.Stale, err = u.svc.StaleCopies(ctx, site.ID); err != nil {
			return siteData{}, err
		}
	}
	fig, err := sc.SiteFigures(ctx, site.ID, 24*time.Hour, 0)
	if err != nil {
		return siteData{}, err
	}
	d.Charts = siteCharts(fig)
	if d.Uptime, err = sc.SiteUptime(ctx, site.ID, 24*time.Hour); err != nil {
		return siteData{}, err
	}
	d.UptimeChart = uptimeChart(d.Uptime)
	prewarms, err := sc.SitePrewarms(ctx, site.ID, prewarmsShown)
	if err != nil {
		return siteData{}, err
	}
	d.Prewarms = prewarmRows(prewarms, time.Now())
	scaling, err := sc.SiteScaling(ctx, site.ID, scaleEventsShown)
	if err != nil {
		return siteData{}, err
	}
	d.Scaling = newScalingData(scaling)
	if d.Releases, err = sc.Releases(ctx, site.ID, 0, 5); err != nil {
		return siteData{}, err
	}
	return d, nil
}

// renderSite renders the page of the site ref names; a non-nil actionErr
// is an action's failure, shown above the page with its status.
func (u *UI) renderSite(w http.ResponseWriter, r *http.Request, req *request, ref string, actionErr error) error {
	ctx := r.Context()
	sc := u.sites(req)
	site, err := sc.Site(ctx, ref)
	if err != nil {
		return err
	}
	d, err := u.siteData(ctx, req, site)
	if err != nil {
		return err
	}
	status := http.StatusOK
	v := u.view(r, req, site.Subdomain, "sites", d)
	if actionErr != nil {
		status = statusOf(actionErr)
		v.Error = "The action failed; it has been logged."
		var me *manage.Error
		if errors.As(manage.Wrap(actionErr), &me) && me.Code != manage.Internal {
			v.Error = me.Message
		}
	}
	u.render(w, status, "site", v)
	return nil
}

// siteLimits are the limits the site's container gets: each the
// template's, else the customer's plan's, else the platform's default.
func (u *UI) siteLimits(ctx context.Context, site *manage.Site, t *tenants.Template) ([]limitRow, error) {
	c, err := u.svc.GetCustomer(ctx, site.CustomerID)
	if err != nil {
		return nil, err
	}
	var plan tenants.Limits
	if c.PlanID != "" {
		p, err := u.svc.GetPlan(ctx, c.PlanID)
		if err != nil {
			return nil, err
		}
		plan = p.Limits()
	}
	from := func(tv, pv int64, show func(int64) string) limitRow {
		switch {
		case tv != 0:
			return limitRow{Value: show(tv), From: "template"}
		case pv != 0:
			return limitRow{Value: show(pv), From: "plan " + c.PlanSlug}
		}
		return limitRow{Value: "platform default", From: "platform"}
	}
	tl := t.Limits()
	mem := from(tl.MemoryBytes, plan.MemoryBytes, func(n int64) string { return humanBytes(n) })
	mem.Name = "Memory"
	cpu := from(tl.NanoCPUs, plan.NanoCPUs, func(n int64) string { return fmt.Sprintf("%.2g CPUs", float64(n)/1e9) })
	cpu.Name = "CPUs"
	pids := from(tl.PidsLimit, plan.PidsLimit, func(n int64) string { return fmt.Sprint(n) })
	pids.Name = "Processes"
	return []limitRow{mem, cpu, pids}, nil
}

// fragment renders the template name of page with data, without the
// layout (a status panel for an event stream).
func (u *UI) fragment(page, name string, data any) (string, error) {
	t, ok := u.pages[page]
	if !ok {
		return "", fmt.Errorf("no ui page %s", page)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, name, data); err != nil {
		return "", fmt.Errorf("rendering %s of ui page %s: %w", name, page, err)
	}
	return buf.String(), nil
}

// wantsStream reports whether r asks for server-sent events.
func wantsStream(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

// siteStatus is the status panel of a site: a fragment of HTML, or, asked
// for an event stream, the panel again each time it changes.
func (u *UI) siteStatus(w http.ResponseWriter, r *http.Request, req *request) error {
	ctx := r.Context()
	sc := u.sites(req)
	site, err := sc.Site(ctx, r.PathValue("ref"))
	if err != nil {
		return err
	}
	panel := func() (string, error) {
		st, err := sc.SiteStatus(ctx, site.ID)
		if err != nil {
			return "", err
		}
		return u.fragment("site", "site-status", statusData{Ref: site.Subdomain, Status: st})
	}
	html, err := panel()
	if err != nil {
		return err
	}
	if !wantsStream(r) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, err := io.WriteString(w, html)
		return err
	}
	ev := startEvents(w)
	if err := ev.send("html", html); err != nil {
		return nil
	}
	// The service has no change notification to wait on: a poll a second
	// is cheap (this node's memory, else one row) and as fast as a
	// visitor notices.
	poll := time.NewTicker(time.Second)
	defer poll.Stop()
	beat := time.NewTicker(15 * time.Second)
	defer beat.Stop()
	last := html
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-beat.C:
			if err := ev.comment("heartbeat"); err != nil {
				return nil
			}
		case <-poll.C:
			html, err := panel()
			if err != nil {
				// The site went (deleted) or the database did: the
				// page's panel stays as it was.
				_ = ev.send("end", "")
				return nil
			}
			if html != last {
				last = html
				if err := ev.send("html", html); err != nil {
					return nil
				}
			}
		}
	}
}

// events writes server-sent events, flushed one by one.
type events struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func startEvents(w http.ResponseWriter) *events {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	// A stream lasts as long as the reader stays: no write deadline.
	_ = rc.SetWriteDeadline(time.Time{})
	_ = rc.Flush()
	return &events{w: w, rc: rc}
}

// send writes one event; every line of data is a data line.
func (e *events) send(event, data string) error {
	var b strings.Builder
	b.WriteString("event: " + event + "\n")
	for _, line := range strings.Split(strings.ReplaceAll(data, "\r", ""), "\n") {
		b.WriteString("data: " + line + "\n")
	}
	b.WriteString("\n")
	if _, err := io.WriteString(e.w, b.String()); err != nil {
		return err
	}
	return e.rc.Flush()
}

// comment writes a comment, which keeps proxies from closing an idle
// stream.
func (e *events) comment(text string) error {
	if _, err := io.WriteString(e.w, ": "+text+"\n\n"); err != nil {
		return err
	}
	return e.rc.Flush()
}

func (u *UI) siteAction(w http.ResponseWriter, r *http.Request, req *request) error {
	ctx := r.Context()
	sc := u.sites(req)
	ref, action := r.PathValue("ref"), r.PathValue("action")
	site, err := sc.Site(ctx, ref)
	if err != nil {
		return err
	}
	if _, err := sc.SiteAction(ctx, actor(req), site.ID, action); err != nil {
		if manage.IsCode(err, manage.NotFound) {
			return err
		}
		return u.renderSite(w, r, req, site.ID, err)
	}
	done := map[string]string{manage.ActionStart: "started", manage.ActionStop: "stopped",
		manage.ActionRestart: "restarted", manage.ActionRedeploy: "redeployed"}[action]
	return u.redirect(w, r, req, "/sites/"+url.PathEscape(site.Subdomain), "Site "+site.Subdomain+" "+done+".")
}

// siteEnv saves the env editor: the site's variables as shown (a secret's
// empty input keeps its value), less those marked for removal, plus the
// new lines.
func (u *UI) siteEnv(w http.ResponseWriter, r *http.Request, req *request) error {
	ctx := r.Context()
	site, err := u.postedSite(r)
	if err != nil {
		return err
	}
	env := map[string]string{}
	for k, old := range site.Env {
		switch val, given := r.PostForm["val."+k]; {
		case r.PostFormValue("del."+k) != "":
		case !given || secretKey(k) && val[0] == "":
			env[k] = old
		default:
			env[k] = val[0]
		}
	}
	added, err := parseEnv("env", r.PostFormValue("env"))
	if err == nil {
		err = unmask("env", added, site.Env)
	}
	if err == nil {
		for k, val := range added {
			env[k] = val
		}
		var out *manage.Site
		if out, err = u.svc.UpdateSite(ctx, actor(req), site.ID, manage.SitePatch{Env: &env}); err == nil {
			msg := "Env of " + out.Subdomain + " saved."
			if len(out.Warnings) > 0 {
				msg += " " + strings.Join(out.Warnings, "; ")
			}
			return u.redirect(w, r, req, "/sites/"+url.PathEscape(out.Subdomain)+"#env", msg)
		}
	}
	// Shown again without any secret typed into the new lines.
	form := url.Values{"env": {maskLines(r.PostFormValue("env"))}}
	v := u.view(r, req, site.Subdomain, "sites", nil).withError(err, form)
	envField(v)
	if err := u.siteInto(ctx, req, v, site); err != nil {
		return err
	}
	u.render(w, statusOf(err), "site", v)
	return nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// postedSite is the site a form posted to names, with the form parsed.
func (u *UI) postedSite(r *http.Request) (*manage.Site, error) {
	site, err := u.svc.GetSite(r.Context(), r.PathValue("ref"))
	if err != nil {
		return nil, err
	}
	return site, r.ParseForm()
}

// siteWarm saves a site's warm-start settings (serve stale: on, off or
// the template's; pre-warm on or off).
func (u *UI) siteWarm(w http.ResponseWriter, r *http.Request, req *request) error {
	ctx := r.Context()
	site, err := u.postedSite(r)
	if err != nil {
		return err
	}
	prewarm := r.PostFormValue("prewarm") != ""
	p := manage.SitePatch{Prewarm: &prewarm, ServeStale: manage.Nullable[bool]{Set: true}}
	switch v := r.PostFormValue("serve_stale"); v {
	case "":
	case "on", "off":
		on := v == "on"
		p.ServeStale.Value = &on
	default:
		err = &manage.Error{Code: manage.Invalid, Field: "serve_stale", Message: "must be on, off or empty (the template's)"}
	}
	if err == nil {
		var out *manage.Site
		if out, err = u.svc.UpdateSite(ctx, actor(req), site.ID, p); err == nil {
			return u.redirect(w, r, req, "/sites/"+url.PathEscape(out.Subdomain)+"#warm", "Warm starts of "+out.Subdomain+" saved.")
		}
	}
	v := u.view(r, req, site.Subdomain, "sites", nil).withError(err, r.PostForm)
	if err := u.siteInto(ctx, req, v, site); err != nil {
		return err
	}
	u.render(w, statusOf(err), "site", v)
	return nil
}

// siteInto fills v's data with the page of site (for a form shown again
// with its error).
func (u *UI) siteInto(ctx context.Context, req *request, v *view, site *manage.Site) error {
	d, err := u.siteData(ctx, req, site)
	if err != nil {
		return err
	}
	v.Data = d
	return nil
}

func (u *UI) siteDelete(w http.ResponseWriter, r *http.Request, req *request) error {
	purge := r.PostFormValue("purge") != ""
	site, err := u.svc.DeleteSite(r.Context(), actor(req), r.PathValue("ref"), purge)
	if err != nil {
		return err
	}
	msg := "Site " + site.Subdomain + " deleted; its volume is kept."
	if purge {
		msg = "Site " + site.Subdomain + " deleted with its volume."
	}
	return u.redirect(w, r, req, "/sites", msg)
}

// The logs page.

// logTail is how many lines the logs page shows.
const logTail = 200

type logsData struct {
	Site  *manage.Site
	Lines string
	// Count is how many lines the page shows, for the stream to skip.
	Count   int
	Problem string
}

func (u *UI) siteLogs(w http.ResponseWriter, r *http.Request, req *request) error {
	ctx := r.Context()
	sc := u.sites(req)
	site, err := sc.Site(ctx, r.PathValue("ref"))
	if err != nil {
		return err
	}
	d := logsData{Site: site}
	rc, err := sc.SiteLogs(ctx, site.ID, logTail, false)
	if err != nil {
		// No runtime, no container: the page still answers, saying why.
		if manage.IsCode(err, manage.NotFound) {
			return err
		}
		var me *manage.Error
		if !errors.As(manage.Wrap(err), &me) || me.Code == manage.Internal {
			return err
		}
		d.Problem = me.Message
	} else {
		defer rc.Close()
		data, err := io.ReadAll(io.LimitReader(rc, 4<<20))
		if err != nil {
			return err
		}
		d.Lines = string(data)
		d.Count = strings.Count(d.Lines, "\n")
		if d.Lines != "" && !strings.HasSuffix(d.Lines, "\n") {
			d.Count++
		}
	}
	u.render(w, http.StatusOK, "site_logs", u.view(r, req, "Logs of "+site.Subdomain, "sites", d))
	return nil
}

// siteLogStream follows the site's output as events "line", one a line,
// then "end" when the output ends. The page already shows the last lines:
// ?skip=N (the page's count) asks for the last N lines again and skips
// them, so the stream goes on where the page stopped.
func (u *UI) siteLogStream(w http.ResponseWriter, r *http.Request, req *request) error {
	ctx := r.Context()
	sc := u.sites(req)
	site, err := sc.Site(ctx, r.PathValue("ref"))
	if err != nil {
		return err
	}
	skip := 0
	if s := r.URL.Query().Get("skip"); s != "" {
		if _, err := fmt.Sscan(s, &skip); err != nil || skip < 0 || skip > logTail {
			return &manage.Error{Code: manage.Invalid, Field: "skip", Message: fmt.Sprintf("must be a number from 0 to %d", logTail)}
		}
	}
	rc, err := sc.SiteLogs(ctx, site.ID, skip, true)
	if err != nil {
		return err
	}
	defer rc.Close()
	ev := startEvents(w)
	// Reading blocks until the container writes; closing the reader when
	// the client goes ends it.
	stop := context.AfterFunc(ctx, func() { rc.Close() })
	defer stop()
	sc2 := bufio.NewScanner(rc)
	sc2.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 0; sc2.Scan(); n++ {
		if n < skip {
			continue
		}
		if err := ev.send("line", sc2.Text()); err != nil {
			return nil
		}
	}
	if ctx.Err() == nil {
		_ = ev.send("end", "")
	}
	return nil
}

// Env as text and secrets.

// maskValue stands for a secret's value in a form: given back, the value
// is kept as it was.
const maskValue = "********"

// secretKey reports whether the variable k looks like it holds a secret,
// whose value is never shown again.
func secretKey(k string) bool {
	k = strings.ToUpper(k)
	for _, w := range []string{"SECRET", "PASSWORD", "TOKEN", "KEY", "PASS"} {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// maskEnv lists env sorted, secret values left out.
func maskEnv(env map[string]string) []envRow {
	rows := make([]envRow, 0, len(env))
	for _, k := range sortedKeys(env) {
		row := envRow{Key: k, Value: env[k], Secret: secretKey(k)}
		if row.Secret {
			row.Value = ""
		}
		rows = append(rows, row)
	}
	return rows
}

// formatEnv writes env as KEY=VALUE lines, sorted; with mask, a secret's
// value is maskValue.
func formatEnv(env map[string]string, mask bool) string {
	var b strings.Builder
	for _, k := range sortedKeys(env) {
		v := env[k]
		if mask && secretKey(k) {
			v = maskValue
		}
		b.WriteString(k + "=" + v + "\n")
	}
	return b.String()
}

// maskLines masks the secret values of KEY=VALUE text, to show it again.
func maskLines(text string) string {
	lines := strings.Split(text, "\n")
	for i, line := range lines {
		if k, _, ok := strings.Cut(line, "="); ok && secretKey(strings.TrimSpace(k)) {
			lines[i] = strings.TrimSpace(k) + "=" + maskValue
		}
	}
	return strings.Join(lines, "\n")
}

// parseEnv reads KEY=VALUE lines (blank lines and # comments skipped); a
// line without "=" is the field's error.
func parseEnv(field, text string) (map[string]string, error) {
	env := map[string]string{}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, &manage.Error{Code: manage.Invalid, Field: field, Message: fmt.Sprintf("line %d: expected KEY=VALUE", i+1)}
		}
		if _, dup := env[k]; dup {
			return nil, &manage.Error{Code: manage.Invalid, Field: field, Message: fmt.Sprintf("line %d: %s appears twice", i+1, k)}
		}
		env[k] = v
	}
	return env, nil
}

// unmask gives each masked value of env its value in prev; a masked value
// prev does not have (a secret typed into a form that came back with an
// error) must be typed again.
func unmask(field string, env, prev map[string]string) error {
	for _, k := range sortedKeys(env) {
		if env[k] != maskValue {
			continue
		}
		old, ok := prev[k]
		if !ok {
			return &manage.Error{Code: manage.Invalid, Field: field, Message: k + ": type the secret's value again"}
		}
		env[k] = old
	}
	return nil
}

// overrides are the variables of env that differ from the defaults.
func overrides(env, defaults map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range env {
		if d, ok := defaults[k]; ok && v == d {
			continue
		}
		out[k] = v
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
