package admin

import (
	"net/http"

	"go.uber.org/zap"

	"github.com/agistaffers/caddy-multitenant/tenants"
)

// checkHostLimits refuses container limits beyond what the Docker host
// has, naming the field: such a site could never start. When the engine
// cannot be asked nothing is refused here; the site's start reports it.
func (a *API) checkHostLimits(r *http.Request, l tenants.Limits) error {
	if a.cfg.Runtime == nil {
		return nil
	}
	host, err := a.cfg.Runtime.HostLimits(r.Context())
	if err != nil {
		a.log.Warn("asking the docker engine for its host's size; limits not checked against it", zap.Error(err))
		return nil
	}
	switch {
	case host.MemoryBytes > 0 && l.MemoryBytes > host.MemoryBytes:
		return invalidParam("memory_bytes", "more than the Docker host's memory")
	case host.NanoCPUs > 0 && l.NanoCPUs > host.NanoCPUs:
		return invalidParam("nano_cpus", "more CPUs than the Docker host has")
	}
	return nil
}
