package admin

import (
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agistaffers/caddy-multitenant/billing"
	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// operation documents one route. The table is kept apart from register
// on purpose: TestOpenAPIMatchesRoutes checks the two against each other.
type operation struct {
	method, path, summary string
	query                 []string // query parameters
	body                  any      // request body type, nil for none
	status                int      // success status
	resp                  any      // success body type, nil for none
	text                  bool     // the success body is text/plain
	binary                bool     // the success body is a file (application/gzip)
	upload                bool     // the request body is a build context, the answer an event stream
	public                bool     // outside Prefix, no API key (the Stripe webhook)
}

type (
	customerList struct{ list[Customer] }
	planList     struct{ list[tenants.Plan] }
	templateList struct{ list[tenants.Template] }
	siteList     struct{ list[Site] }
	domainList   struct{ list[Domain] }
	auditList    struct {
		Items      []auditEntry `json:"items"`
		NextBefore int64        `json:"next_before,omitempty"`
	}
)

var (
	pageParams       = []string{"limit", "after"}
	figureParamNames = []string{"window", "step"}
)

var operations = []operation{
	{method: "GET", path: "/", summary: "An index of the API: its resources and this document", status: 200, resp: Index{}},
	{method: "GET", path: "/openapi.json", summary: "This document (no API key needed)", status: 200, resp: map[string]any{}},

	{method: "GET", path: "/customers", summary: "List customers", query: append([]string{"status"}, pageParams...), status: 200, resp: customerList{}},
	{method: "POST", path: "/customers", summary: "Create a customer (and, with billing configured, its Stripe customer; 502 if Stripe fails, nothing created)", body: CustomerInput{}, status: 201, resp: Customer{}},
	{method: "GET", path: "/customers/{id}", summary: "Get a customer with its billing state", status: 200, resp: Customer{}},
	{method: "PATCH", path: "/customers/{id}", summary: "Update a customer's given fields; suspending or canceling stops its sites' containers", body: CustomerPatch{}, status: 200, resp: Customer{}},
	{method: "DELETE", path: "/customers/{id}", summary: "Delete a customer; 409 while it has sites unless cascade=true (purge=true also removes their volumes)", query: []string{"cascade", "purge"}, status: 204},
	{method: "POST", path: "/customers/{id}/checkout", summary: "A Stripe Checkout Session (subscription mode) for the plan (slug or id): send the customer to its url", body: CheckoutInput{}, status: 200, resp: SessionURL{}},
	{method: "POST", path: "/customers/{id}/portal", summary: "A Stripe billing portal session for the customer (body optional): send the customer to its url", body: PortalInput{}, status: 200, resp: SessionURL{}},
	{method: "POST", path: WebhookPath, public: true, summary: "Stripe webhook (no API key: the Stripe-Signature header is verified, 400 if it does not; each event applies once)", body: map[string]any{}, status: 200, resp: billing.WebhookResult{}},

	{method: "GET", path: "/plans", summary: "List plans", query: pageParams, status: 200, resp: planList{}},
	{method: "POST", path: "/plans", summary: "Create a plan", body: PlanInput{}, status: 201, resp: tenants.Plan{}},
	{method: "GET", path: "/plans/{id}", summary: "Get a plan", status: 200, resp: tenants.Plan{}},
	{method: "PATCH", path: "/plans/{id}", summary: "Update a plan's given fields", body: PlanPatch{}, status: 200, resp: tenants.Plan{}},
	{method: "DELETE", path: "/plans/{id}", summary: "Delete a plan; 409 while customers are on it", status: 204},

	{method: "GET", path: "/templates", summary: "List templates", query: pageParams, status: 200, resp: templateList{}},
	{method: "POST", path: "/templates", summary: "Create a template", body: TemplateInput{}, status: 201, resp: manage.TemplateResult{}},
	{method: "GET", path: "/templates/{id}", summary: "Get a template", status: 200, resp: tenants.Template{}},
	{method: "PATCH", path: "/templates/{id}", summary: "Update a template's given fields (bumps its version)", body: TemplatePatch{}, status: 200, resp: manage.TemplateResult{}},
	{method: "DELETE", path: "/templates/{id}", summary: "Delete a template; 409 while sites use it", status: 204},

	{method: "GET", path: "/sites", summary: "List sites", query: append([]string{"customer_id", "template_id", "status"}, pageParams...), status: 200, resp: siteList{}},
	{method: "POST", path: "/sites", summary: "Create a site", body: SiteInput{}, status: 201, resp: Site{}},
	{method: "GET", path: "/sites/{id}", summary: "Get a site", status: 200, resp: Site{}},
	{method: "PATCH", path: "/sites/{id}", summary: "Update a site's given fields", body: SitePatch{}, status: 200, resp: Site{}},
	{method: "DELETE", path: "/sites/{id}", summary: "Delete a site and its container; the volume is kept unless purge=true", query: []string{"purge"}, status: 204},
	{method: "POST", path: "/sites/{id}/start", summary: "Start the site's container and wait until it is ready", status: 200, resp: RuntimeStatus{}},
	{method: "POST", path: "/sites/{id}/stop", summary: "Stop the site's container", status: 200, resp: RuntimeStatus{}},
	{method: "POST", path: "/sites/{id}/restart", summary: "Stop and start the site's container", status: 200, resp: RuntimeStatus{}},
	{method: "POST", path: "/sites/{id}/redeploy", summary: "Recreate the site's container from its current template, keeping its volume", status: 200, resp: RuntimeStatus{}},
	{method: "GET", path: "/sites/{id}/status", summary: "The site's container state", status: 200, resp: RuntimeStatus{}},
	{method: "GET", path: "/sites/{id}/logs", summary: "The container's output: the last tail lines (default 100, or all); follow=true streams", query: []string{"tail", "follow"}, status: 200, text: true},
	{method: "GET", path: "/sites/{id}/releases", summary: "The site's releases, newest first (their logs left out): limit (default 50), and before a release number for the next page", query: []string{"before", "limit"}, status: 200, resp: releaseList{}},
	{method: "GET", path: "/sites/{id}/releases/{n}", summary: "Release n of the site: its spec (secrets masked), what it changed, its outcome and log", status: 200, resp: Release{}},
	{method: "POST", path: "/sites/{id}/rollback", summary: "A new release with the spec of release N (body optional; default: the one live before the live one), rolled out like any release", body: RollbackInput{}, status: 200, resp: Release{}},
	{method: "POST", path: "/sites/{id}/deploy", summary: "Deploy from source: the body is a tar.gz build context with a Dockerfile at its root (at most max_upload); the engine builds it and the release rolls out. Answers a text/event-stream: log events (the build's output, a line each), then a release event (the release as it ended) or an error event", upload: true, status: 200, resp: Release{}},
	{method: "GET", path: "/sites/{id}/figures", summary: "The site's figures over the last window (default 24h, at most 30d) in steps of whole minutes (default: about 100 steps; at most 1500): requests, 5xx errors, p50/p95 latency, cold starts and their mean duration, container CPU and memory", query: figureParamNames, status: 200, resp: SiteFigures{}},
	{method: "GET", path: "/sites/{id}/uptime", summary: "The site's uptime history over the last window (default 24h, at most 30d): its intervals up, asleep (stopped by idle or an operator: no downtime), failed and unhealthy, the seconds in each, and the uptime percentage, up / (up + unhealthy + failed): asleep and unknown time left out", query: []string{"window"}, status: 200, resp: SiteUptime{}},
	{method: "GET", path: "/sites/{id}/prewarms", summary: "The site's last pre-warms, newest first (limit, default 20, at most 500): each the hour slot it was started for, the model's probability (the share of the past weeks with a first request in that hour of the week), when it was ready, and when the slot's first visitor came (absent: none yet, or none before the site slept again)", query: []string{"limit"}, status: 200, resp: prewarmList{}},
	{method: "GET", path: "/sites/{id}/scale-events", summary: "The site's last scaling decisions, newest first (limit, default 20, at most 200, all the platform keeps per site): each when and on which node it was made, from and to how many replicas, why (the in-flight average against the template's target_concurrency times the replicas, over the window it held for), and that average", query: []string{"limit"}, status: 200, resp: scaleEventList{}},
	{method: "GET", path: "/sites/{id}/domains", summary: "List the site's custom domains", query: pageParams, status: 200, resp: domainList{}},
	{method: "POST", path: "/sites/{id}/domains", summary: "Add a custom domain to the site (unverified)", body: DomainInput{}, status: 201, resp: Domain{}},

	{method: "GET", path: "/domains", summary: "List custom domains", query: append([]string{"site_id"}, pageParams...), status: 200, resp: domainList{}},
	{method: "POST", path: "/domains", summary: "Add a custom domain (unverified)", body: DomainInput{}, status: 201, resp: Domain{}},
	{method: "GET", path: "/domains/{id}", summary: "Get a custom domain", status: 200, resp: Domain{}},
	{method: "PATCH", path: "/domains/{id}", summary: "Mark a custom domain verified or not by hand", body: DomainPatch{}, status: 200, resp: Domain{}},
	{method: "DELETE", path: "/domains/{id}", summary: "Remove a custom domain", status: 204},
	{method: "POST", path: "/domains/{id}/verify", summary: "Check the domain's DNS (TXT token, CNAME or A/AAAA) and mark it verified when it passes", status: 200, resp: VerifyResult{}},

	{method: "GET", path: "/audit", summary: "The audit log, newest first: of an entity, by an actor (its name contains actor, ignoring case; exactly it with actor_exact=true), in a time range (since inclusive, until exclusive)", query: []string{"entity", "entity_id", "actor", "actor_exact", "since", "until", "before", "limit"}, status: 200, resp: auditList{}},

	{method: "GET", path: "/backups", summary: "List backups, newest first: when, by which node, outcome, size", query: pageParams, status: 200, resp: backupList{}},
	{method: "POST", path: "/backups", summary: "Back up the platform (or the database and one site's volume) into the backup directory; answers once it is written", body: BackupInput{}, status: 201, resp: Backup{}},
	{method: "GET", path: "/backups/{id}", summary: "Get a backup's record", status: 200, resp: Backup{}},
	{method: "GET", path: "/backups/{id}/archive", summary: "Download a backup's archive (tar.gz), from the disk of the node that made it", status: 200, binary: true},
	{method: "POST", path: "/backups/{id}/restore", summary: "Restore a backup after checking it whole: one site (id or subdomain) into the running platform, or without site the whole platform onto an empty one", body: RestoreInput{}, status: 200, resp: RestoreResult{}},
	{method: "GET", path: "/figures", summary: "The platform's figures over the last window, in steps as for a site's: running containers, cold starts, failed starts", query: figureParamNames, status: 200, resp: PlatformFigures{}},
}

var (
	openAPIOnce sync.Once
	openAPIDoc  map[string]any
)

// OpenAPI returns the API's OpenAPI 3 document.
func OpenAPI() map[string]any {
	openAPIOnce.Do(func() { openAPIDoc = buildOpenAPI() })
	return openAPIDoc
}

// Index is the answer of GET /api/v1/: where the API's resources and its
// OpenAPI document are.
type Index struct {
	OpenAPI   string            `json:"openapi"`
	Resources map[string]string `json:"resources"`
}

func (a *API) index(w http.ResponseWriter, r *http.Request) error {
	res := map[string]string{}
	for _, name := range []string{"customers", "plans", "templates", "sites", "domains", "audit", "backups", "figures"} {
		res[name] = Prefix + "/" + name
	}
	writeJSON(w, http.StatusOK, Index{OpenAPI: Prefix + "/openapi.json", Resources: res})
	return nil
}

func (a *API) openAPI(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, OpenAPI())
	return nil
}

