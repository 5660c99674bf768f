package main

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/agistaffers/caddy-multitenant/provisioner"
)

// swarmCold measures a Swarm cold start through Caddy against the lab's
// floor, interleaved in one run, for each of -sites (sub=id,…):
//
//   - caddy: the site's service is scaled to 0 through the manager's API
//     (Caddy sees it stop), then one GET through Caddy on a new
//     connection, timed until the site's content has arrived: Caddy's
//     scale 0→1, the wait for the task and its readiness, the proxying;
//   - twin:  a service made from the site's own spec (same image, env,
//     resources, networks, placement and a volume of its own), outside
//     Caddy's namespace, scaled 0→1 through the API, its task's IP on the
//     lab overlay read from the API, and GET / polled every millisecond
//     until the content arrives: the floor of the same service;
//   - bare:  the same for a service of the image alone on the lab overlay
//     (no customer overlay, no volume, no limits): bench/swarm-floor.sh's
//     floor, measured here in the same run.
func swarmCold(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("swarmcold", flag.ExitOnError)
	caddy := fs.String("caddy", "", "Caddy HTTP address")
	admin := fs.String("admin", "", "Caddy admin address")
	schema := fs.String("schema", "", "namespace")
	sitesFlag := fs.String("sites", "", "sub=id,… of the sites (benchtool setup's output)")
	manager := fs.String("manager", "", "DOCKER_HOST of a manager of the swarm")
	network := fs.String("network", "", "the overlay task IPs are reached on (the swarm block's network)")
	rounds := fs.Int("rounds", 5, "rounds; each cold-starts every site once, and each floor as often")
	settle := fs.Duration("settle", 300*time.Millisecond, "pause after a stop before the next start")
	fs.Parse(args)
	if *caddy == "" || *admin == "" || *schema == "" || *sitesFlag == "" || *manager == "" || *network == "" {
		return fmt.Errorf("-caddy, -admin, -schema, -sites, -manager and -network are required")
	}
	type site struct{ sub, id, host, want, service string }
	var sites []*site
	for _, kv := range strings.Split(*sitesFlag, ",") {
		sub, id, ok := strings.Cut(kv, "=")
		if !ok || sub == "" || id == "" {
			return fmt.Errorf("-sites: %q is not sub=id", kv)
		}
		sites = append(sites, &site{sub: sub, id: id, host: sub + "." + BaseDomain, want: "hello from " + sub})
	}

	cli, err := client.NewClientWithOpts(client.WithHost(*manager), client.WithAPIVersionNegotiation())
	if err != nil {
		return fmt.Errorf("manager client: %w", err)
	}
	defer cli.Close()

	// Each site's first start (the service created, its volume made and
	// its node recorded) and a first cycle (the node pin added at the
	// next scale-up) are not measured.
	for _, s := range sites {
		if err := waitOK(ctx, []string{"-caddy", *caddy, "-host", s.host}); err != nil {
			return err
		}
		svc, err := siteService(ctx, cli, *schema, s.id)
		if err != nil {
			return err
		}
		s.service = svc.Spec.Name
		if _, err := caddyColdStart(ctx, cli, *caddy, s.host, s.want, s.service, *settle); err != nil {
			return fmt.Errorf("%s, unmeasured first cycle: %w", s.sub, err)
		}
	}
	svc, err := siteService(ctx, cli, *schema, sites[0].id)
	if err != nil {
		return err
	}
	tasks, err := serviceTasks(ctx, cli, svc.ID, *network)
	if err != nil || len(tasks) != 1 {
		return fmt.Errorf("site %s's tasks: %v %v, want one", sites[0].sub, tasks, err)
	}
	node, _, err := cli.NodeInspectWithRaw(ctx, tasks[0].nodeID)
	if err != nil {
		return fmt.Errorf("inspecting the site's node: %w", err)
	}
	twin, err := createServiceTwin(ctx, cli, svc, "bench-twin-"+*schema, *schema)
	if err != nil {
		return err
	}
	bare, err := createBareService(ctx, cli, svc, "bench-bare-"+*schema, *schema, *network, node.Description.Hostname)
	if err != nil {
		return err
	}
	port := 8080
	if p, err := strconv.Atoi(svc.Spec.Labels[provisioner.LabelPort]); err == nil {
		port = p
	}
	for _, f := range []string{twin, bare} { // their first start, unmeasured
		if _, err := floorScaleUp(ctx, cli, f, *network, port, sites[0].want, *settle); err != nil {
			return fmt.Errorf("%s, unmeasured first start: %w", f, err)
		}
	}
	fmt.Printf("sites %d, on node %s; twin service %s, bare service %s, overlay %s\n",
		len(sites), node.Description.Hostname, twin, bare, *network)

	startsBefore, err := metric(ctx, *admin, coldStartsStarted)
	if err != nil {
		return err
	}
	kinds := []string{"caddy", "twin", "bare"}
	results := map[string][]time.Duration{}
	for r := range *rounds {
		for i, s := range sites {
			n := r*len(sites) + i
			for j := range kinds {
				kind := kinds[(n+j)%len(kinds)] // rotate, so no kind always follows another
				var d time.Duration
				switch kind {
				case "caddy":
					d, err = caddyColdStart(ctx, cli, *caddy, s.host, s.want, s.service, *settle)
				case "twin":
					d, err = floorScaleUp(ctx, cli, twin, *network, port, sites[0].want, *settle)
				case "bare":
					d, err = floorScaleUp(ctx, cli, bare, *network, port, sites[0].want, *settle)
				}
				if err != nil {
					return fmt.Errorf("round %d, %s, %s: %w", r+1, s.sub, kind, err)
				}
				results[kind] = append(results[kind], d)
			}
			fmt.Printf("round %d %-8s caddy %7.1f ms   twin %7.1f ms   bare %7.1f ms\n", r+1, s.sub,
				ms(results["caddy"][n]), ms(results["twin"][n]), ms(results["bare"][n]))
		}
	}
	startsAfter, err := metric(ctx, *admin, coldStartsStarted)
	if err != nil {
		return err
	}

	fmt.Println()
	fmt.Printf("%-6s %5s %8s %8s %8s %8s %8s %8s   (ms)\n", "", "n", "min", "p50", "p90", "p99", "max", "paired")
	paired := func(kind string) time.Duration { // median of the per-start differences to twin
		var d []time.Duration
		for i := range results[kind] {
			d = append(d, results[kind][i]-results["twin"][i])
		}
		return median(sorted(d))
	}
	for _, kind := range kinds {
		s := sorted(results[kind])
		fmt.Printf("%-6s %5d %8.1f %8.1f %8.1f %8.1f %8.1f %+8.1f\n", kind, len(s),
			ms(s[0]), ms(median(s)), ms(pct(s, 0.9)), ms(pct(s, 0.99)), ms(s[len(s)-1]), ms(paired(kind)))
	}
	fmt.Println("caddy: service scaled to 0 by the API, first GET through Caddy (its scale 0->1, task, readiness, proxy);")
	fmt.Println("twin: a service of the site's own spec, API scale 0->1 + its task IP + GET / polled every ms;")
	fmt.Println("bare: the image alone on the lab overlay, the same (bench/swarm-floor.sh's floor);")
	fmt.Println("paired: median of the per-start differences to twin")
	c, t, b := median(sorted(results["caddy"])), median(sorted(results["twin"])), median(sorted(results["bare"]))
	fmt.Printf("\nSwarm cold start p50: caddy %.1f ms, twin %.1f ms (%+.1f ms), bare %.1f ms (%+.1f ms)\n",
		ms(c), ms(t), ms(c-t), ms(b), ms(c-b))
	want := *rounds * len(sites)
	fmt.Printf("caddy_tenants_cold_starts_total{result=\"started\"} rose by %.0f (want %d)\n", startsAfter-startsBefore, want)
	if startsAfter-startsBefore != float64(want) {
		return fmt.Errorf("expected %d cold starts, the metric says %.0f", want, startsAfter-startsBefore)
	}
	return nil
}

