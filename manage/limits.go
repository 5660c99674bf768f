package manage

import (
	"context"

	"go.uber.org/zap"

	"github.com/agistaffers/caddy-multitenant/tenants"
)

// checkHostLimits refuses container limits beyond what the Docker host
// has, naming the field: such a site could never start. When the engine
// cannot be asked nothing is refused here; the site's start reports it.
func (s *Service) checkHostLimits(ctx context.Context, l tenants.Limits) error {
	if s.runtime == nil {
		return nil
	}
	host, err := s.runtime.HostLimits(ctx)
	if err != nil {
		s.log.Warn("asking the docker engine for its host's size; limits not checked against it", zap.Error(err))
		return nil
	}
	switch {
	case host.MemoryBytes > 0 && l.MemoryBytes > host.MemoryBytes:
		return invalid("memory_bytes", "more than the Docker host's memory")
	case host.NanoCPUs > 0 && l.NanoCPUs > host.NanoCPUs:
		return invalid("nano_cpus", "more CPUs than the Docker host has")
	}
	return nil
}
