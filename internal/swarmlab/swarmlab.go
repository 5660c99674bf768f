// Package swarmlab gives tests a real three-node Docker Swarm on this one
// machine: three extra Docker engines in network namespaces of their own,
// joined into one swarm with an attachable overlay network, made and
// removed by scripts/swarm-lab.sh (its header says how, and
// ../shared/SWARM-LAB.md why).
//
// The test process stays in the root network namespace, where Caddy runs
// in the end-to-end tests, and reaches the lab two ways: the nodes'
// addresses (Node.Addr, so mode=host published ports), and task IPs on the
// overlay (routed through a gateway container on node 1). Service VIPs and
// the routing mesh do not work here (no IPVS in this kernel).
//
// The lab needs root on Linux. Without it a test skips, but on CI
// (CI=true) it fails: there the Swarm tests must run.
package swarmlab

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/client"
)

// Lab is one running three-node swarm.
type Lab struct {
	// Dir holds the lab's state (engines' data, sockets, logs, lab.env);
	// it is removed with the lab.
	Dir string
	// ID numbers the lab among those running side by side: its names
	// (namespaces slIDb, slIDn1…3, links slIDr, slIDg) and addresses
	// (198.18.ID.0/24, overlay 198.19.ID.0/24) derive from it.
	ID int
	// Nodes are the three engines; Nodes[0] is the manager.
	Nodes [3]*Node
	// Manager is the manager's swarm address (host:2377).
	Manager string
	// Network is the attachable overlay network every node has.
	Network string
	// Subnet is Network's subnet, routed from the root namespace.
	Subnet string

	script string

	mu     sync.Mutex
	images map[string][]byte // LoadImage's saved images, by reference
}

// Node is one engine of the lab.
type Node struct {
	// Index is 1, 2 or 3, as scripts/swarm-lab.sh numbers nodes.
	Index int
	// Host is the engine's DOCKER_HOST (unix://…/docker.sock).
	Host string
	// Addr is the node's IP address, reachable from the root namespace.
	Addr string
	// Hostname is the engine's hostname, what node.hostname constraints match.
	Hostname string
	// ID is the node's swarm node ID (tasks' NodeID).
	ID string
	// Client talks to the engine; it is closed with the lab.
	Client *client.Client
}

// Start brings a lab up for t and tears it down when t ends. It fails t
// when the lab does not come up, and skips t (fails it when CI=true) on a
// machine that cannot run one at all.
func Start(t testing.TB) *Lab {
	t.Helper()
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		unavailable(t, "the Swarm lab needs root on Linux (network namespaces, mounts, its own dockerd)")
	}
	script, err := scriptPath()
	if err != nil {
		unavailable(t, err.Error())
	}
	l := &Lab{Dir: filepath.Join(t.TempDir(), "lab"), script: script, images: map[string][]byte{}}
	begun := time.Now()
	out, err := l.run(3*time.Minute, "up")
	// Registered before the check: a half-made lab is removed as well
	// (up removes its own mess on failure; down is idempotent).
	t.Cleanup(func() { l.stop(t) })
	if err != nil {
		t.Fatalf("swarm-lab.sh up: %v\n%s", err, out)
	}
	env, err := readEnv(filepath.Join(l.Dir, "lab.env"))
	if err != nil {
		t.Fatalf("reading the lab's env: %v", err)
	}
	l.Manager, l.Network, l.Subnet = env["SWARM_LAB_MANAGER"], env["SWARM_LAB_NETWORK"], env["SWARM_LAB_SUBNET"]
	if l.ID, err = strconv.Atoi(env["SWARM_LAB_ID"]); err != nil {
		t.Fatalf("lab.env's SWARM_LAB_ID: %v", err)
	}
	for i := range l.Nodes {
		p := "SWARM_LAB_NODE" + strconv.Itoa(i+1) + "_"
		n := &Node{Index: i + 1, Host: env[p+"HOST"], Addr: env[p+"ADDR"], Hostname: env[p+"HOSTNAME"]}
		if n.Host == "" || n.Addr == "" || n.Hostname == "" {
			t.Fatalf("lab.env lacks node %d's %sHOST, ADDR or HOSTNAME", i+1, p)
		}
		n.Client, err = client.NewClientWithOpts(client.WithHost(n.Host), client.WithAPIVersionNegotiation())
		if err != nil {
			t.Fatalf("docker client of node %d: %v", i+1, err)
		}
		l.Nodes[i] = n
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		info, err := n.Client.Info(ctx)
		cancel()
		if err != nil || info.Swarm.NodeID == "" {
			t.Fatalf("node %d's swarm node ID: %v (swarm state %q)", i+1, err, info.Swarm.LocalNodeState)
		}
		n.ID = info.Swarm.NodeID
	}
	if l.Manager == "" || l.Network == "" || l.Subnet == "" {
		t.Fatalf("lab.env lacks SWARM_LAB_MANAGER, SWARM_LAB_NETWORK or SWARM_LAB_SUBNET")
	}
	t.Logf("swarm lab up in %v: manager %s, overlay %s (%s)", time.Since(begun).Round(time.Millisecond), l.Manager, l.Network, l.Subnet)
	return l
}

