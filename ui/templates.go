package ui

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/dustin/go-humanize"

	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// The templates pages: list, detail with its history, the create and
// edit forms (CreateTemplate, UpdateTemplate), and the catalog's import
// and export (ImportTemplates and ExportTemplates, as the CLI's
// `templates import` and `templates export`).

func (u *UI) routesTemplates() {
	u.op("GET /templates", u.templatesList)
	u.op("GET /templates/new", u.templateNew)
	u.op("POST /templates/new", u.templateCreate)
	u.op("GET /templates/import", u.templatesImportPage)
	u.op("POST /templates/import", u.templatesImport)
	u.op("GET /templates/export", u.templatesExport)
	u.op("GET /templates/{ref}", u.templateDetail)
	u.op("GET /templates/{ref}/edit", u.templateEdit)
	u.op("POST /templates/{ref}/edit", u.templateUpdate)
	u.op("POST /templates/{ref}/delete", u.templateDelete)
}

func (u *UI) templatesList(w http.ResponseWriter, r *http.Request, req *request) error {
	list, err := u.svc.AllTemplates(r.Context())
	if err != nil {
		return err
	}
	u.render(w, http.StatusOK, "templates", u.view(r, req, "Templates", "templates", list))
	return nil
}

type templateData struct {
	Template *tenants.Template
	Env      []envRow
	Sites    []manage.Site
	// History is the template's audit log: the store keeps only the
	// current version, each change is an entry.
	History []tenants.AuditEntry
}

func (u *UI) templateDetail(w http.ResponseWriter, r *http.Request, req *request) error {
	ctx := r.Context()
	t, err := u.svc.GetTemplate(ctx, r.PathValue("ref"))
	if err != nil {
		return err
	}
	d := templateData{Template: t, Env: maskEnv(t.Env)}
	if d.Sites, err = u.svc.AllSites(ctx, manage.SiteFilter{Template: t.ID}); err != nil {
		return err
	}
	if d.History, err = u.svc.ListAudit(ctx, tenants.AuditFilter{Entity: "template", EntityID: t.ID, Limit: 100}); err != nil {
		return err
	}
	u.render(w, http.StatusOK, "template", u.view(r, req, "Template "+t.Slug, "templates", d))
	return nil
}

// templateFormData is the create or edit form's.
type templateFormData struct {
	// Template is the one edited; nil for a new one.
	Template *tenants.Template
}

// templateForm is t as the form's values (a secret env value masked).
func templateForm(t *tenants.Template) url.Values {
	f := url.Values{}
	f.Set("slug", t.Slug)
	f.Set("name", t.Name)
	f.Set("description", t.Description)
	f.Set("image", t.Image)
	if t.Port != 0 {
		f.Set("port", strconv.Itoa(t.Port))
	}
	f.Set("health_path", t.HealthPath)
	f.Set("data_path", t.DataPath)
	f.Set("env", formatEnv(t.Env, true))
	if t.MemoryBytes != 0 {
		f.Set("memory_bytes", humanize.IBytes(uint64(t.MemoryBytes)))
	}
	if t.NanoCPUs != 0 {
		f.Set("nano_cpus", strconv.FormatFloat(float64(t.NanoCPUs)/1e9, 'f', -1, 64))
	}
	if t.PidsLimit != 0 {
		f.Set("pids_limit", strconv.FormatInt(t.PidsLimit, 10))
	}
	f.Set("cap_add", strings.Join(t.CapAdd, ", "))
	f.Set("user", t.User)
	if t.ReadOnly {
		f.Set("read_only", "1")
	}
	switch {
	case t.Egress == nil:
		f.Set("egress", "")
	case *t.Egress:
		f.Set("egress", "allow")
	default:
		f.Set("egress", "deny")
	}
	if t.ShareVolume {
		f.Set("share_volume", "1")
	}
	if t.ServeStale {
		f.Set("serve_stale", "1")
	}
	f.Set("max_replicas", strconv.Itoa(t.MaxReplicas))
	f.Set("target_concurrency", strconv.Itoa(t.TargetConcurrency))
	return f
}

