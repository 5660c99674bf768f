package admin

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// The document and the router agree both ways: every route is documented,
// every documented operation is routed (a request for it reaches a
// handler, not the router's 404 or 405), and the document is valid JSON
// with the OpenAPI 3 basics.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	ta := newTestAPI(t, manage.Config{})
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	status, _, raw := ta.do("GET", "/api/v1/openapi.json", nil, &doc)
	if status != 200 || !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi.json: %d %.200s", status, raw)
	}
	documented := map[Route]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			documented[Route{strings.ToUpper(method), path}] = true
		}
	}
	routed := map[Route]bool{}
	for _, r := range ta.api.Routes() {
		routed[r] = true
		if !documented[r] {
			t.Errorf("route %s %s is not in the document", r.Method, r.Path)
		}
	}
	param := regexp.MustCompile(`\{[a-z_]+\}`)
	for r := range documented {
		if !routed[r] {
			t.Errorf("documented %s %s is not routed", r.Method, r.Path)
		}
		// Walk the real router: a request for the operation must reach
		// its handler (the router itself answers "no such API route").
		path := param.ReplaceAllString(r.Path, "00000000-0000-0000-0000-000000000000")
		var e errorBody
		status, _, _ := ta.do(r.Method, path, nil, &e)
		if status == http.StatusMethodNotAllowed || (status == 404 && e.Error.Message == "no such API route") {
			t.Errorf("documented %s %s: the router answers %d", r.Method, r.Path, status)
		}
	}
	// Every schema reference resolves.
	var full map[string]any
	if err := json.Unmarshal(raw, &full); err != nil {
		t.Fatal(err)
	}
	schemas := full["components"].(map[string]any)["schemas"].(map[string]any)
	refs := regexp.MustCompile(`"\$ref":\s*"#/components/schemas/([A-Za-z]+)"`).FindAllStringSubmatch(string(raw), -1)
	if len(refs) == 0 {
		t.Fatal("no schema references")
	}
	for _, m := range refs {
		if _, ok := schemas[m[1]]; !ok {
			t.Errorf("dangling reference to %s", m[1])
		}
	}
	for _, name := range []string{"Customer", "SiteInput", "SitePatch", "Domain", "RuntimeStatus", "ErrorResponse"} {
		if _, ok := schemas[name]; !ok {
			t.Errorf("schema %s missing; have %v", name, slices.Sorted(mapsKeys(schemas)))
		}
	}
}

func mapsKeys(m map[string]any) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// Every text member of a request body documents its bound (maxLength, an
// enum or a uuid), and env its entries; the error shape has request_id.
func TestOpenAPIDocumentsLimits(t *testing.T) {
	t.Parallel()
	schemas := openAPISchemas(t)
	checked := 0
	for name, s := range schemas {
		if !strings.HasSuffix(name, "Input") && !strings.HasSuffix(name, "Patch") {
			continue
		}
		for member, p := range s.Properties {
			switch {
			case member == "env":
				if p["maxProperties"] != float64(tenants.MaxEnvEntries) {
					t.Errorf("%s.env: maxProperties %v", name, p["maxProperties"])
				}
			case p["type"] != "string":
			case p["maxLength"] == nil && p["enum"] == nil && p["format"] != "uuid":
				t.Errorf("%s.%s: no maxLength, enum or uuid format", name, member)
			default:
				checked++
			}
		}
	}
	if checked < 30 {
		t.Errorf("only %d text members checked", checked)
	}
	if got := schemas["CustomerInput"].Properties["email"]["maxLength"]; got != float64(tenants.MaxEmailLen) {
		t.Errorf("CustomerInput.email maxLength %v", got)
	}
	if _, ok := schemas["Error"].Properties["request_id"]; !ok {
		t.Error("the Error schema has no request_id")
	}
}

// The document says what a client must send and which values states and
// statuses take.
func TestOpenAPIRequiredAndEnums(t *testing.T) {
	t.Parallel()
	schemas := openAPISchemas(t)
	for name, want := range required {
		s, ok := schemas[name]
		if !ok {
			t.Errorf("no schema %s", name)
			continue
		}
		if !slices.Equal(s.Required, want) {
			t.Errorf("%s: required %v, want %v", name, s.Required, want)
		}
		for _, m := range want {
			if _, ok := s.Properties[m]; !ok {
				t.Errorf("%s: required member %s is not a property", name, m)
			}
		}
	}
	enum := func(schema, member string) []any {
		e, _ := schemas[schema].Properties[member]["enum"].([]any)
		return e
	}
	if e := enum("RuntimeStatus", "state"); !slices.Contains(e, any("absent")) || !slices.Contains(e, any("running")) {
		t.Errorf("RuntimeStatus.state enum %v", e)
	}
	if e := enum("Customer", "status"); len(e) != len(tenants.CustomerStatuses) {
		t.Errorf("Customer.status enum %v", e)
	}
	if e := enum("Site", "status"); len(e) != len(tenants.SiteStatuses) {
		t.Errorf("Site.status enum %v", e)
	}
}

// schema is what the tests read of a schema of the document.
type schema struct {
	Required   []string                  `json:"required"`
	Properties map[string]map[string]any `json:"properties"`
}

// openAPISchemas returns the document's schemas, as a client reads them.
func openAPISchemas(t *testing.T) map[string]schema {
	t.Helper()
	raw, err := json.Marshal(OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components struct {
			Schemas map[string]schema `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Components.Schemas
}
