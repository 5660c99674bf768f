package swarmlab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/agistaffers/caddy-multitenant/internal/testimage"
)

// sitePort is where the test image listens inside its task.
const sitePort = 8080

// siteService is a service of the test image answering "hello from name"
// on the lab's overlay, at 0 replicas until scaled: endpoint mode dnsrr
// (no VIP: no IPVS here), constraint a placement constraint, and
// publishedPort (when not 0) published in mode=host on the task's node.
func siteService(l *Lab, image, name, constraint string, publishedPort uint32) swarm.ServiceSpec {
	var zero uint64
	grace, restartDelay := time.Second, 100*time.Millisecond
	spec := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: name, Labels: map[string]string{"swarmlab.test": "1"}},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{
				Image:           image,
				Env:             []string{"SITE_NAME=" + name},
				StopGracePeriod: &grace,
			},
			Placement: &swarm.Placement{Constraints: []string{constraint}},
			Networks:  []swarm.NetworkAttachmentConfig{{Target: l.Network}},
			// Swarm waits 5 s before a replacement task by default, also
			// when the old one was on a lost node.
			RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny, Delay: &restartDelay},
		},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &zero}},
		EndpointSpec: &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR},
	}
	if publishedPort != 0 {
		spec.EndpointSpec.Ports = []swarm.PortConfig{{
			Protocol: swarm.PortConfigProtocolTCP, TargetPort: sitePort,
			PublishedPort: publishedPort, PublishMode: swarm.PortConfigPublishModeHost,
		}}
	}
	return spec
}

// createService creates spec on the manager without asking a registry
// (--no-resolve-image: there is none) and removes it when t ends.
func createService(t testing.TB, l *Lab, spec swarm.ServiceSpec) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := l.ManagerClient().ServiceCreate(ctx, spec, swarm.ServiceCreateOptions{QueryRegistry: false})
	if err != nil {
		t.Fatalf("creating service %s: %v", spec.Name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// The lab may be gone already (its cleanup ran first); nothing to do then.
		_ = l.ManagerClient().ServiceRemove(ctx, resp.ID)
	})
	return resp.ID
}

func siteURL(host string, port int) string {
	return fmt.Sprintf("http://%s/", net.JoinHostPort(host, fmt.Sprint(port)))
}

// refused asserts nothing answers url from the root namespace.
func refused(t *testing.T, url, why string) {
	t.Helper()
	resp, err := noKeepAlive.Get(url)
	if err == nil {
		resp.Body.Close()
		t.Errorf("%s answered %s; want no answer: %s", url, resp.Status, why)
	}
}

func TestLabScalesAServiceOnAChosenNode(t *testing.T) {
	l := Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	nodes, err := l.ManagerClient().NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 3 {
		t.Fatalf("swarm has %d nodes, want 3", len(nodes))
	}
	for _, n := range nodes {
		ln := l.NodeByID(n.ID)
		if ln == nil {
			t.Fatalf("swarm node %s (%s) is none of the lab's", n.ID, n.Description.Hostname)
		}
		if n.Status.State != swarm.NodeStateReady || n.Spec.Availability != swarm.NodeAvailabilityActive {
			t.Errorf("node %s: %s/%s, want ready/active", n.Description.Hostname, n.Status.State, n.Spec.Availability)
		}
		if n.Description.Hostname != ln.Hostname {
			t.Errorf("node %d's hostname is %q in the swarm, %q in lab.env", ln.Index, n.Description.Hostname, ln.Hostname)
		}
		if wantManager := ln.Index == 1; (n.ManagerStatus != nil) != wantManager {
			t.Errorf("node %d: manager %v, want %v", ln.Index, n.ManagerStatus != nil, wantManager)
		}
	}

	// up again on a lab that is up changes nothing, and says so.
	if out, err := l.run(time.Minute, "up"); err != nil || !strings.Contains(string(out), "SWARM_LAB_MANAGER="+l.Manager) {
		t.Errorf("up on a running lab: %v\n%s", err, out)
	}
	if out, err := l.run(time.Minute, "status"); err != nil {
		t.Errorf("status: %v\n%s", err, out)
	}

	image := testimage.Build(t, testimage.DefaultTag)
	l.LoadImage(t, image)

	target := l.Nodes[1]
	const published = 18080
	name := "site-a"
	createService(t, l, siteService(l, image, name, "node.hostname=="+target.Hostname, published))

	floor, task, err := l.ScaleUpFloor(ctx, name, sitePort)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("scale 0->1 through the engine API to the first 200 from the task IP: %v (the lab's floor)", floor.Round(time.Millisecond))
	if task.NodeID != target.ID {
		t.Errorf("task placed on node %v, want node %d (%s)", l.NodeByID(task.NodeID), target.Index, target.Hostname)
	}
	body, err := WaitHTTP(ctx, siteURL(task.IP, sitePort))
	if err != nil {
		t.Fatal(err)
	}
	if want := "hello from " + name; body != want {
		t.Errorf("task IP %s answered %q, want %q", task.IP, body, want)
	}

	// mode=host: the port is published on the task's node, and only there.
	body, err = WaitHTTP(ctx, siteURL(target.Addr, published))
	if err != nil {
		t.Fatalf("host-mode port on node %d: %v", target.Index, err)
	}
	if want := "hello from " + name; body != want {
		t.Errorf("%s:%d answered %q, want %q", target.Addr, published, body, want)
	}
	refused(t, siteURL(l.Nodes[0].Addr, published), "the task is on node 2, and there is no routing mesh")
	refused(t, siteURL(l.Nodes[2].Addr, published), "the task is on node 2, and there is no routing mesh")

	begun := time.Now()
	if err := l.Scale(ctx, name, 0); err != nil {
		t.Fatal(err)
	}
	if err := l.WaitStopped(ctx, name); err != nil {
		t.Fatal(err)
	}
	t.Logf("scale 1->0 to no task running: %v", time.Since(begun).Round(time.Millisecond))
	refused(t, siteURL(task.IP, sitePort), "scaled to 0")
	refused(t, siteURL(target.Addr, published), "scaled to 0")
}

