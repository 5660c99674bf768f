package provisioner

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"go.uber.org/zap/zaptest"

	"github.com/agistaffers/caddy-multitenant/internal/swarmlab"
	"github.com/agistaffers/caddy-multitenant/internal/testimage"
)

// swarmProv returns a started Provisioner on a Swarm runtime of lab in
// namespace ns, and the runtime.
func swarmProv(t *testing.T, lab *swarmlab.Lab, ns string, mod func(*Config), constraints ...string) (*Provisioner, *SwarmRuntime) {
	t.Helper()
	r := swarmRuntime(t, lab, ns, constraints...)
	cfg := Config{
		Runtime:      r,
		Namespace:    ns,
		StartTimeout: 60 * time.Second,
		StopTimeout:  time.Second,
		Logger:       zaptest.NewLogger(t),
	}
	if mod != nil {
		mod(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop() })
	return p, r
}

// serviceTasks returns the tasks the manager has of the site's service, of
// every state.
func serviceTasks(ctx context.Context, t *testing.T, lab *swarmlab.Lab, ns, siteID string) []swarm.Task {
	t.Helper()
	tasks, err := lab.ManagerClient().TaskList(ctx, swarm.TaskListOptions{
		Filters: filters.NewArgs(filters.Arg("service", containerName(ns, siteID)))})
	if err != nil {
		t.Fatal(err)
	}
	return tasks
}

// stopTaskNode stops the engine of the node the site's one task runs on,
// until the test ends, and returns the node.
func stopTaskNode(ctx context.Context, t *testing.T, lab *swarmlab.Lab, ns, siteID string) *swarmlab.Node {
	t.Helper()
	tasks := serviceTasks(ctx, t, lab, ns, siteID)
	if len(tasks) != 1 {
		t.Fatalf("tasks %+v, want 1", tasks)
	}
	lost := lab.NodeByID(tasks[0].NodeID)
	lab.StopNode(t, lost.Index)
	t.Cleanup(func() { lab.StartNode(t, lost.Index) })
	return lost
}