var pathParam = regexp.MustCompile(`\{([a-z_]+)\}`)

func buildOpenAPI() map[string]any {
	g := &schemaGen{defs: map[string]any{}}
	errRef := g.schema(reflect.TypeOf(struct {
		Error Error `json:"error"`
	}{}))
	paths := map[string]any{}
	for _, op := range operations {
		full := Prefix + op.path
		if op.public {
			full = op.path
		}
		item, _ := paths[full].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[full] = item
		}
		var params []any
		for _, m := range pathParam.FindAllStringSubmatch(op.path, -1) {
			schema := map[string]any{"type": "string", "format": "uuid"}
			if m[1] == "n" {
				schema = map[string]any{"type": "integer", "minimum": 1}
			}
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": schema})
		}
		for _, q := range op.query {
			params = append(params, map[string]any{"name": q, "in": "query", "schema": queryParamSchema(op.path, q)})
		}
		responses := map[string]any{}
		ok := map[string]any{"description": http.StatusText(op.status)}
		switch {
		case op.text:
			ok["content"] = map[string]any{"text/plain": map[string]any{"schema": map[string]any{"type": "string"}}}
		case op.binary:
			ok["content"] = map[string]any{"application/gzip": map[string]any{"schema": map[string]any{"type": "string", "format": "binary"}}}
		case op.upload:
			ok["content"] = map[string]any{"text/event-stream": map[string]any{"schema": map[string]any{"type": "string",
				"description": "events log (data: a line of the build's output), then release (data: the Release as JSON) or error (data: the error as JSON)"}}}
			g.schema(reflect.TypeOf(op.resp))
		case op.resp != nil:
			ok["content"] = map[string]any{"application/json": map[string]any{"schema": g.schema(reflect.TypeOf(op.resp))}}
		}
		if op.status == 201 {
			ok["headers"] = map[string]any{"Location": map[string]any{"schema": map[string]any{"type": "string"}, "description": "the new resource's URL"}}
		}
		responses[strconv.Itoa(op.status)] = ok
		// 400: a malformed or unknown query parameter; 429: too many
		// failed authentications; 503: the database is unavailable.
		errs := []int{400, 401, 404, 405, 429, 500, 503}
		if op.method != "GET" {
			errs = append(errs, 403, 409, 413, 415, 422)
		} else if len(op.query) > 0 {
			errs = append(errs, 422)
		}
		if strings.HasPrefix(op.path, "/sites/{id}/") && op.method == "POST" {
			errs = append(errs, 502)
		}
		if op.path == "/sites/{id}/releases/{n}" {
			errs = append(errs, 422)
		}
		if strings.HasPrefix(op.path, "/customers") && op.method == "POST" {
			errs = append(errs, 501, 502)
		}
		if op.public {
			errs = []int{400, 404, 405, 413, 500, 503}
		}
		for _, s := range errs {
			responses[strconv.Itoa(s)] = map[string]any{"description": http.StatusText(s),
				"content": map[string]any{"application/json": map[string]any{"schema": errRef}}}
		}
		for _, resp := range responses {
			resp.(map[string]any)["headers"] = responseHeaders(resp.(map[string]any)["headers"])
		}
		o := map[string]any{
			"summary":     op.summary,
			"operationId": operationID(op),
			"responses":   responses,
		}
		if params != nil {
			o["parameters"] = params
		}
		if op.body != nil {
			o["requestBody"] = map[string]any{"required": true,
				"content": map[string]any{"application/json": map[string]any{"schema": g.schema(reflect.TypeOf(op.body))}}}
		}
		if op.upload {
			o["requestBody"] = map[string]any{"required": true,
				"content": map[string]any{"application/gzip": map[string]any{"schema": map[string]any{"type": "string", "format": "binary"}}}}
		}
		if op.path == "/openapi.json" || op.public {
			o["security"] = []any{}
		}
		item[strings.ToLower(op.method)] = o
	}
	return map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{
			"title":       "caddy-multitenant admin API",
			"version":     "1",
			"description": "Manage customers, plans, templates, sites and custom domains. Authenticate with Authorization: Bearer <API key> (caddy tenants apikey create); GET needs a read or write key, every other method a write key; failed authentications are limited per client address (429 with Retry-After). Errors are {\"error\":{\"code\",\"message\",\"field\",\"request_id\"}}; every response has an X-Request-Id header, under which the server logs what went wrong. Text is UTF-8 without NUL, at most maxLength characters; a member given twice, or a query parameter a route does not take, is refused.",
		},
		"paths":    paths,
		"security": []any{map[string]any{"bearer": []any{}}},
		"components": map[string]any{
			"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer"}},
			"schemas":         g.defs,
		},
	}
}