// readTemplate reads the form into a template; old, when editing, gives
// the values of masked secrets.
func readTemplate(f url.Values, old *tenants.Template) (*tenants.Template, error) {
	bad := func(field, msg string) error { return &manage.Error{Code: manage.Invalid, Field: field, Message: msg} }
	t := &tenants.Template{Slug: strings.TrimSpace(f.Get("slug")), Name: strings.TrimSpace(f.Get("name")),
		Description: strings.TrimSpace(f.Get("description")), Image: strings.TrimSpace(f.Get("image")),
		HealthPath: strings.TrimSpace(f.Get("health_path")), DataPath: strings.TrimSpace(f.Get("data_path")),
		User: strings.TrimSpace(f.Get("user")), ReadOnly: f.Get("read_only") != "", ShareVolume: f.Get("share_volume") != "",
		ServeStale: f.Get("serve_stale") != ""}
	if s := strings.TrimSpace(f.Get("port")); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return nil, bad("port", "must be a port number")
		}
		t.Port = n
	}
	if s := strings.TrimSpace(f.Get("memory_bytes")); s != "" {
		n, err := humanize.ParseBytes(s)
		if err != nil || n > 1<<62 {
			return nil, bad("memory_bytes", "must be a size such as 512MiB or 1GiB")
		}
		t.MemoryBytes = int64(n)
	}
	if s := strings.TrimSpace(f.Get("nano_cpus")); s != "" {
		c, err := strconv.ParseFloat(s, 64)
		if err != nil || c < 0 || c > 1e6 {
			return nil, bad("nano_cpus", "must be a number of CPUs such as 0.5 or 2")
		}
		t.NanoCPUs = int64(c * 1e9)
	}
	// Empty scaling fields take the defaults (a new template) or keep the
	// template's; a number out of range is named here, as 0 would
	// otherwise be taken for the default.
	if old != nil {
		t.MaxReplicas, t.TargetConcurrency = old.MaxReplicas, old.TargetConcurrency
	}
	if s := strings.TrimSpace(f.Get("max_replicas")); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > tenants.MaxReplicas {
			return nil, bad("max_replicas", "must be a whole number from 1 to 64")
		}
		t.MaxReplicas = n
	}
	if s := strings.TrimSpace(f.Get("target_concurrency")); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > tenants.MaxTargetConcurrency {
			return nil, bad("target_concurrency", "must be a whole number from 1 to 10000")
		}
		t.TargetConcurrency = n
	}
	if s := strings.TrimSpace(f.Get("pids_limit")); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, bad("pids_limit", "must be a whole number")
		}
		t.PidsLimit = n
	}
	for _, c := range strings.Split(f.Get("cap_add"), ",") {
		if c = strings.TrimSpace(c); c != "" {
			t.CapAdd = append(t.CapAdd, c)
		}
	}
	switch f.Get("egress") {
	case "":
	case "allow":
		t.Egress = new(bool)
		*t.Egress = true
	case "deny":
		t.Egress = new(bool)
	default:
		return nil, bad("egress", "must be the platform default, allow or deny")
	}
	env, err := parseEnv("env", f.Get("env"))
	if err != nil {
		return nil, err
	}
	var prev map[string]string
	if old != nil {
		prev = old.Env
	}
	if err := unmask("env", env, prev); err != nil {
		return nil, err
	}
	if len(env) > 0 {
		t.Env = env
	}
	return t, nil
}

func (u *UI) templateNew(w http.ResponseWriter, r *http.Request, req *request) error {
	v := u.view(r, req, "New template", "templates", templateFormData{})
	v.Form = url.Values{"port": {"8080"}, "max_replicas": {strconv.Itoa(tenants.DefaultMaxReplicas)},
		"target_concurrency": {strconv.Itoa(tenants.DefaultTargetConcurrency)}}
	u.render(w, http.StatusOK, "template_form", v)
	return nil
}

// formAgain shows the template form again with err, secrets masked.
func (u *UI) formAgain(w http.ResponseWriter, r *http.Request, req *request, title string, d templateFormData, err error) error {
	form := url.Values{}
	for k, vs := range r.PostForm {
		form[k] = vs
	}
	form.Set("env", maskLines(r.PostFormValue("env")))
	v := u.view(r, req, title, "templates", d).withError(err, form)
	envField(v)
	u.render(w, statusOf(err), "template_form", v)
	return nil
}

func (u *UI) templateCreate(w http.ResponseWriter, r *http.Request, req *request) error {
	if err := r.ParseForm(); err != nil {
		return err
	}
	t, err := readTemplate(r.PostForm, nil)
	if err == nil {
		in := manage.TemplateInput{Slug: t.Slug, Name: t.Name, Description: t.Description, Image: t.Image, Port: t.Port,
			Env: t.Env, DataPath: t.DataPath, HealthPath: t.HealthPath, MemoryBytes: t.MemoryBytes, NanoCPUs: t.NanoCPUs,
			PidsLimit: t.PidsLimit, CapAdd: t.CapAdd, User: t.User, ReadOnly: t.ReadOnly, Egress: t.Egress, ShareVolume: t.ShareVolume,
			ServeStale: t.ServeStale, MaxReplicas: t.MaxReplicas, TargetConcurrency: t.TargetConcurrency}
		var res *manage.TemplateResult
		if res, err = u.svc.CreateTemplate(r.Context(), actor(req), in); err == nil {
			return u.redirect(w, r, req, "/templates/"+url.PathEscape(res.Slug), withWarnings("Template "+res.Slug+" created.", res.Warnings))
		}
	}
	return u.formAgain(w, r, req, "New template", templateFormData{}, err)
}