// siteService returns the one Swarm service of site in namespace.
func siteService(ctx context.Context, cli *client.Client, namespace, siteID string) (swarm.Service, error) {
	list, err := cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: filters.NewArgs(
		filters.Arg("label", provisioner.LabelNamespace+"="+namespace),
		filters.Arg("label", provisioner.LabelSite+"="+siteID),
	)})
	if err != nil {
		return swarm.Service{}, fmt.Errorf("listing services of site %s: %w", siteID, err)
	}
	if len(list) != 1 {
		return swarm.Service{}, fmt.Errorf("site %s has %d Swarm services, want 1 (does Caddy run it on the swarm?)", siteID, len(list))
	}
	return list[0], nil
}

// caddyColdStart scales the site's service to 0 behind Caddy's back,
// waits until Caddy sees it stopped, and times one GET through Caddy.
func caddyColdStart(ctx context.Context, cli *client.Client, caddy, host, want, service string, settle time.Duration) (time.Duration, error) {
	if err := scaleService(ctx, cli, service, 0); err != nil {
		return 0, err
	}
	if err := waitServiceStopped(ctx, cli, service); err != nil {
		return 0, err
	}
	if err := waitCaddySeesStopped(ctx, caddy, host); err != nil {
		return 0, err
	}
	time.Sleep(settle)
	t0 := time.Now()
	status, body, err := get(ctx, oneShot, caddy, host, "/")
	d := time.Since(t0)
	if err != nil || status != http.StatusOK || body != want {
		return 0, fmt.Errorf("first request through caddy: %d %q %v", status, body, err)
	}
	return d, nil
}