// responseHeaders adds the request id to a response's headers.
func responseHeaders(h any) map[string]any {
	out, _ := h.(map[string]any)
	if out == nil {
		out = map[string]any{}
	}
	out[RequestIDHeader] = map[string]any{"schema": map[string]any{"type": "string"},
		"description": "the request's id; the server log records what went wrong under it"}
	return out
}

func queryParamSchema(path, name string) map[string]any {
	switch name {
	case "limit":
		return map[string]any{"type": "integer", "minimum": 1, "maximum": 500, "default": 50}
	case "before":
		if path == "/sites/{id}/releases" {
			return map[string]any{"type": "integer", "minimum": 1}
		}
		return map[string]any{"type": "integer"}
	case "cascade", "purge", "follow", "actor_exact":
		return map[string]any{"type": "boolean", "default": false}
	case "tail":
		return map[string]any{"type": "string", "default": "100", "description": "a number of lines, or all"}
	case "customer_id", "template_id", "site_id":
		return map[string]any{"type": "string", "maxLength": manage.MaxRefLen, "description": refMembers[name]}
	case "after", "entity_id":
		return map[string]any{"type": "string", "format": "uuid"}
	case "entity":
		return map[string]any{"type": "string", "enum": tenants.AuditEntities}
	case "since", "until":
		return map[string]any{"type": "string", "format": "date-time"}
	case "window":
		return map[string]any{"type": "string", "default": "24h", "example": "7d",
			"description": "how far back: a duration (90m, 24h) or whole days (7d), at most 30d"}
	case "step":
		return map[string]any{"type": "string", "example": "1h",
			"description": fmt.Sprintf("the length of a step, whole minutes (1m, 15m, 1h, 1d); default: the shortest of 1m, 2m, 5m, 10m, 15m, 30m, 1h, 2h, 3h, 6h, 12h, 1d cutting the window into at most 100 steps; at most %d steps", manage.MaxFiguresPoints)}
	case "status":
		if path == "/customers" {
			return map[string]any{"type": "string", "enum": tenants.CustomerStatuses}
		}
		return map[string]any{"type": "string", "enum": tenants.SiteStatuses}
	}
	return map[string]any{"type": "string"}
}

