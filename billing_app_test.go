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

// billingLoopCount returns how many grace-period loops exist and the
// references to each.
func billingLoopCount() (loops int, refs []int) {
	billingLoops.Range(func(key, _ any) bool {
		loops++
		n, _ := billingLoops.References(key)
		refs = append(refs, n)
		return true
	})
	return loops, refs
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
	if loops, refs := billingLoopCount(); loops != 1 || refs[0] != 1 {
		t.Fatalf("after load: %d loops, refs %v; want 1 loop, 1 ref", loops, refs)
	}
	var loop *billingLoop
	billingLoops.Range(func(_, v any) bool { loop = v.(*billingLoop); return false })
	if loop.done == nil {
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
	if loops, refs := billingLoopCount(); loops != 1 || refs[0] != 1 {
		t.Fatalf("after reloads: %d loops, refs %v; want the same 1 loop, 1 ref", loops, refs)
	}
	billingLoops.Range(func(_, v any) bool {
		if v.(*billingLoop) != loop {
			t.Error("a reload replaced the loop")
		}
		return false
	})

	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped = true
	select {
	case <-loop.done:
	default:
		t.Fatal("the loop still runs after the last config stopped")
	}
	if loops, _ := billingLoopCount(); loops != 0 {
		t.Fatalf("%d loops left after stop", loops)
	}
}
