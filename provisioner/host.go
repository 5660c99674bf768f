package provisioner

import (
	"context"
)

// Host is the size of the engine's machine, which no site's limits may
// exceed.
type Host struct {
	MemoryBytes int64 // total memory
	CPUs        int   // logical CPUs
}

// NanoCPUs is the host's CPU count in Docker's unit (1e9 per CPU).
func (h Host) NanoCPUs() int64 { return int64(h.CPUs) * 1e9 }

// Host returns the engine's machine size, asked of the engine once.
func (p *Provisioner) Host(ctx context.Context) (Host, error) {
	p.hostMu.Lock()
	defer p.hostMu.Unlock()
	if p.host != nil {
		return *p.host, nil
	}
	rh, ok := p.rt.(RuntimeHost)
	if !ok {
		return Host{}, notSupported("telling the host's size")
	}
	h, err := rh.Host(ctx)
	if err != nil {
		return Host{}, err
	}
	p.host = &h
	return h, nil
}