// floorScaleUp scales service to 0 (untimed), then times the scale to 1
// through the API until its task's IP on network answers GET / with want.
func floorScaleUp(ctx context.Context, cli *client.Client, service, network string, port int, want string, settle time.Duration) (time.Duration, error) {
	if err := scaleService(ctx, cli, service, 0); err != nil {
		return 0, err
	}
	if err := waitServiceStopped(ctx, cli, service); err != nil {
		return 0, err
	}
	time.Sleep(settle)
	t0 := time.Now()
	if err := scaleService(ctx, cli, service, 1); err != nil {
		return 0, err
	}
	ip, err := waitTaskIP(ctx, cli, service, network)
	if err != nil {
		return 0, err
	}
	if err := pollWith(ctx, taskProbe, net.JoinHostPort(ip, strconv.Itoa(port)), want, 30*time.Second); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

// taskProbe polls a task's overlay address for the floor. A SYN sent
// before the task's address is live on the overlay gets no answer at all
// (no reset), and the kernel would send it again only after its one-second
// retransmission timeout: each attempt gets a short dial timeout instead
// and the poll dials afresh, so the floor measures the lab and not TCP's
// timer. (Caddy's readiness probe likewise dials with a timeout, 500ms.)
var taskProbe = &http.Client{
	Timeout: 2 * time.Second,
	Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil,
		DialContext: (&net.Dialer{Timeout: 20 * time.Millisecond}).DialContext},
}