// ManagerClient is the client of the swarm's manager (node 1).
func (l *Lab) ManagerClient() *client.Client { return l.Nodes[0].Client }

// NodeByID returns the node whose swarm node ID is id, nil if none.
func (l *Lab) NodeByID(id string) *Node {
	for _, n := range l.Nodes {
		if n.ID == id {
			return n
		}
	}
	return nil
}

// StopNode kills node index's engine and its containers, as if that machine
// were lost; the swarm notices within a few seconds (heartbeat 1 s).
func (l *Lab) StopNode(t testing.TB, index int) {
	t.Helper()
	if out, err := l.run(time.Minute, "stop-node", strconv.Itoa(index)); err != nil {
		t.Fatalf("stopping node %d: %v\n%s", index, err, out)
	}
}

// StartNode starts node index's engine again; it rejoins the swarm by itself.
func (l *Lab) StartNode(t testing.TB, index int) {
	t.Helper()
	if out, err := l.run(time.Minute, "start-node", strconv.Itoa(index)); err != nil {
		t.Fatalf("starting node %d: %v\n%s", index, err, out)
	}
}

// LoadImage copies ref from the system engine (the DOCKER_* environment's,
// where internal/testimage builds) into every node: there is no registry.
func (l *Lab) LoadImage(t testing.TB, ref string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tarball, err := l.savedImage(ctx, ref)
	if err != nil {
		t.Fatalf("saving %s from the system engine: %v", ref, err)
	}
	for _, n := range l.Nodes {
		resp, err := n.Client.ImageLoad(ctx, bytes.NewReader(tarball), client.ImageLoadWithQuiet(true))
		if err != nil {
			t.Fatalf("loading %s into node %d: %v", ref, n.Index, err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("loading %s into node %d: %v", ref, n.Index, err)
		}
		if _, err := n.Client.ImageInspect(ctx, ref); err != nil {
			t.Fatalf("%s missing on node %d after loading it: %v", ref, n.Index, err)
		}
	}
}

func (l *Lab) savedImage(ctx context.Context, ref string) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b, ok := l.images[ref]; ok {
		return b, nil
	}
	sys, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, err
	}
	defer sys.Close()
	rc, err := sys.ImageSave(ctx, []string{ref})
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, err
	}
	l.images[ref] = b
	return b, nil
}

func (l *Lab) stop(t testing.TB) {
	for _, n := range l.Nodes {
		if n != nil && n.Client != nil {
			n.Client.Close()
		}
	}
	begun := time.Now()
	if out, err := l.run(2*time.Minute, "down"); err != nil {
		t.Errorf("swarm-lab.sh down: %v\n%s", err, out)
		return
	}
	t.Logf("swarm lab down in %v", time.Since(begun).Round(time.Millisecond))
}

// run runs the lab script's command on l.Dir, bounded by timeout.
func (l *Lab) run(timeout time.Duration, command string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{l.script, command, l.Dir}, args...)...)
	// The engines the script leaves running get /dev/null and a log file,
	// never these pipes, so this returns when the script does.
	cmd.WaitDelay = 10 * time.Second
	// The lab belongs to this process: if it dies without its cleanup
	// (killed at its timeout), the next lab's up removes this one.
	cmd.Env = append(os.Environ(), "SWARM_LAB_OWNER="+strconv.Itoa(os.Getpid()))
	return cmd.CombinedOutput()
}

func unavailable(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s, and CI=true: the Swarm tests must run", why)
	}
	t.Skip(why)
}

// scriptPath locates scripts/swarm-lab.sh from this source file: tests run
// from a checkout.
func scriptPath() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("cannot locate the swarmlab source")
	}
	p := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "swarm-lab.sh")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("the lab script: %w", err)
	}
	return p, nil
}

// readEnv reads the KEY=VALUE lines of the script's lab.env.
func readEnv(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%s: bad line %q", path, line)
		}
		env[k] = v
	}
	return env, sc.Err()
}
