package provisioner

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"go.uber.org/zap/zaptest"

	"github.com/agistaffers/caddy-multitenant/internal/swarmlab"
	"github.com/agistaffers/caddy-multitenant/internal/testimage"
)

// swarmRuntime returns a runtime on lab's manager in namespace ns, dialing
// tasks on the lab's overlay (routed from here), with constraints.
func swarmRuntime(t *testing.T, lab *swarmlab.Lab, ns string, constraints ...string) *SwarmRuntime {
	t.Helper()
	r, err := NewSwarmRuntime(SwarmConfig{
		Client:          lab.ManagerClient(),
		Namespace:       ns,
		Network:         lab.Network,
		Constraints:     constraints,
		StopGracePeriod: time.Second,
		NodeClient: func(hostname string) (*client.Client, error) {
			for _, n := range lab.Nodes {
				if n.Hostname == hostname {
					return n.Client, nil
				}
			}
			return nil, fmt.Errorf("no lab node %s", hostname)
		},
		Logger: zaptest.NewLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func swarmSpec(image, siteID, customer string) *Spec {
	return &Spec{
		SiteID: siteID, Image: image, Port: 8080, CustomerID: customer,
		Env:         map[string]string{"SITE_NAME": siteID},
		MemoryBytes: 64 << 20, NanoCPUs: 500_000_000, PidsLimit: 64,
		TemplateSlug: "static", TemplateVersion: 1,
	}
}

// get returns url's status and body, dialed afresh.
func swarmGet(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func serviceOf(ctx context.Context, t *testing.T, lab *swarmlab.Lab, name string) swarm.Service {
	t.Helper()
	svc, _, err := lab.ManagerClient().ServiceInspectWithRaw(ctx, name, swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// overlayGone asserts the overlay id goes within a few seconds: the
// manager removes it at once, its nodes' copies (and their load-balancer
// endpoints) a moment later.
func overlayGone(ctx context.Context, t *testing.T, lab *swarmlab.Lab, id string) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if _, err = lab.ManagerClient().NetworkInspect(ctx, id, network.InspectOptions{Scope: "swarm"}); isNotFound(err) {
			return
		}
	}
	t.Errorf("the customer's overlay %s after its last service went: %v, want not found", id, err)
}

// TestSwarmRuntime runs every case on one lab: bringing one up costs more
// than most cases.
func TestSwarmRuntime(t *testing.T) {
	lab := swarmlab.Start(t)
	image := testimage.Build(t, testimage.DefaultTag)
	lab.LoadImage(t, image)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns := randID("sw")

	t.Run("scale up on a chosen node", func(t *testing.T) {
		target := lab.Nodes[2]
		r := swarmRuntime(t, lab, ns+"a", "node.hostname=="+target.Hostname)
		evctx, stopEvents := context.WithCancel(ctx)
		events, err := r.Events(evctx)
		if err != nil {
			t.Fatal(err)
		}
		var evmu sync.Mutex
		var states []InstanceState // site-a's
		var evwg sync.WaitGroup
		evwg.Add(1)
		go func() {
			defer evwg.Done()
			for ev := range events {
				if ev.SiteID == "site-a" {
					evmu.Lock()
					states = append(states, ev.State)
					evmu.Unlock()
				}
			}
		}()

		spec := swarmSpec(image, "site-a", "cust-a")
		inst, err := r.Ensure(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		if !inst.Created || inst.State != InstanceStopped || inst.Replicas != 0 || inst.SpecHash != spec.hash() {
			t.Fatalf("ensured %+v, want a created, stopped instance of spec %s", inst, spec.hash())
		}
		svc := serviceOf(ctx, t, lab, containerName(ns+"a", "site-a"))
		if got := svc.Spec.EndpointSpec.Mode; got != swarm.ResolutionModeDNSRR {
			t.Errorf("endpoint mode %q, want dnsrr", got)
		}
		if lim := svc.Spec.TaskTemplate.Resources.Limits; lim.MemoryBytes != 64<<20 || lim.NanoCPUs != 500_000_000 || lim.Pids != 64 {
			t.Errorf("limits %+v, want the spec's", lim)
		}
		if svc.Spec.Labels[LabelSpec] != spec.hash() || svc.Spec.Labels[LabelCustomer] != "cust-a" {
			t.Errorf("labels %v", svc.Spec.Labels)
		}
		overlay, err := lab.ManagerClient().NetworkInspect(ctx, networkName(ns+"a", "cust-a", false), network.InspectOptions{})
		if err != nil {
			t.Fatalf("the customer's overlay: %v", err)
		}
		if overlay.Driver != "overlay" || !overlay.Attachable || overlay.Internal {
			t.Errorf("customer overlay %s: driver %s attachable %v internal %v", overlay.Name, overlay.Driver, overlay.Attachable, overlay.Internal)
		}
		if !slices.ContainsFunc(svc.Spec.TaskTemplate.Networks, func(n swarm.NetworkAttachmentConfig) bool { return n.Target == overlay.ID }) {
			t.Errorf("service networks %+v lack the customer's overlay %s", svc.Spec.TaskTemplate.Networks, overlay.ID)
		}

		begun := time.Now()
		inst, err = r.Scale(ctx, "site-a", 1)
		if err != nil {
			t.Fatal(err)
		}
		scaled := time.Since(begun)
		if inst.State != InstanceRunning || len(inst.Upstreams) != 1 {
			t.Fatalf("scaled to %+v, want one running upstream", inst)
		}
		body, err := swarmlab.WaitHTTP(ctx, "http://"+inst.Upstreams[0]+"/")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("scale 0->1 through SwarmRuntime: task running with its IP in %v, first 200 from %s after %v",
			scaled.Round(time.Millisecond), inst.Upstreams[0], time.Since(begun).Round(time.Millisecond))
		if body != "hello from site-a" {
			t.Errorf("upstream answered %q", body)
		}
		tasks, err := lab.Tasks(ctx, svc.Spec.Name)
		if err != nil {
			t.Fatal(err)
		}
		if len(tasks) != 1 || tasks[0].NodeID != target.ID {
			t.Errorf("tasks %+v, want one on node %d (%s)", tasks, target.Index, target.ID)
		}

		again, err := r.Ensure(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		if again.Created || again.ID != inst.ID || !slices.Equal(again.Upstreams, inst.Upstreams) {
			t.Errorf("Ensure of a running site gave %+v, want %+v unchanged", again, inst)
		}
		logs, err := r.Logs(ctx, "site-a", 0, false)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(logs)
		logs.Close()
		if err != nil || !strings.Contains(string(b), "listening on :8080") {
			t.Errorf("logs: %q (%v)", b, err)
		}

		// The events see it run (a poll under load can take longer than
		// the steps above).
		waitFor(t, 10*time.Second, "a running event of site-a", func() bool {
			evmu.Lock()
			defer evmu.Unlock()
			return slices.Contains(states, InstanceRunning)
		})
		if err := r.Stop(ctx, "site-a"); err != nil {
			t.Fatal(err)
		}
		stopped, err := r.Inspect(ctx, "site-a")
		if err != nil {
			t.Fatal(err)
		}
		if stopped.State != InstanceStopped || len(stopped.Upstreams) != 0 || stopped.Replicas != 0 {
			t.Errorf("after Stop: %+v, want stopped without upstreams", stopped)
		}
		if code, _ := swarmGet(t, http.MethodGet, "http://"+inst.Upstreams[0]+"/", ""); code != 0 {
			t.Errorf("the stopped task's address still answers %d", code)
		}
		if err := r.Stop(ctx, "site-a"); err != nil {
			t.Errorf("stopping a stopped site: %v", err)
		}

		// The events saw it run and stop.
		lastState := func() InstanceState {
			evmu.Lock()
			defer evmu.Unlock()
			if len(states) == 0 {
				return ""
			}
			return states[len(states)-1]
		}
		for deadline := time.Now().Add(5 * time.Second); lastState() != InstanceStopped && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		stopEvents()
		evwg.Wait()
		if !slices.Contains(states, InstanceRunning) || states[len(states)-1] != InstanceStopped {
			t.Errorf("events of site-a: %v, want running then ending stopped", states)
		}

		if err := r.Remove(ctx, "site-a", false); err != nil {
			t.Fatal(err)
		}
		if gone, err := r.Inspect(ctx, "site-a"); err != nil || gone.State != InstanceAbsent {
			t.Errorf("after Remove: %+v (%v), want absent", gone, err)
		}
		overlayGone(ctx, t, lab, overlay.ID)
		if err := r.Remove(ctx, "site-a", true); err != nil {
			t.Errorf("removing a removed site: %v", err)
		}
	})

	t.Run("concurrent scale-ups give one task, adopted after a restart", func(t *testing.T) {
		r := swarmRuntime(t, lab, ns+"b")
		spec := swarmSpec(image, "site-b", "")
		const callers = 50
		insts := make([]RuntimeInstance, callers)
		errs := make([]error, callers)
		var wg sync.WaitGroup
		for i := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, errs[i] = r.Ensure(ctx, spec); errs[i] == nil {
					insts[i], errs[i] = r.Scale(ctx, "site-b", 1)
				}
			}()
		}
		wg.Wait()
		for i := range callers {
			if errs[i] != nil {
				t.Fatalf("caller %d: %v", i, errs[i])
			}
			if insts[i].ID != insts[0].ID || len(insts[i].Upstreams) != 1 || insts[i].Upstreams[0] != insts[0].Upstreams[0] {
				t.Fatalf("caller %d got %+v, caller 0 %+v", i, insts[i], insts[0])
			}
		}
		svcs, err := lab.ManagerClient().ServiceList(ctx, swarm.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("label", LabelSite+"=site-b"))})
		if err != nil {
			t.Fatal(err)
		}
		tasks, err := lab.Tasks(ctx, containerName(ns+"b", "site-b"))
		if err != nil {
			t.Fatal(err)
		}
		if len(svcs) != 1 || len(tasks) != 1 {
			t.Fatalf("%d services, %d tasks; want one of each", len(svcs), len(tasks))
		}
		if body, err := swarmlab.WaitHTTP(ctx, "http://"+insts[0].Upstreams[0]+"/"); err != nil || body != "hello from site-b" {
			t.Fatalf("site-b's upstream: %q (%v)", body, err)
		}

		// A process restarted: a fresh runtime finds it as it is.
		fresh := swarmRuntime(t, lab, ns+"b")
		list, err := fresh.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 1 || list[0].SiteID != "site-b" || list[0].SpecHash != spec.hash() || list[0].State != InstanceRunning ||
			!slices.Equal(list[0].Upstreams, insts[0].Upstreams) || list[0].Port != 8080 {
			t.Fatalf("adopted %+v, want site-b running at %v with spec %s", list, insts[0].Upstreams, spec.hash())
		}
		inst, err := fresh.Ensure(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		if inst.Created || inst.ID != insts[0].ID {
			t.Errorf("Ensure after the restart: %+v, want the adopted service", inst)
		}
		if inst, err = fresh.Scale(ctx, "site-b", 1); err != nil || !slices.Equal(inst.Upstreams, insts[0].Upstreams) {
			t.Errorf("Scale(1) after the restart: %+v (%v), want the same task", inst, err)
		}
		if tasks, err = lab.Tasks(ctx, containerName(ns+"b", "site-b")); err != nil || len(tasks) != 1 {
			t.Errorf("tasks after the restart: %+v (%v), want the one", tasks, err)
		}
		// Another namespace's runtime sees none of it.
		if other, err := swarmRuntime(t, lab, ns+"x").List(ctx); err != nil || len(other) != 0 {
			t.Errorf("another namespace lists %+v (%v)", other, err)
		}

		// A changed spec updates the service in place.
		spec.Env["EXTRA"] = "1"
		inst, err = fresh.Ensure(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		if inst.Created || inst.ID != insts[0].ID || inst.SpecHash != spec.hash() || inst.Replicas != 1 {
			t.Errorf("Ensure of a changed spec: %+v, want the service updated to %s, still 1 replica", inst, spec.hash())
		}
	})

	t.Run("a volume stays on its first node", func(t *testing.T) {
		r := swarmRuntime(t, lab, ns+"c", "node.role==worker")
		spec := swarmSpec(image, "site-c", "cust-c")
		spec.DataPath = "/data"
		if _, err := r.Ensure(ctx, spec); err != nil {
			t.Fatal(err)
		}
		step := time.Now()
		inst, err := r.Scale(ctx, "site-c", 1)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("first scale 0->1 (and the pin recorded): %v", time.Since(step).Round(time.Millisecond))
		name := containerName(ns+"c", "site-c")
		tasks, err := lab.Tasks(ctx, name)
		if err != nil || len(tasks) != 1 {
			t.Fatalf("tasks %+v (%v)", tasks, err)
		}
		first := lab.NodeByID(tasks[0].NodeID)
		if first == nil || inst.Node != first.Hostname {
			t.Fatalf("pinned to %q, task on %+v", inst.Node, first)
		}
		url := "http://" + inst.Upstreams[0] + "/file?name=kept"
		if _, err := swarmlab.WaitHTTP(ctx, "http://"+inst.Upstreams[0]+"/"); err != nil {
			t.Fatal(err)
		}
		if code, body := swarmGet(t, http.MethodPut, url, "data of site-c"); code != http.StatusCreated {
			t.Fatalf("writing a file: %d %s", code, body)
		}
		step = time.Now()
		if err := r.Stop(ctx, "site-c"); err != nil {
			t.Fatal(err)
		}
		t.Logf("stop: %v", time.Since(step).Round(time.Millisecond))
		for range 2 {
			step = time.Now()
			if inst, err = r.Scale(ctx, "site-c", 1); err != nil {
				t.Fatal(err)
			}
			t.Logf("pinned scale 0->1: %v", time.Since(step).Round(time.Millisecond))
			svc := serviceOf(ctx, t, lab, name)
			if !slices.Contains(svc.Spec.TaskTemplate.Placement.Constraints, "node.hostname=="+first.Hostname) {
				t.Errorf("constraints %v lack the pin to %s", svc.Spec.TaskTemplate.Placement.Constraints, first.Hostname)
			}
			if tasks, err = lab.Tasks(ctx, name); err != nil || len(tasks) != 1 || tasks[0].NodeID != first.ID {
				t.Errorf("tasks %+v (%v), want one on node %d", tasks, err, first.Index)
			}
			if _, err := swarmlab.WaitHTTP(ctx, "http://"+inst.Upstreams[0]+"/"); err != nil {
				t.Fatal(err)
			}
			url = "http://" + inst.Upstreams[0] + "/file?name=kept"
			if code, body := swarmGet(t, http.MethodGet, url, ""); code != 200 || body != "data of site-c" {
				t.Errorf("the file after a re-scale: %d %q", code, body)
			}
			step = time.Now()
			if err := r.Stop(ctx, "site-c"); err != nil {
				t.Fatal(err)
			}
			t.Logf("stop: %v", time.Since(step).Round(time.Millisecond))
		}
		vol := volumeName(ns+"c", "site-c")
		if _, err := first.Client.VolumeInspect(ctx, vol); err != nil {
			t.Fatalf("volume %s on node %d: %v", vol, first.Index, err)
		}
		step = time.Now()
		if err := r.Remove(ctx, "site-c", true); err != nil {
			t.Fatal(err)
		}
		t.Logf("remove with purge: %v", time.Since(step).Round(time.Millisecond))
		if _, _, err := lab.ManagerClient().ServiceInspectWithRaw(ctx, name, swarm.ServiceInspectOptions{}); !isNotFound(err) {
			t.Errorf("service after Remove: %v, want not found", err)
		}
		if _, err := first.Client.VolumeInspect(ctx, vol); !isNotFound(err) {
			t.Errorf("volume %s after the purge: %v, want not found", vol, err)
		}
	})

	t.Run("dialed on the customer's own overlay", func(t *testing.T) { testOnCustomerOverlays(ctx, t, lab, image) })

	t.Run("dialed at a port published on its node", func(t *testing.T) {
		target := lab.Nodes[1]
		r, err := NewSwarmRuntime(SwarmConfig{
			Client: lab.ManagerClient(), Namespace: ns + "h", Dial: DialHostPort,
			Constraints: []string{"node.hostname==" + target.Hostname}, StopGracePeriod: time.Second,
			Logger: zaptest.NewLogger(t),
		})
		if err != nil {
			t.Fatal(err)
		}
		spec := swarmSpec(image, "site-h", "cust-h")
		if _, err := r.Ensure(ctx, spec); err != nil {
			t.Fatal(err)
		}
		svc := serviceOf(ctx, t, lab, containerName(ns+"h", "site-h"))
		if ports := svc.Spec.EndpointSpec.Ports; len(ports) != 1 || ports[0].PublishMode != swarm.PortConfigPublishModeHost ||
			ports[0].TargetPort != 8080 {
			t.Errorf("endpoint ports %+v, want 8080 published in host mode", ports)
		}
		inst, err := r.Scale(ctx, "site-h", 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(inst.Running) != 1 {
			t.Fatalf("running %+v, want 1 replica", inst.Running)
		}
		h, port, err := net.SplitHostPort(inst.Running[0].Upstream)
		if err != nil || h != target.Addr || port == "8080" || inst.Running[0].Probe != "" {
			t.Errorf("replica %+v: want an upstream at %s, on a port the engine picked, probed as published", inst.Running[0], target.Addr)
		}
		// Dialed from here, outside every overlay.
		waitFor(t, 20*time.Second, "the published port answers", func() bool {
			st, body := swarmGet(t, http.MethodGet, "http://"+inst.Running[0].Upstream+"/", "")
			return st == http.StatusOK && body == "hello from site-h"
		})
		// Switching back to task IPs updates the service.
		r2 := swarmRuntime(t, lab, ns+"h")
		if _, err := r2.Ensure(ctx, spec); err != nil {
			t.Fatal(err)
		}
		if svc := serviceOf(ctx, t, lab, containerName(ns+"h", "site-h")); len(svc.Spec.EndpointSpec.Ports) != 0 {
			t.Errorf("after dial task_ip: endpoint ports %+v, want none", svc.Spec.EndpointSpec.Ports)
		}
		if err := r2.Remove(ctx, "site-h", false); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("dialed by task IP with a service VIP too", func(t *testing.T) {
		r, err := NewSwarmRuntime(SwarmConfig{
			Client: lab.ManagerClient(), Namespace: ns + "v", Network: lab.Network, EndpointMode: "vip",
			StopGracePeriod: time.Second, Logger: zaptest.NewLogger(t),
		})
		if err != nil {
			t.Fatal(err)
		}
		spec := swarmSpec(image, "site-v", "cust-v")
		if _, err := r.Ensure(ctx, spec); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Remove(context.Background(), "site-v", false) })
		inst, err := r.Scale(ctx, "site-v", 1)
		if err != nil {
			t.Fatal(err)
		}
		svc := serviceOf(ctx, t, lab, containerName(ns+"v", "site-v"))
		if svc.Spec.EndpointSpec.Mode != swarm.ResolutionModeVIP || len(svc.Endpoint.VirtualIPs) == 0 {
			t.Errorf("endpoint %+v / %+v, want a VIP service", svc.Spec.EndpointSpec, svc.Endpoint)
		}
		if len(inst.Upstreams) != 1 {
			t.Fatalf("upstreams %v, want 1", inst.Upstreams)
		}
		for _, vip := range svc.Endpoint.VirtualIPs {
			if ip, _, _ := net.ParseCIDR(vip.Addr); ip != nil && strings.HasPrefix(inst.Upstreams[0], ip.String()+":") {
				t.Errorf("upstream %s is the service's VIP, want the task's own IP", inst.Upstreams[0])
			}
		}
		waitFor(t, 20*time.Second, "the task answers at its own IP", func() bool {
			st, body := swarmGet(t, http.MethodGet, "http://"+inst.Upstreams[0]+"/", "")
			return st == http.StatusOK && body == "hello from site-v"
		})
	})

	t.Run("a rejected task fails Scale with its reason", func(t *testing.T) {
		r := swarmRuntime(t, lab, ns+"d")
		spec := swarmSpec("caddy-multitenant-no-such-image:1", "site-d", "")
		if _, err := r.Ensure(ctx, spec); err != nil {
			t.Fatal(err)
		}
		sctx, scancel := context.WithTimeout(ctx, 20*time.Second)
		defer scancel()
		_, err := r.Scale(sctx, "site-d", 1)
		if err == nil || sctx.Err() != nil {
			t.Fatalf("Scale of a missing image: %v (ctx %v), want the task's rejection before the timeout", err, sctx.Err())
		}
		t.Logf("Scale of a missing image: %v", err)
	})
}

// labGateway makes customer overlays reachable from here as the lab's
// own overlay is: its gateway container (node 1) attached to each, a
// MASQUERADE onto it there, a route to its subnet here. It plays Caddy's
// container being attached to its customers' overlays.
type labGateway struct{ lab *swarmlab.Lab }

func (g labGateway) names() (gw, link, via string) {
	id := g.lab.ID
	return fmt.Sprintf("sl%d-gw", id), fmt.Sprintf("sl%dg", id), fmt.Sprintf("198.18.%d.2", 100+id)
}

func (g labGateway) attach(ctx context.Context, id, name string, subnet netip.Prefix) error {
	gw, link, via := g.names()
	cli := g.lab.Nodes[0].Client
	if err := cli.NetworkConnect(ctx, id, gw, nil); err != nil && !strings.Contains(err.Error(), "already exists") {
		return err
	}
	c, err := cli.ContainerInspect(ctx, gw)
	if err != nil {
		return err
	}
	rule := fmt.Sprintf("-s 198.18.%d.0/30 -d %s -j MASQUERADE", 100+g.lab.ID, subnet)
	script := fmt.Sprintf(`iptables -t nat -C POSTROUTING %[1]s 2>/dev/null || iptables -t nat -A POSTROUTING %[1]s
		for f in /proc/sys/net/ipv4/neigh/*/retrans_time_ms; do echo 100 >"$f"; done`, rule)
	if out, err := exec.CommandContext(ctx, "nsenter", fmt.Sprintf("--net=/proc/%d/ns/net", c.State.Pid), "sh", "-c", script).CombinedOutput(); err != nil {
		return fmt.Errorf("masquerading onto %s: %v: %s", name, err, out)
	}
	if out, err := exec.CommandContext(ctx, "ip", "route", "replace", subnet.String(), "via", via, "dev", link).CombinedOutput(); err != nil {
		return fmt.Errorf("routing %s: %v: %s", subnet, err, out)
	}
	return nil
}

func (g labGateway) release(ctx context.Context, id, name string, subnet netip.Prefix) error {
	gw, _, _ := g.names()
	if err := g.lab.Nodes[0].Client.NetworkDisconnect(ctx, id, gw, true); err != nil && !isNotFound(err) &&
		!strings.Contains(err.Error(), "is not connected") {
		return err
	}
	exec.CommandContext(ctx, "ip", "route", "del", subnet.String()).Run() // gone with the link anyway
	return nil
}

// testOnCustomerOverlays: without a shared Network, tasks are dialed on
// their customer's overlay alone, which Caddy (here the lab's gateway) is
// attached to.
func testOnCustomerOverlays(ctx context.Context, t *testing.T, lab *swarmlab.Lab, image string) {
	g := labGateway{lab}
	target := lab.Nodes[1]
	r, err := NewSwarmRuntime(SwarmConfig{
		Client:           lab.ManagerClient(),
		Namespace:        randID("so"),
		Constraints:      []string{"node.hostname==" + target.Hostname},
		StopGracePeriod:  time.Second,
		SubnetPool:       netip.MustParsePrefix(fmt.Sprintf("198.18.%d.0/24", 200+lab.ID)),
		SubnetBits:       27,
		OnNetwork:        g.attach,
		OnNetworkRelease: g.release,
		Logger:           zaptest.NewLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	spec := swarmSpec(image, "site-o", "cust-o")
	if _, err := r.Ensure(ctx, spec); err != nil {
		t.Fatal(err)
	}
	overlay, err := lab.ManagerClient().NetworkInspect(ctx, networkName(r.cfg.Namespace, "cust-o", false), network.InspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	subnet := subnetOf(&network.Summary{IPAM: overlay.IPAM})
	if want := netip.MustParsePrefix(fmt.Sprintf("198.18.%d.0/27", 200+lab.ID)); subnet != want {
		t.Errorf("customer overlay on %s, want the pool's first /27 %s", subnet, want)
	}
	for round := range 3 {
		begun := time.Now()
		inst, err := r.Scale(ctx, "site-o", 1)
		if err != nil {
			t.Fatal(err)
		}
		scaled := time.Since(begun)
		if len(inst.Upstreams) != 1 {
			t.Fatalf("upstreams %v", inst.Upstreams)
		}
		ap, err := netip.ParseAddrPort(inst.Upstreams[0])
		if err != nil || !subnet.Contains(ap.Addr()) {
			t.Fatalf("upstream %s not on the customer's overlay %s (%v)", inst.Upstreams[0], subnet, err)
		}
		body, err := swarmlab.WaitHTTP(ctx, "http://"+inst.Upstreams[0]+"/")
		if err != nil || body != "hello from site-o" {
			t.Fatalf("%q (%v)", body, err)
		}
		t.Logf("round %d: scale 0->1 through SwarmRuntime on the customer's overlay only: task running in %v, first 200 after %v",
			round, scaled.Round(time.Millisecond), time.Since(begun).Round(time.Millisecond))
		if err := r.Stop(ctx, "site-o"); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Remove(ctx, "site-o", false); err != nil {
		t.Fatal(err)
	}
	overlayGone(ctx, t, lab, overlay.ID)
	if out, _ := exec.Command("ip", "route", "show", subnet.String()).Output(); len(strings.TrimSpace(string(out))) != 0 {
		t.Errorf("route to %s left: %s", subnet, out)
	}
}
