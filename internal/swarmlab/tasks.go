package swarmlab

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
)

// Task is a task of a service as the manager reports it.
type Task struct {
	ID string
	// NodeID is the swarm node the task is placed on.
	NodeID string
	// State is the task's current state (swarm.TaskStateRunning, …).
	State swarm.TaskState
	// IP is the task's address on the lab's overlay, "" until assigned.
	IP string
}

// Scale sets service's replica count through the manager's API and returns
// without waiting for convergence (`docker service scale -d`). An update
// racing another one (the manager's own, just after a create, bumps the
// version too) fails with "update out of sequence": then it reads the
// service again and retries.
func (l *Lab) Scale(ctx context.Context, service string, replicas uint64) error {
	cli := l.ManagerClient()
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
			return fmt.Errorf("scaling service %s to %d: %w (last: %v)", service, replicas, ctx.Err(), err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Tasks lists service's tasks whose desired state is running, with their
// overlay address once the manager has assigned one.
func (l *Lab) Tasks(ctx context.Context, service string) ([]Task, error) {
	list, err := l.ManagerClient().TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(
		filters.Arg("service", service),
		filters.Arg("desired-state", "running"),
	)})
	if err != nil {
		return nil, fmt.Errorf("listing tasks of %s: %w", service, err)
	}
	tasks := make([]Task, 0, len(list))
	for _, t := range list {
		task := Task{ID: t.ID, NodeID: t.NodeID, State: t.Status.State}
		for _, att := range t.NetworksAttachments {
			if att.Network.Spec.Name != l.Network || len(att.Addresses) == 0 {
				continue
			}
			if ip, _, err := net.ParseCIDR(att.Addresses[0]); err == nil {
				task.IP = ip.String()
			}
		}
		tasks = append(tasks, task)
	}
	return tasks, nil
}

// WaitTask polls until service has a task placed on a node, with an
// overlay address, that ok accepts, and returns it. (The manager assigns
// the address a moment before the node.)
func (l *Lab) WaitTask(ctx context.Context, service string, ok func(Task) bool) (Task, error) {
	for {
		tasks, err := l.Tasks(ctx, service)
		if err != nil {
			return Task{}, err
		}
		for _, t := range tasks {
			if t.IP != "" && t.NodeID != "" && ok(t) {
				return t, nil
			}
		}
		select {
		case <-ctx.Done():
			return Task{}, fmt.Errorf("waiting for a task of %s: %w (tasks: %+v)", service, ctx.Err(), tasks)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// WaitStopped polls until service has no task whose desired state is
// running and none that may still run (its state not a final one), in
// two polls in a row: right after a scale-down the manager has been seen
// to answer a task list with no such task while the task still answered.
func (l *Lab) WaitStopped(ctx context.Context, service string) error {
	quiet := 0
	for {
		list, err := l.ManagerClient().TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", service))})
		if err != nil {
			return fmt.Errorf("listing tasks of %s: %w", service, err)
		}
		busy := 0
		for _, t := range list {
			if t.DesiredState == swarm.TaskStateRunning || !finalState(t.Status.State) {
				busy++
			}
		}
		if quiet = quiet + 1; busy > 0 {
			quiet = 0
		}
		if quiet >= 2 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s to stop (%d tasks left): %w", service, busy, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// finalState reports whether a task in state s no longer runs, nor will.
func finalState(s swarm.TaskState) bool {
	switch s {
	case swarm.TaskStateComplete, swarm.TaskStateShutdown, swarm.TaskStateFailed, swarm.TaskStateRejected,
		swarm.TaskStateRemove, swarm.TaskStateOrphaned:
		return true
	}
	return false
}

// noKeepAlive dials afresh for every request: a probe must not be
// answered over a connection made to an earlier task.
var noKeepAlive = &http.Client{
	Timeout:   500 * time.Millisecond,
	Transport: &http.Transport{DisableKeepAlives: true},
}

// WaitHTTP polls url until it answers 200 and returns the body.
func WaitHTTP(ctx context.Context, url string) (string, error) {
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return "", err
		}
		resp, err := noKeepAlive.Do(req)
		if err == nil {
			body, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && rerr == nil {
				return string(body), nil
			}
			err = fmt.Errorf("%s: %s", url, resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("waiting for 200 from %s: %w (last: %v)", url, ctx.Err(), last)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// ScaleUpFloor scales service (at 0 replicas) to 1 through the engine API
// and returns the time from the call to the first 200 from its task's
// overlay IP on port, with the task: the lab's own floor of a cold start,
// what a runtime on top of Swarm cannot beat.
func (l *Lab) ScaleUpFloor(ctx context.Context, service string, port int) (time.Duration, Task, error) {
	begun := time.Now()
	if err := l.Scale(ctx, service, 1); err != nil {
		return 0, Task{}, err
	}
	task, err := l.WaitTask(ctx, service, func(Task) bool { return true })
	if err != nil {
		return 0, Task{}, err
	}
	if _, err := WaitHTTP(ctx, fmt.Sprintf("http://%s/", net.JoinHostPort(task.IP, fmt.Sprint(port)))); err != nil {
		return 0, task, err
	}
	return time.Since(begun), task, nil
}