func TestLabReschedulesATaskOfALostNode(t *testing.T) {
	l := Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	image := testimage.Build(t, testimage.DefaultTag)
	l.LoadImage(t, image)

	name := "site-b"
	createService(t, l, siteService(l, image, name, "node.role==worker", 0))
	_, first, err := l.ScaleUpFloor(ctx, name, sitePort)
	if err != nil {
		t.Fatal(err)
	}
	lost := l.NodeByID(first.NodeID)
	if lost == nil || lost.Index == 1 {
		t.Fatalf("task on node %v, want a worker", lost)
	}

	begun := time.Now()
	l.StopNode(t, lost.Index)
	stopped := time.Since(begun)
	moved, err := l.WaitTask(ctx, name, func(task Task) bool { return task.NodeID != lost.ID })
	if err != nil {
		t.Fatal(err)
	}
	body, err := WaitHTTP(ctx, siteURL(moved.IP, sitePort))
	if err != nil {
		t.Fatal(err)
	}
	if want := "hello from " + name; body != want {
		t.Errorf("rescheduled task answered %q, want %q", body, want)
	}
	other := l.NodeByID(moved.NodeID)
	if other == nil || other.Index == 1 || other == lost {
		t.Errorf("rescheduled onto node %v, want the other worker", other)
	}
	t.Logf("node %d lost (engine killed in %v); task answering again from node %d (%s) %v after the loss",
		lost.Index, stopped.Round(time.Millisecond), other.Index, moved.IP, time.Since(begun).Round(time.Millisecond))
	if moved.IP != first.IP { // IPAM may hand the lost task's address on
		refused(t, siteURL(first.IP, sitePort), "its node is gone")
	}

	// The manager saw the node go down, and sees it back once its engine is.
	if state := nodeState(ctx, t, l, lost.ID); state != swarm.NodeStateDown {
		t.Errorf("lost node's state: %s, want down", state)
	}
	l.StartNode(t, lost.Index)
	for state := swarm.NodeState(""); state != swarm.NodeStateReady; state = nodeState(ctx, t, l, lost.ID) {
		select {
		case <-ctx.Done():
			t.Fatalf("node %d not ready again after its engine restarted: %s", lost.Index, state)
		case <-time.After(100 * time.Millisecond):
		}
	}
	// One replica still: the old task stays shut down on the node that came back.
	tasks, err := l.Tasks(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 1 || tasks[0].ID != moved.ID {
		t.Errorf("after the node came back: tasks %+v, want only %s", tasks, moved.ID)
	}
	if _, err := WaitHTTP(ctx, siteURL(moved.IP, sitePort)); err != nil {
		t.Error(err)
	}
}

func nodeState(ctx context.Context, t *testing.T, l *Lab, id string) swarm.NodeState {
	t.Helper()
	n, _, err := l.ManagerClient().NodeInspectWithRaw(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return n.Status.State
}

// Down leaves nothing of the lab: no process, namespace, link, route,
// cgroup, registry entry or directory.
func TestLabLeavesNothingBehind(t *testing.T) {
	var l *Lab
	var pids []int
	t.Run("up", func(t *testing.T) {
		l = Start(t)
		for _, n := range l.Nodes {
			b, err := os.ReadFile(filepath.Join(l.Dir, fmt.Sprintf("n%d", n.Index), "pid"))
			if err != nil {
				t.Fatal(err)
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatal(err)
			}
			pids = append(pids, pid)
		}
	})
	if l == nil || len(pids) != 3 || t.Failed() {
		t.Fatal("the lab did not come up")
	}
	// The subtest's cleanup took the lab down.
	for _, pid := range pids {
		// A zombie is dead; reaping it is init's business, not the lab's.
		if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && !isZombie(stat) {
			t.Errorf("dockerd %d still runs: %s", pid, stat)
		}
	}
	p := fmt.Sprintf("sl%d", l.ID)
	for _, path := range []string{
		l.Dir,
		"/run/netns/" + p + "b", "/run/netns/" + p + "n1", "/run/netns/" + p + "n2", "/run/netns/" + p + "n3",
		"/sys/class/net/" + p + "r", "/sys/class/net/" + p + "g",
		"/sys/fs/cgroup/pids/" + p + "-n1", "/sys/fs/cgroup/memory/" + p + "-n2",
		fmt.Sprintf("/run/swarm-lab/%d", l.ID),
	} {
		if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s is left (%v)", path, err)
		}
	}
	out, err := exec.Command("ip", "route", "show", l.Subnet).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("route to %s left: %s (%v)", l.Subnet, out, err)
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mounts), l.Dir) {
		t.Errorf("mounts under %s left", l.Dir)
	}
}

// isZombie reads the state field of a /proc/PID/stat ("pid (comm) S …").
func isZombie(stat []byte) bool {
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}