// maxLength documents the limits of the request bodies' text fields, by
// member name; tenants enforces them (and checkURL the URLs).
var maxLength = map[string]int{
	"email": tenants.MaxEmailLen, "name": tenants.MaxNameLen, "description": tenants.MaxDescriptionLen,
	"image": tenants.MaxImageLen, "data_path": tenants.MaxPathLen, "health_path": tenants.MaxPathLen,
	"slug": tenants.MaxSlugLen, "subdomain": tenants.MaxSubdomainLen, "hostname": tenants.MaxHostnameLen,
	"stripe_customer_id": tenants.MaxStripeIDLen, "stripe_subscription_id": tenants.MaxStripeIDLen,
	"stripe_price_id": tenants.MaxStripeIDLen, "plan": tenants.MaxSlugLen,
	"success_url": manage.MaxURLLen, "cancel_url": manage.MaxURLLen, "return_url": manage.MaxURLLen,
	"user": tenants.MaxUserLen,
}

// refMembers take an id or the natural key of what they name.
var refMembers = map[string]string{
	"customer_id": "the customer's id or email",
	"plan_id":     "the plan's id or slug",
	"template_id": "the template's id or slug",
	"site_id":     "the site's id or subdomain",
}

// requestField adds what a request body's member must be to its schema.
func requestField(schemaName, member string, prop map[string]any) {
	switch {
	case member == "env":
		prop["maxProperties"] = tenants.MaxEnvEntries
		prop["additionalProperties"] = map[string]any{"type": "string", "maxLength": tenants.MaxEnvValueLen}
		prop["description"] = fmt.Sprintf("variable names are letters, digits and underscores, not starting with a digit, at most %d characters", tenants.MaxEnvNameLen)
	case member == "status" && strings.HasPrefix(schemaName, "Customer"):
		prop["enum"] = tenants.CustomerStatuses
	case member == "status":
		prop["enum"] = tenants.SiteStatuses
	case refMembers[member] != "":
		prop["description"] = refMembers[member]
		prop["maxLength"] = manage.MaxRefLen
	case strings.HasSuffix(member, "_id") && !strings.HasPrefix(member, "stripe_"):
		prop["format"] = "uuid"
	case member == "max_sites":
		prop["minimum"], prop["maximum"] = 1, tenants.MaxPlanSites
	case member == "port":
		prop["minimum"], prop["maximum"] = 1, 65535
	}
	if n, ok := maxLength[member]; ok {
		prop["maxLength"] = n
	}
}

