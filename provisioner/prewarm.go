package provisioner

import "context"

// StartIfRoom starts the site like Ensure, for a start no request asked
// for (a pre-warm): only into free room under MaxRunning. It never stops
// another site to make room, and fails with ErrCapacity instead. It is no
// cold start in the metrics (no request waited for it). A request
// arriving meanwhile waits for it and, if it found no room, starts the
// site itself, making room as Ensure does.
func (p *Provisioner) StartIfRoom(ctx context.Context, spec Spec) (string, error) {
	return p.ensure(ctx, spec, true)
}
