package provisioner

import (
	"context"
	"sync/atomic"
	"time"
)

// coarseClock is the time the hot path stamps activity with: reading the
// real clock costs a (v)syscall per request (~150ns on a VM's kvm-clock),
// twice per request, while idle stops and LRU eviction only need the
// time to a fraction of IdleTimeout. The provisioner's clock goroutine
// refreshes it.
type coarseClock struct{ ns atomic.Int64 }

func (c *coarseClock) now() int64 { return c.ns.Load() }
func (c *coarseClock) set()       { c.ns.Store(time.Now().UnixNano()) }

// clockTick is the coarse clock's resolution: fine enough for idle pauses
// and stops (1/64 of the shorter idle period), at least 5ms and at most 250ms.
func clockTick(idle time.Duration) time.Duration {
	if idle <= 0 {
		return 250 * time.Millisecond
	}
	return min(max(idle/64, 5*time.Millisecond), 250*time.Millisecond)
}

// runClock keeps p.clock fresh until ctx ends; started by Start, stopped by
// Stop.
func (p *Provisioner) runClock(ctx context.Context) {
	defer p.wg.Done()
	t := time.NewTicker(clockTick(p.idleStep()))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.clock.set()
		}
	}
}
