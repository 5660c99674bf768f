package provisioner

import "context"

// StartIfRoom starts the site like Ensure, for a start no request asked
// for (a pre-warm): only into free room under MaxRunning. It never stops
// another site to make room, and fails with ErrCapacity instead. A
// request arriving meanwhile shares the start (and its rule).
func (p *Provisioner) StartIfRoom(ctx context.Context, spec Spec) (string, error) {
	if err := spec.validate(); err != nil {
		return "", err
	}
	st := p.sites.getOrCreate(spec.SiteID)
	st.roomOnly.Add(1)
	defer st.roomOnly.Add(-1)
	return p.Ensure(ctx, spec)
}