// TestProvisionerOnSwarm runs the lifecycle logic (lazy start, coalescing,
// idle stop, adoption, failover) on the Swarm runtime, one lab for all.
func TestProvisionerOnSwarm(t *testing.T) {
	lab := swarmlab.Start(t)
	image := testimage.Build(t, testimage.DefaultTag)
	lab.LoadImage(t, image)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	t.Run("the host's size is the largest node's", func(t *testing.T) {
		p, _ := swarmProv(t, lab, randID("ph"), nil)
		h, err := p.Host(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var want Host
		for _, n := range lab.Nodes {
			info, err := n.Client.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want.MemoryBytes, want.CPUs = max(want.MemoryBytes, info.MemTotal), max(want.CPUs, info.NCPU)
		}
		if h != want || h.MemoryBytes <= 0 || h.CPUs <= 0 {
			t.Errorf("host %+v, want the nodes' largest %+v", h, want)
		}
	})

	t.Run("first ensure scales 0 to 1 on the chosen node and coalesces", func(t *testing.T) {
		ns := randID("pa")
		target := lab.Nodes[2]
		p, r := swarmProv(t, lab, ns, nil, "node.hostname=="+target.Hostname)
		t.Cleanup(func() { r.Remove(context.Background(), "site-a", false) })
		spec := *swarmSpec(image, "site-a", "cust-a")

		const callers = 300
		var wg sync.WaitGroup
		upstreams := make([]string, callers)
		errs := make([]error, callers)
		for i := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				upstreams[i], errs[i] = p.Ensure(ctx, spec)
			}()
		}
		wg.Wait()
		for i := range callers {
			if errs[i] != nil || upstreams[i] != upstreams[0] {
				t.Fatalf("caller %d: %q, %v; want %q like caller 0", i, upstreams[i], errs[i], upstreams[0])
			}
		}
		if n := p.dockerStarts.Load(); n != 1 {
			t.Errorf("%d scale-ups for %d concurrent first requests, want 1", n, callers)
		}
		tasks := serviceTasks(ctx, t, lab, ns, "site-a")
		if len(tasks) != 1 || tasks[0].NodeID != target.ID {
			t.Errorf("tasks %+v, want one on %s", tasks, target.Hostname)
		}
		if code, body := swarmGet(t, "GET", "http://"+upstreams[0]+"/", ""); code != 200 || body != "hello from site-a" {
			t.Errorf("GET upstream: %d %q", code, body)
		}
		if st := p.Status("site-a"); st.State != StateRunning {
			t.Errorf("state %s, want running", st.State)
		}
	})

	t.Run("idle scales to 0 and the next ensure back to 1", func(t *testing.T) {
		ns := randID("pb")
		p, r := swarmProv(t, lab, ns, func(c *Config) { c.IdleTimeout = time.Second })
		t.Cleanup(func() { r.Remove(context.Background(), "site-b", false) })
		spec := *swarmSpec(image, "site-b", "cust-b")
		if _, err := p.Ensure(ctx, spec); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "the idle site scaled to 0", func() bool {
			svc := serviceOf(ctx, t, lab, containerName(ns, "site-b"))
			return *svc.Spec.Mode.Replicated.Replicas == 0 && p.Status("site-b").State == StateStopped
		})
		if _, ok := p.Upstream("site-b"); ok {
			t.Error("an upstream after the idle stop")
		}
		u, err := p.Ensure(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		if code, body := swarmGet(t, "GET", "http://"+u+"/", ""); code != 200 || body != "hello from site-b" {
			t.Errorf("GET upstream after the second start: %d %q", code, body)
		}
	})

	t.Run("a restart adopts the services and duplicates nothing", func(t *testing.T) {
		ns := randID("pc")
		p, r := swarmProv(t, lab, ns, nil)
		t.Cleanup(func() { r.Remove(context.Background(), "site-c", false) })
		spec := *swarmSpec(image, "site-c", "cust-c")
		u, err := p.Ensure(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		p.Stop()
		next, _ := swarmProv(t, lab, ns, nil)
		got, ok := next.Upstream("site-c")
		if !ok || got != u {
			t.Fatalf("adopted upstream %q, %v; want %q", got, ok, u)
		}
		if u2, err := next.Ensure(ctx, spec); err != nil || u2 != u {
			t.Fatalf("ensure after adoption: %q, %v; want %q", u2, err, u)
		}
		if n := next.dockerStarts.Load(); n != 0 {
			t.Errorf("%d scale-ups after adoption, want 0", n)
		}
		svcs, err := lab.ManagerClient().ServiceList(ctx, swarm.ServiceListOptions{
			Filters: filters.NewArgs(filters.Arg("label", LabelNamespace+"="+ns))})
		if err != nil {
			t.Fatal(err)
		}
		if tasks := serviceTasks(ctx, t, lab, ns, "site-c"); len(svcs) != 1 || len(tasks) != 1 {
			t.Errorf("%d services and %d tasks after the restart, want 1 and 1", len(svcs), len(tasks))
		}
	})

	t.Run("the autoscaler sets the service's replicas", func(t *testing.T) {
		ns := randID("pe")
		rec := &scaleRecorder{}
		p, r := swarmProv(t, lab, ns, fastScaling(rec))
		t.Cleanup(func() { r.Remove(context.Background(), "site-e", false) })
		spec := *swarmSpec(image, "site-e", "cust-e")
		spec.MaxReplicas, spec.TargetConcurrency = 2, 1
		if _, err := p.Ensure(ctx, spec); err != nil {
			t.Fatal(err)
		}
		release := hold(p, "site-e", 4)
		waitFor(t, 60*time.Second, "2 replicas", func() bool { return len(p.Upstreams("site-e")) == 2 })
		if svc := serviceOf(ctx, t, lab, containerName(ns, "site-e")); *svc.Spec.Mode.Replicated.Replicas != 2 {
			t.Errorf("service replicas %d, want 2", *svc.Spec.Mode.Replicated.Replicas)
		}
		hostnames := map[string]bool{}
		for _, u := range p.Upstreams("site-e") {
			code, body := swarmGet(t, "GET", "http://"+u+"/hostname", "")
			if code != 200 {
				t.Errorf("GET %s/hostname: %d %q", u, code, body)
			}
			hostnames[body] = true
		}
		if len(hostnames) != 2 {
			t.Errorf("hostnames %v, want 2 distinct tasks", hostnames)
		}
		release()
		waitFor(t, 60*time.Second, "back to 1 replica", func() bool {
			svc := serviceOf(ctx, t, lab, containerName(ns, "site-e"))
			return len(p.Upstreams("site-e")) == 1 && *svc.Spec.Mode.Replicated.Replicas == 1
		})
		if u := p.Upstreams("site-e"); len(u) == 1 {
			if code, _ := swarmGet(t, "GET", "http://"+u[0]+"/hostname", ""); code != 200 {
				t.Errorf("the remaining replica answers %d", code)
			}
		}
		// Recorded once Scale returns: the service's count is set at
		// its start, the task gone seconds later.
		waitFor(t, 20*time.Second, "2 scale events", func() bool { return len(rec.steps()) >= 2 })
		if got, want := rec.steps(), [][2]int{{1, 2}, {2, 1}}; !slices.Equal(got, want) {
			t.Errorf("scale events %v, want %v", got, want)
		}
	})

	t.Run("a lost node's site is rescheduled and served again", func(t *testing.T) {
		ns := randID("pd")
		p, r := swarmProv(t, lab, ns, nil, "node.role==worker")
		t.Cleanup(func() { r.Remove(context.Background(), "site-d", false) })
		spec := *swarmSpec(image, "site-d", "cust-d")
		if _, err := p.Ensure(ctx, spec); err != nil {
			t.Fatal(err)
		}
		lost := stopTaskNode(ctx, t, lab, ns, "site-d")
		// The runtime's events hide the lost task; the next request waits
		// for its replacement.
		waitFor(t, 60*time.Second, "the lost task hidden from the hot path", func() bool {
			_, ok := p.Upstream("site-d")
			return !ok
		})
		u, err := p.Ensure(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		if code, body := swarmGet(t, "GET", "http://"+u+"/", ""); code != 200 || !strings.Contains(body, "site-d") {
			t.Errorf("GET the rescheduled task: %d %q", code, body)
		}
		var moved bool
		for _, task := range serviceTasks(ctx, t, lab, ns, "site-d") {
			moved = moved || (task.Status.State == swarm.TaskStateRunning && task.NodeID != lost.ID)
		}
		if !moved {
			t.Error("no task runs on another node")
		}
	})

	// A start right after the node is lost, before the manager has noticed
	// (it lists the lost task as running for a few seconds): the start
	// must wait for the task Swarm puts in its place, not probe the lost
	// one until the start timeout (and then scale the site to 0).
	t.Run("a start racing a node's loss waits for the replacement task", func(t *testing.T) {
		ns := randID("pe")
		p, r := swarmProv(t, lab, ns, nil, "node.role==worker")
		t.Cleanup(func() { r.Remove(context.Background(), "site-e", false) })
		spec := *swarmSpec(image, "site-e", "cust-e")
		u, err := p.Ensure(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		lost := stopTaskNode(ctx, t, lab, ns, "site-e")
		p.Unreachable("site-e", u) // what Caddy reports when a dial to it fails
		begun := time.Now()
		u2, err := p.Ensure(ctx, spec)
		if err != nil {
			t.Fatalf("ensure after the loss: %v", err)
		}
		t.Logf("ensure after the loss returned after %s", time.Since(begun).Round(time.Millisecond))
		if took := time.Since(begun); took > 30*time.Second {
			t.Errorf("ensure after the loss took %s, want the replacement's start (seconds), not the start timeout", took)
		}
		if code, body := swarmGet(t, "GET", "http://"+u2+"/", ""); code != 200 || body != "hello from site-e" {
			t.Errorf("GET the replacement %s: %d %q", u2, code, body)
		}
		for _, task := range serviceTasks(ctx, t, lab, ns, "site-e") {
			if task.Status.State == swarm.TaskStateRunning && task.DesiredState == swarm.TaskStateRunning && task.NodeID == lost.ID {
				t.Errorf("task %s still wanted on the lost node", task.ID)
			}
		}
	})
}