func operationID(op operation) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(op.method))
	for _, part := range strings.Split(op.path, "/") {
		part = strings.Trim(part, "{}")
		part = strings.NewReplacer(".", "_").Replace(part)
		if part == "" {
			continue
		}
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}

// schemaGen derives JSON schemas from Go types by their json tags, so the
// document follows the types the handlers decode and encode.
type schemaGen struct{ defs map[string]any }

var timeType = reflect.TypeOf(time.Time{})

// nullable is a wrapper type (manage.Nullable) whose schema is its
// element's, or null.
type nullable interface{ NullableOf() reflect.Type }

func (g *schemaGen) schema(t reflect.Type) map[string]any {
	if n, ok := reflect.Zero(t).Interface().(nullable); ok {
		s := g.schema(n.NullableOf())
		s["nullable"] = true
		return s
	}
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t.Kind() == reflect.Pointer:
		return g.schema(t.Elem())
	}
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int32, reflect.Int64:
		return map[string]any{"type": "integer"}
	case reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": "string", "format": "byte"}
		}
		return map[string]any{"type": "array", "items": g.schema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.schema(t.Elem())}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
	default:
		return map[string]any{}
	}
	name := schemaName(t)
	ref := map[string]any{"$ref": "#/components/schemas/" + name}
	if _, ok := g.defs[name]; ok {
		return ref
	}
	g.defs[name] = map[string]any{} // placeholder against recursion
	props := map[string]any{}
	g.fields(t, props)
	def := map[string]any{"type": "object", "properties": props}
	if strings.HasSuffix(name, "Input") || strings.HasSuffix(name, "Patch") {
		def["additionalProperties"] = false
		for member, prop := range props {
			requestField(name, member, prop.(map[string]any))
		}
	} else {
		for member, prop := range props {
			answerField(name, member, prop.(map[string]any))
		}
	}
	if req := required[name]; req != nil {
		def["required"] = req
	}
	g.defs[name] = def
	return ref
}

