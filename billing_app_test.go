package multitenant

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/agistaffers/caddy-multitenant/internal/caddytest"
	"github.com/agistaffers/caddy-multitenant/internal/pgtest"
)

// platformsAlive returns the live platforms and the references to each.
func platformsAlive() (list []*platform, refs []int) {
	platforms.Range(func(key, v any) bool {
		list = append(list, v.(*platform))
		n, _ := platforms.References(key)
		refs = append(refs, n)
		return true
	})
	return list, refs
}

// The grace-period loop has an owner: one per platform, shared by the
// configs of a reload (never two running), started by the app's Start
// and stopped with the last config that uses it.
func TestBillingLoopOwnedAcrossReloads(t *testing.T) {
	schema := pgtest.Schema(t)
	dsn := pgtest.URL(t)
	admin := caddytest.FreeAddr(t)
	cfg := fmt.Sprintf(`{
		"admin": {"listen": %q},
		"apps": {"tenants": {"database_url": %q, "schema": %q, "base_domain": "example.com",
			"stripe": {"secret_key": "sk_test_loop", "webhook_secret": "whsec_loop", "api_url": "http://127.0.0.1:9",
				"grace_period": "1h", "check_interval": "50ms"}}}
	}`, admin, dsn, schema)
	if err := caddy.Load([]byte(cfg), true); err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = caddy.Stop()
		}
	})
	list, refs := platformsAlive()
	if len(list) != 1 || refs[0] != 1 || list[0].billing == nil {
		t.Fatalf("after load: %d platforms, refs %v; want 1 platform with billing, 1 ref", len(list), refs)
	}
	p := list[0]
	if !p.billingRunning.Load() {
		t.Fatal("the loop was not started by the app's Start")
	}

	reload := func() {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, "http://"+admin+"/load", strings.NewReader(cfg))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Cache-Control", "must-revalidate")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("posting config: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST /load: %s", resp.Status)
		}
	}
	for range 3 {
		reload()
	}
	if list, refs := platformsAlive(); len(list) != 1 || refs[0] != 1 || list[0] != p || !p.billingRunning.Load() {
		t.Fatalf("after reloads: %d platforms, refs %v; want the same one, its loop running", len(list), refs)
	}

	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped = true
	if p.billingRunning.Load() {
		t.Fatal("the loop still runs after the last config stopped")
	}
	if list, _ := platformsAlive(); len(list) != 0 {
		t.Fatalf("%d platforms left after stop", len(list))
	}
}