// scaleService sets service's replica count without waiting for
// convergence, retrying an update that raced another ("out of sequence").
func scaleService(ctx context.Context, cli *client.Client, service string, replicas uint64) error {
	for {
		svc, _, err := cli.ServiceInspectWithRaw(ctx, service, swarm.ServiceInspectOptions{})
		if err != nil {
			return fmt.Errorf("inspecting service %s: %w", service, err)
		}
		if svc.Spec.Mode.Replicated == nil {
			return fmt.Errorf("service %s is not replicated", service)
		}
		svc.Spec.Mode.Replicated.Replicas = &replicas
		_, err = cli.ServiceUpdate(ctx, svc.ID, svc.Version, svc.Spec, swarm.ServiceUpdateOptions{})
		if err == nil {
			return nil
		}
		if !strings.Contains(err.Error(), "update out of sequence") {
			return fmt.Errorf("scaling service %s to %d: %w", service, replicas, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// swarmTask is a task whose desired state is running.
type swarmTask struct {
	nodeID, ip string
	running    bool
}

// serviceTasks lists service's tasks meant to run, with their address on
// network once assigned.
func serviceTasks(ctx context.Context, cli *client.Client, service, network string) ([]swarmTask, error) {
	list, err := cli.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(
		filters.Arg("service", service), filters.Arg("desired-state", "running"))})
	if err != nil {
		return nil, fmt.Errorf("listing tasks of %s: %w", service, err)
	}
	var tasks []swarmTask
	for _, t := range list {
		task := swarmTask{nodeID: t.NodeID, running: t.Status.State == swarm.TaskStateRunning}
		for _, att := range t.NetworksAttachments {
			if att.Network.Spec.Name != network || len(att.Addresses) == 0 {
				continue
			}
			if ip, _, err := net.ParseCIDR(att.Addresses[0]); err == nil {
				task.ip = ip.String()
			}
		}
		tasks = append(tasks, task)
	}
	return tasks, nil
}

// waitTaskIP polls until service has a task placed with an address on
// network (the manager assigns it before the task runs; the poll of the
// address then waits for the task itself, as a runtime cannot know
// sooner either).
func waitTaskIP(ctx context.Context, cli *client.Client, service, network string) (string, error) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		tasks, err := serviceTasks(ctx, cli, service, network)
		if err != nil {
			return "", err
		}
		for _, t := range tasks {
			if t.ip != "" && t.nodeID != "" {
				return t.ip, nil
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return "", fmt.Errorf("service %s has no task with an address on %s after 30s", service, network)
}

// waitServiceStopped polls until no task of service is meant to run or
// still runs.
func waitServiceStopped(ctx context.Context, cli *client.Client, service string) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		list, err := cli.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", service))})
		if err != nil {
			return fmt.Errorf("listing tasks of %s: %w", service, err)
		}
		busy := 0
		for _, t := range list {
			if t.DesiredState == swarm.TaskStateRunning || t.Status.State == swarm.TaskStateRunning {
				busy++
			}
		}
		if busy == 0 {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("service %s still has tasks 60s after its scale to 0", service)
}

// createServiceTwin creates, at 0 replicas, a service of svc's own spec
// named name: labeled as the bench's (never Caddy's, so no runtime adopts
// it), with a volume of its own where svc has one.
func createServiceTwin(ctx context.Context, cli *client.Client, svc swarm.Service, name, schema string) (string, error) {
	spec := svc.Spec
	labels := map[string]string{LabelBench: schema}
	spec.Annotations = swarm.Annotations{Name: name, Labels: labels}
	var zero uint64
	spec.Mode = swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &zero}}
	cs := *spec.TaskTemplate.ContainerSpec
	cs.Labels = maps.Clone(labels)
	cs.Mounts = nil
	for _, m := range spec.TaskTemplate.ContainerSpec.Mounts {
		if m.Type == mount.TypeVolume {
			m.Source = name + "-data"
			m.VolumeOptions = &mount.VolumeOptions{Labels: labels}
		}
		cs.Mounts = append(cs.Mounts, m)
	}
	spec.TaskTemplate.ContainerSpec = &cs
	return createBenchService(ctx, cli, spec)
}

// createBareService creates, at 0 replicas, a service of svc's image and
// env alone, on network only, placed on node.
func createBareService(ctx context.Context, cli *client.Client, svc swarm.Service, name, schema, network, node string) (string, error) {
	labels := map[string]string{LabelBench: schema}
	src := svc.Spec.TaskTemplate.ContainerSpec
	grace, delay := time.Second, 100*time.Millisecond
	var zero uint64
	spec := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: name, Labels: labels},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: src.Image, Env: src.Env, Labels: labels, StopGracePeriod: &grace},
			Placement:     &swarm.Placement{Constraints: []string{"node.hostname==" + node}},
			Networks:      []swarm.NetworkAttachmentConfig{{Target: network}},
			RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny, Delay: &delay},
		},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &zero}},
		EndpointSpec: &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR},
	}
	return createBenchService(ctx, cli, spec)
}

// createBenchService creates spec without asking a registry (the lab has
// none) and returns its name. The lab goes away with the bench, and its
// services with it.
func createBenchService(ctx context.Context, cli *client.Client, spec swarm.ServiceSpec) (string, error) {
	if _, err := cli.ServiceCreate(ctx, spec, swarm.ServiceCreateOptions{QueryRegistry: false}); err != nil {
		return "", fmt.Errorf("creating service %s: %w", spec.Name, err)
	}
	return spec.Name, nil
}
