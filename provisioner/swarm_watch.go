package provisioner

import (
	"context"
	"fmt"
	"time"

	"github.com/docker/docker/api/types/swarm"
)

// WaitExit implements ReplicaWatcher for task id. A task is never
// restarted: once it ended (its container exited, its node was lost, its
// service scaled down) Swarm places another in its place, as the restart
// policy says. So a task gone gives errReplicaGone, never an exit code,
// and a start waits for its replacement rather than probing an address
// nothing answers on any more (a dial to a lost node's task hangs until
// its timeout, for the whole start timeout). A site that keeps exiting
// fails its start at the start timeout, as without a watch.
func (r *SwarmRuntime) WaitExit(ctx context.Context, id string) (int, error) {
	for {
		t, _, err := r.cli.TaskInspectWithRaw(ctx, id)
		switch {
		case isNotFound(err):
			return 0, fmt.Errorf("task %s is gone: %w", id, errReplicaGone)
		case err != nil:
			return 0, fmt.Errorf("inspecting task %s: %w", id, err)
		}
		switch t.Status.State {
		case swarm.TaskStateComplete, swarm.TaskStateFailed, swarm.TaskStateShutdown,
			swarm.TaskStateRejected, swarm.TaskStateOrphaned, swarm.TaskStateRemove:
			return 0, fmt.Errorf("task %s is %s: %w", id, t.Status.State, errReplicaGone)
		}
		// The manager marks a lost node's task for shutdown, and cannot
		// hear from it again: its status stays what it last was.
		if t.DesiredState != swarm.TaskStateRunning && t.DesiredState != swarm.TaskStateReady {
			return 0, fmt.Errorf("task %s is to %s: %w", id, t.DesiredState, errReplicaGone)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(r.cfg.PollInterval):
		}
	}
}

// LogTail implements ReplicaWatcher: the task's last n log lines, for
// start errors.
func (r *SwarmRuntime) LogTail(ctx context.Context, id string, n int) string {
	return readLogTail(r.cli.TaskLogs(ctx, id, tailOptions(n)))
}

var _ ReplicaWatcher = (*SwarmRuntime)(nil)