// required lists the members a request body must have, and those an
// answer always has that clients branch on.
var required = map[string][]string{
	"CustomerInput": {"email", "name"},
	"PlanInput":     {"slug", "name"},
	"TemplateInput": {"slug", "name", "image", "port"},
	"SiteInput":     {"customer_id", "subdomain", "template_id"},
	"DomainInput":   {"hostname"},
	"CheckoutInput": {"plan", "success_url", "cancel_url"},
	"RuntimeStatus": {"site_id", "state", "source"},
	"Site":          {"id", "customer_id", "subdomain", "template_id", "status", "state"},
	"Customer":      {"id", "email", "name", "status"},
	"Release":       {"site_id", "number", "kind", "status", "spec", "changes", "created_at"},
	"SiteFigures": {"site_id", "since", "step", "requests", "errors", "latency_p50", "latency_p95",
		"cold_starts", "cold_start_ms", "cpu", "memory"},
	"PlatformFigures": {"since", "step", "running", "cold_starts", "failures"},
	"Series":          {"name", "unit", "points"},
	"SiteUptime":      {"site_id", "since", "until", "intervals", "seconds"},
	"UptimeInterval":  {"state", "started_at"},
	"Point":           {"at", "value"},
}

// runtimeStates are the states of a site's container as the API shows
// them.
var runtimeStates = []string{"created", "starting", "running", "paused", "stopped", "failed", "removed", manage.StateAbsent}

// answerField adds the values an answer's member takes to its schema.
func answerField(schemaName, member string, prop map[string]any) {
	switch {
	case member == "state" && (schemaName == "RuntimeStatus" || schemaName == "Site"):
		prop["enum"] = runtimeStates
	case member == "status" && schemaName == "Release":
		prop["enum"] = tenants.ReleaseStatuses
	case member == "kind" && schemaName == "Release":
		prop["enum"] = tenants.ReleaseKinds
	case member == "status" && schemaName == "Customer":
		prop["enum"] = tenants.CustomerStatuses
	case member == "status" && schemaName == "Site":
		prop["enum"] = tenants.SiteStatuses
	case member == "state" && schemaName == "UptimeInterval":
		prop["enum"] = tenants.UptimeStates
	case member == "health" && schemaName == "RuntimeStatus":
		prop["enum"] = []string{"healthy", manage.HealthUnhealthy}
	case member == "source" && schemaName == "RuntimeStatus":
		prop["enum"] = []string{"live", "recorded"}
	case member == "step" && strings.HasSuffix(schemaName, "Figures"):
		prop["description"] = "the length of a step, in nanoseconds"
	}
}

func (g *schemaGen) fields(t reflect.Type, props map[string]any) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			g.fields(f.Type, props)
			continue
		}
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		props[name] = g.schema(f.Type)
	}
}

func schemaName(t reflect.Type) string {
	n := t.Name()
	if n == "" {
		return "ErrorResponse"
	}
	if i := strings.IndexByte(n, '['); i >= 0 {
		n = n[:i]
	}
	return strings.ToUpper(n[:1]) + n[1:]
}
