package storage

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile" // the caddyfile adapter
)

// TestCaddyfileGlobalOptionAdapts runs the documented Caddyfile through
// Caddy's own adapter, as `caddy adapt` would; it must be caddy fmt clean.
func TestCaddyfileGlobalOptionAdapts(t *testing.T) {
	t.Parallel()
	input := `{
	storage postgres {
		dsn {env.DATABASE_URL}
		schema tenants
		lock_ttl 30s
	}
}
`
	out, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(input), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) > 0 {
		t.Errorf("warnings: %v", warnings)
	}
	var config struct {
		Storage map[string]any `json:"storage"`
	}
	if err := json.Unmarshal(out, &config); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"module": "postgres", "dsn": "{env.DATABASE_URL}", "schema": "tenants", "lock_ttl": float64(30e9)}
	for k, v := range want {
		if config.Storage[k] != v {
			t.Errorf("storage.%s = %#v, want %#v (config %s)", k, config.Storage[k], v, out)
		}
	}

	_, _, err = caddyconfig.GetAdapter("caddyfile").Adapt([]byte("{\n storage postgres {\n nope\n }\n}"), nil)
	if err == nil || !strings.Contains(err.Error(), `unrecognized subdirective "nope"`) {
		t.Errorf("unknown subdirective: error = %v", err)
	}
}
