package multitenant

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/docker/docker/api/types/swarm"
	"go.uber.org/zap/zaptest"

	"github.com/agistaffers/caddy-multitenant/internal/swarmlab"
	"github.com/agistaffers/caddy-multitenant/internal/testimage"
	"github.com/agistaffers/caddy-multitenant/provisioner"
)

// adaptTenants adapts a Caddyfile whose global options hold the tenants
// block body and returns the tenants app's JSON.
func adaptTenants(t *testing.T, body string) (json.RawMessage, error) {
	t.Helper()
	src := "{\n\ttenants {\n\t\tdatabase_url postgres://u@db/x\n" + body + "\n\t}\n}\n\nhttp://:8080 {\n\ttenant_proxy\n}\n"
	out, _, err := caddyfile.Adapter{ServerType: httpcaddyfile.ServerType{}}.Adapt([]byte(src), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		return nil, err
	}
	var cfg struct {
		Apps struct {
			Tenants json.RawMessage `json:"tenants"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg.Apps.Tenants, nil
}

func TestSwarmCaddyfileAdapt(t *testing.T) {
	raw, err := adaptTenants(t, `
		swarm {
			host              tcp://10.0.0.1:2375
			network           caddy-tasks
			placement         node.role==worker node.labels.tenants==true
			placement         node.hostname!=db-1
			endpoint_mode     vip
			dial              host_port
			subnet_pool       10.208.0.0/14 /23
			restart_delay     250ms
			stop_grace_period 5s
			poll_interval     20ms
		}`)
	if err != nil {
		t.Fatal(err)
	}
	var app struct {
		Swarm      json.RawMessage `json:"swarm"`
		PauseAfter json.RawMessage `json:"pause_after"`
	}
	if err := json.Unmarshal(raw, &app); err != nil {
		t.Fatal(err)
	}
	want := `{"host":"tcp://10.0.0.1:2375","network":"caddy-tasks",` +
		`"placement":["node.role==worker","node.labels.tenants==true","node.hostname!=db-1"],` +
		`"endpoint_mode":"vip","dial":"host_port","subnet_pool":"10.208.0.0/14","subnet_size":23,` +
		`"restart_delay":250000000,"stop_grace_period":5000000000,"poll_interval":20000000}`
	if string(app.Swarm) != want {
		t.Fatalf("swarm JSON\n got  %s\n want %s", app.Swarm, want)
	}
	if app.PauseAfter != nil {
		t.Errorf("pause_after %s written without being set", app.PauseAfter)
	}

	// The JSON loads back into the app, and passes its validation.
	var loaded App
	if err := json.Unmarshal(raw, &loaded); err != nil {
		t.Fatal(err)
	}
	if err := expandAndValidate(&loaded); err != nil {
		t.Fatal(err)
	}
	if loaded.Swarm.StopGracePeriod != caddy.Duration(5*time.Second) || len(loaded.Swarm.Placement) != 3 {
		t.Errorf("loaded swarm %+v", loaded.Swarm)
	}

	// `swarm` with an empty block: every default, and no docker engine
	// runtime; without it, no swarm key at all.
	for body, want := range map[string]string{"swarm {\n}": "{}", "": ""} {
		raw, err := adaptTenants(t, body)
		if err != nil {
			t.Fatal(err)
		}
		var app struct {
			Swarm json.RawMessage `json:"swarm"`
		}
		if err := json.Unmarshal(raw, &app); err != nil {
			t.Fatal(err)
		}
		if string(app.Swarm) != want {
			t.Errorf("%q: swarm JSON %s, want %q", body, app.Swarm, want)
		}
	}
}

func TestSwarmCaddyfileErrors(t *testing.T) {
	wantUnmarshalErrors(t, map[string]string{
		"tenants {\nswarm on\n}":                                      "wrong argument count",
		"tenants {\nswarm {\nmanager tcp://x:2375\n}\n}":              `unrecognized swarm option "manager"`,
		"tenants {\nswarm {\nhost\n}\n}":                              "host: expected one argument",
		"tenants {\nswarm {\nnetwork a b\n}\n}":                       "network: expected one argument, got more",
		"tenants {\nswarm {\nendpoint_mode ipvs\n}\n}":                `swarm endpoint_mode: "ipvs" is neither dnsrr nor vip`,
		"tenants {\nswarm {\nendpoint_mode\n}\n}":                     "endpoint_mode: expected one argument",
		"tenants {\nswarm {\ndial mesh\n}\n}":                         `swarm dial: "mesh" is neither task_ip nor host_port`,
		"tenants {\nswarm {\nplacement\n}\n}":                         "swarm placement: expected at least one constraint",
		"tenants {\nswarm {\nplacement node.role=worker\n}\n}":        `swarm placement: "node.role=worker" is not key==value or key!=value`,
		"tenants {\nswarm {\nplacement node.role==\n}\n}":             `swarm placement: "node.role==" is not key==value`,
		"tenants {\nswarm {\nplacement ==worker\n}\n}":                `swarm placement: "==worker" is not key==value`,
		"tenants {\nswarm {\nplacement node.role==boss\n}\n}":         `swarm placement: "node.role==boss": node.role is manager or worker`,
		"tenants {\nswarm {\nplacement node.name==a\n}\n}":            `swarm placement: "node.name==a": unknown key node.name`,
		"tenants {\nswarm {\nplacement node.labels.==a\n}\n}":         "unknown key node.labels.",
		"tenants {\nswarm {\nplacement node.role!==worker\n}\n}":      `swarm placement: "node.role!==worker" is not key==value`,
		"tenants {\nswarm {\nsubnet_pool\n}\n}":                       "swarm subnet_pool: expected a network",
		"tenants {\nswarm {\nsubnet_pool 10.0.0.0/8 24 x\n}\n}":       "swarm subnet_pool: expected a network",
		"tenants {\nswarm {\nsubnet_pool 10.0.0.0/33\n}\n}":           `swarm subnet_pool: "10.0.0.0/33" is not an IPv4 network`,
		"tenants {\nswarm {\nsubnet_pool fd00::/64\n}\n}":             `swarm subnet_pool: "fd00::/64" is not an IPv4 network`,
		"tenants {\nswarm {\nsubnet_pool 10.1.2.3/16\n}\n}":           "swarm subnet_pool: 10.1.2.3/16 has host bits set; did you mean 10.1.0.0/16?",
		"tenants {\nswarm {\nsubnet_pool 10.208.0.0/14 x\n}\n}":       `swarm subnet_pool: "x" is not a prefix length`,
		"tenants {\nswarm {\nsubnet_pool 10.208.0.0/14 12\n}\n}":      "swarm subnet_pool: subnet size /12 must be between /14 (the pool) and /29",
		"tenants {\nswarm {\nsubnet_pool 10.208.0.0/14 30\n}\n}":      "subnet size /30 must be between /14 (the pool) and /29",
		"tenants {\nswarm {\nrestart_delay soon\n}\n}":                "restart_delay:",
		"tenants {\nswarm {\nstop_grace_period -1s\n}\n}":             "stop_grace_period: must not be negative",
		"tenants {\nswarm {\npoll_interval\n}\n}":                     "poll_interval: expected one argument",
		"tenants {\nswarm {\nplacement node.role==worker bad\n}\n}":   `swarm placement: "bad" is not key==value or key!=value`,
		"tenants {\nswarm {\nplacement engine.labels.zone==a b\n}\n}": `swarm placement: "b" is not key==value`,
	})
}

func TestValidateSwarm(t *testing.T) {
	load := func(t *testing.T, body string) (*App, error) {
		t.Helper()
		app := new(App)
		if err := app.UnmarshalCaddyfile(caddyfile.NewTestDispenser("tenants {\ndatabase_url postgres://x\n" + body + "\n}")); err != nil {
			t.Fatal(err)
		}
		return app, expandAndValidate(app)
	}
	// Swarm has no pause: unset, the pause tier is off.
	app, err := load(t, "swarm {\n}")
	if err != nil {
		t.Fatal(err)
	}
	if app.PauseAfter == nil || *app.PauseAfter != 0 {
		t.Errorf("pause_after with swarm and unset: %v, want 0 (off)", app.PauseAfter)
	}
	if app, err = load(t, "swarm {\n}\npause_after off"); err != nil || *app.PauseAfter != 0 {
		t.Errorf("pause_after off with swarm: %v, %v", app.PauseAfter, err)
	}
	// Without swarm the Docker engine runtime pauses after the default.
	if app, err = load(t, ""); err != nil || app.Swarm != nil || time.Duration(*app.PauseAfter) != DefaultPauseAfter {
		t.Errorf("without swarm: swarm %v, pause_after %v, %v", app.Swarm, app.PauseAfter, err)
	}
	for body, want := range map[string]string{
		"swarm {\n}\npause_after 30s":          "pause_after: 30s with swarm: Swarm cannot pause a service's tasks",
		"pause_after 1m\nswarm {\n}":           "pause_after: 1m0s with swarm",
		"swarm {\n}\nmax_paused_memory 1GiB":   "max_paused_memory: set with swarm",
		"swarm {\nhost 10.0.0.1:2375\n}":       `swarm host: "10.0.0.1:2375" needs a scheme`,
		"swarm {\nnetwork tasks/overlay\n}":    `swarm network: "tasks/overlay" is not a network name`,
		"swarm {\nsubnet_pool 10.20.0.0/16\n}": "", // valid
	} {
		_, err := load(t, body)
		if want == "" {
			if err != nil {
				t.Errorf("%q: %v", body, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want it to contain %q", body, err, want)
		}
	}

	// JSON skips the Caddyfile's checks: validation repeats them.
	for name, c := range map[string]struct {
		cfg  SwarmConfig
		want string
	}{
		"mode":      {SwarmConfig{EndpointMode: "ingress"}, `swarm endpoint_mode: "ingress" is neither dnsrr nor vip`},
		"dial":      {SwarmConfig{Dial: "vip"}, `swarm dial: "vip" is neither task_ip nor host_port`},
		"placement": {SwarmConfig{Placement: []string{"node.role==worker", "zone=a"}}, `swarm placement: "zone=a" is not key==value`},
		"pool":      {SwarmConfig{SubnetPool: "10.0.0.0"}, `swarm subnet_pool: "10.0.0.0" is not an IPv4 network`},
		"size":      {SwarmConfig{SubnetSize: 26}, "swarm subnet_pool: a subnet size (/26) without a pool"},
		"duration":  {SwarmConfig{PollInterval: -1}, "swarm poll_interval: must not be negative"},
	} {
		app := App{DatabaseURL: "postgres://localhost/db", Swarm: &c.cfg}
		err := expandAndValidate(&app)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to contain %q", name, err, c.want)
		}
	}
}

func TestSwarmRuntimeConfig(t *testing.T) {
	c := SwarmConfig{
		Network: "caddy-tasks", Placement: []string{"node.role==worker"}, EndpointMode: "vip", Dial: "host_port",
		SubnetPool: "10.208.0.0/14", SubnetSize: 23,
		RestartDelay:    caddy.Duration(250 * time.Millisecond),
		StopGracePeriod: caddy.Duration(5 * time.Second), PollInterval: caddy.Duration(20 * time.Millisecond),
	}
	cli, err := c.client("")
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	logger := zaptest.NewLogger(t)
	got, err := c.runtimeConfig("platform", cli, logger)
	if err != nil {
		t.Fatal(err)
	}
	want := provisioner.SwarmConfig{
		Client: cli, Namespace: "platform", Network: "caddy-tasks", EndpointMode: "vip", Dial: provisioner.DialHostPort,
		Constraints: []string{"node.role==worker"}, RestartDelay: 250 * time.Millisecond,
		StopGracePeriod: 5 * time.Second, PollInterval: 20 * time.Millisecond,
		SubnetPool: netip.MustParsePrefix("10.208.0.0/14"), SubnetBits: 23, Logger: logger,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("runtime config\n got  %+v\n want %+v", got, want)
	}
	got.Constraints[0] = "changed"
	if c.Placement[0] != "node.role==worker" {
		t.Error("the runtime config shares the placement slice with the app's")
	}
	if _, err := provisioner.NewSwarmRuntime(got); err != nil {
		t.Fatalf("the runtime refuses the config: %v", err)
	}

	// Defaults: left to the runtime, no subnet pool (the swarm's own).
	var empty SwarmConfig
	got, err = empty.runtimeConfig("platform", cli, logger)
	if err != nil {
		t.Fatal(err)
	}
	if got.SubnetPool.IsValid() || got.SubnetBits != DefaultSwarmSubnetSize || got.EndpointMode != "" || got.Network != "" || len(got.Constraints) != 0 {
		t.Errorf("default runtime config %+v", got)
	}
	if _, err := provisioner.NewSwarmRuntime(got); err != nil {
		t.Fatalf("the runtime refuses the default config: %v", err)
	}
	if _, err := (&SwarmConfig{EndpointMode: "ingress"}).runtimeConfig("platform", cli, logger); err == nil {
		t.Error("runtimeConfig took an invalid endpoint mode")
	}
}

func TestSwarmClientHost(t *testing.T) {
	t.Setenv("DOCKER_HOST", "tcp://198.51.100.7:2375")
	for _, c := range []struct {
		host, docker, want string
	}{
		{"tcp://10.0.0.1:2375", "unix:///var/run/docker.sock", "tcp://10.0.0.1:2375"},
		{"", "unix:///run/other.sock", "unix:///run/other.sock"}, // the docker block's engine
		{"", "", "tcp://198.51.100.7:2375"},                      // then DOCKER_HOST
	} {
		cli, err := (&SwarmConfig{Host: c.host}).client(c.docker)
		if err != nil {
			t.Fatal(err)
		}
		if got := cli.DaemonHost(); got != c.want {
			t.Errorf("host %q, docker host %q: client of %s, want %s", c.host, c.docker, got, c.want)
		}
		cli.Close()
	}
}

// TestSwarmConfigOnLab runs a site through a runtime made from a swarm
// block, on the real three-node lab: the block's manager address, overlay,
// placement, endpoint mode and timings reach the services Swarm runs.
func TestSwarmConfigOnLab(t *testing.T) {
	lab := swarmlab.Start(t)
	image := testimage.Build(t, testimage.DefaultTag)
	lab.LoadImage(t, image)
	target := lab.Nodes[1]

	app := new(App)
	input := "tenants {\ndatabase_url postgres://x\nswarm {\nhost " + lab.Nodes[0].Host + "\nnetwork " + lab.Network +
		"\nplacement node.hostname==" + target.Hostname + "\nendpoint_mode dnsrr\nrestart_delay 300ms\nstop_grace_period 2s\npoll_interval 25ms\n}\n}"
	if err := app.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err != nil {
		t.Fatal(err)
	}
	if err := expandAndValidate(app); err != nil {
		t.Fatal(err)
	}
	cli, err := app.Swarm.client(app.Docker.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ns := fmt.Sprintf("swcfg%d", time.Now().UnixNano()%1e9) // apart from other runs' services
	cfg, err := app.Swarm.runtimeConfig(ns, cli, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	r, err := provisioner.NewSwarmRuntime(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	info, err := cli.Info(ctx)
	if err != nil || !info.Swarm.ControlAvailable {
		t.Fatalf("the block's host is no manager: control available %v, %v", info.Swarm.ControlAvailable, err)
	}

	spec := &provisioner.Spec{
		SiteID: "site-cfg", Image: image, Port: 8080, CustomerID: "cust-cfg",
		Env:         map[string]string{"SITE_NAME": "site-cfg"},
		MemoryBytes: 64 << 20, NanoCPUs: 500_000_000, PidsLimit: 64,
		TemplateSlug: "static", TemplateVersion: 1,
	}
	inst, err := r.Ensure(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := r.Remove(ctx, spec.SiteID, true); err != nil {
			t.Errorf("removing the site: %v", err)
		}
	})
	svc, _, err := cli.ServiceInspectWithRaw(ctx, inst.ID, swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tt := svc.Spec.TaskTemplate
	if svc.Spec.EndpointSpec == nil || svc.Spec.EndpointSpec.Mode != swarm.ResolutionModeDNSRR {
		t.Errorf("endpoint spec %+v, want dnsrr", svc.Spec.EndpointSpec)
	}
	if tt.Placement == nil || !reflect.DeepEqual(tt.Placement.Constraints, []string{"node.hostname==" + target.Hostname}) {
		t.Errorf("placement %+v, want the block's constraint", tt.Placement)
	}
	if tt.RestartPolicy == nil || tt.RestartPolicy.Delay == nil || *tt.RestartPolicy.Delay != 300*time.Millisecond {
		t.Errorf("restart policy %+v, want a 300ms delay", tt.RestartPolicy)
	}
	if tt.ContainerSpec == nil || tt.ContainerSpec.StopGracePeriod == nil || *tt.ContainerSpec.StopGracePeriod != 2*time.Second {
		t.Errorf("container spec's stop grace period, want 2s: %+v", tt.ContainerSpec)
	}

	inst, err = r.Scale(ctx, spec.SiteID, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(inst.Upstreams) != 1 {
		t.Fatalf("scaled to %+v, want one upstream", inst)
	}
	addr, err := netip.ParseAddrPort(inst.Upstreams[0])
	if err != nil {
		t.Fatal(err)
	}
	if subnet := netip.MustParsePrefix(lab.Subnet); !subnet.Contains(addr.Addr()) {
		t.Errorf("upstream %s is not on the block's network %s (%s)", addr, lab.Network, subnet)
	}
	body, err := swarmlab.WaitHTTP(ctx, "http://"+inst.Upstreams[0]+"/")
	if err != nil {
		t.Fatal(err)
	}
	if body != "hello from site-cfg" {
		t.Errorf("the site answered %q", body)
	}
	tasks, err := lab.Tasks(ctx, svc.Spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 1 || tasks[0].NodeID != target.ID {
		t.Errorf("tasks %+v, want one on node %d (%s), as the block places them", tasks, target.Index, target.ID)
	}
	if err := r.Stop(ctx, spec.SiteID); err != nil {
		t.Fatal(err)
	}
}