func (u *UI) templateEdit(w http.ResponseWriter, r *http.Request, req *request) error {
	t, err := u.svc.GetTemplate(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	v := u.view(r, req, "Edit template "+t.Slug, "templates", templateFormData{Template: t})
	v.Form = templateForm(t)
	u.render(w, http.StatusOK, "template_form", v)
	return nil
}

func (u *UI) templateUpdate(w http.ResponseWriter, r *http.Request, req *request) error {
	ctx := r.Context()
	old, err := u.svc.GetTemplate(ctx, r.PathValue("ref"))
	if err != nil {
		return err
	}
	if err := r.ParseForm(); err != nil {
		return err
	}
	t, err := readTemplate(r.PostForm, old)
	if err == nil {
		env := t.Env
		if env == nil {
			env = map[string]string{}
		}
		capAdd := t.CapAdd
		if capAdd == nil {
			capAdd = []string{}
		}
		// The form shows every field: the patch sets them all.
		p := manage.TemplatePatch{Slug: &t.Slug, Name: &t.Name, Description: &t.Description, Image: &t.Image,
			Port: &t.Port, Env: &env, DataPath: &t.DataPath, HealthPath: &t.HealthPath, MemoryBytes: &t.MemoryBytes,
			NanoCPUs: &t.NanoCPUs, PidsLimit: &t.PidsLimit, CapAdd: &capAdd, User: &t.User, ReadOnly: &t.ReadOnly,
			Egress: manage.Nullable[bool]{Set: true, Value: t.Egress}, ShareVolume: &t.ShareVolume,
			ServeStale: &t.ServeStale, MaxReplicas: &t.MaxReplicas, TargetConcurrency: &t.TargetConcurrency}
		var res *manage.TemplateResult
		if res, err = u.svc.UpdateTemplate(ctx, actor(req), old.ID, p); err == nil {
			msg := fmt.Sprintf("Template %s saved (version %d).", res.Slug, res.Version)
			if n := len(res.Releases); n > 0 {
				msg += fmt.Sprintf(" %d sites on it got a release.", n)
			}
			return u.redirect(w, r, req, "/templates/"+url.PathEscape(res.Slug), withWarnings(msg, res.Warnings))
		}
	}
	return u.formAgain(w, r, req, "Edit template "+old.Slug, templateFormData{Template: old}, err)
}

func (u *UI) templateDelete(w http.ResponseWriter, r *http.Request, req *request) error {
	ref := r.PathValue("ref")
	if err := u.svc.DeleteTemplate(r.Context(), actor(req), ref); err != nil {
		return err
	}
	return u.redirect(w, r, req, "/templates", "Template "+ref+" deleted.")
}

func withWarnings(msg string, warnings []string) string {
	if len(warnings) > 0 {
		msg += " Warning: " + strings.Join(warnings, "; ")
	}
	return msg
}

// The catalog's import and export.

// maxTemplateFile bounds an imported template file.
const maxTemplateFile = 4 << 20

type importData struct {
	Result *manage.ImportResult
}

func (u *UI) templatesImportPage(w http.ResponseWriter, r *http.Request, req *request) error {
	u.render(w, http.StatusOK, "templates_import", u.view(r, req, "Import templates", "templates", importData{}))
	return nil
}

// templatesImport imports an uploaded file, pasted JSON, or, asked for,
// the built-in catalog.
func (u *UI) templatesImport(w http.ResponseWriter, r *http.Request, req *request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxTemplateFile+1<<20)
	var data []byte
	field := "json"
	form := url.Values{}
	if isMultipart(r) {
		if err := r.ParseMultipartForm(maxTemplateFile); err != nil {
			return &manage.Error{Code: manage.Invalid, Field: "file", Message: "the upload is too large or malformed"}
		}
		form = r.MultipartForm.Value
		if f, _, err := r.FormFile("file"); err == nil {
			defer f.Close()
			if data, err = io.ReadAll(io.LimitReader(f, maxTemplateFile)); err != nil {
				return err
			}
			field = "file"
		}
	} else if err := r.ParseForm(); err == nil {
		form = r.PostForm
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		data, field = []byte(form.Get("json")), "json"
	}
	var list []tenants.Template
	var err error
	source := "the built-in catalog"
	if form.Get("catalog") == "" {
		source = "the file"
		if len(strings.TrimSpace(string(data))) == 0 {
			err = &manage.Error{Code: manage.Invalid, Field: "json", Message: "choose a file, paste JSON, or import the built-in catalog"}
		} else if list, err = manage.ParseTemplates(data); err != nil {
			if me, ok := err.(*manage.Error); ok {
				me.Field = field
			}
		}
	}
	var res *manage.ImportResult
	if err == nil {
		res, err = u.svc.ImportTemplates(r.Context(), actor(req), list)
	}
	if err != nil {
		v := u.view(r, req, "Import templates", "templates", importData{}).withError(err, form)
		u.render(w, statusOf(err), "templates_import", v)
		return nil
	}
	msg := fmt.Sprintf("Imported %s: %d created, %d updated, %d unchanged.", source, len(res.Created), len(res.Updated), len(res.Unchanged))
	return u.redirect(w, r, req, "/templates", withWarnings(msg, res.Warnings))
}

// templatesExport downloads every template in the import format.
func (u *UI) templatesExport(w http.ResponseWriter, r *http.Request, req *request) error {
	file, err := u.svc.ExportTemplates(r.Context())
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(file, "", "  ")
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Disposition", `attachment; filename="templates.json"`)
	h.Set("Cache-Control", "no-store")
	_, err = w.Write(append(data, '\n'))
	return err
}
