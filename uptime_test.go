package multitenant

import (
	"testing"
	"time"

	"github.com/agistaffers/caddy-multitenant/provisioner"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// The provisioner's states map to uptime states: a stop the provisioner
// made is asleep, an exit of the container's own a failure, a restart
// the health checks make is still unhealthy, and starting changes
// nothing.
func TestUptimeState(t *testing.T) {
	now := time.Now()
	stop := now.Add(-time.Minute)
	for _, c := range []struct {
		name  string
		rt    provisioner.SiteRuntime
		state string
		ok    bool
	}{
		{"running", provisioner.SiteRuntime{State: provisioner.StateRunning}, tenants.UptimeUp, true},
		{"running, checks passing", provisioner.SiteRuntime{State: provisioner.StateRunning, Health: provisioner.HealthHealthy}, tenants.UptimeUp, true},
		{"unhealthy", provisioner.SiteRuntime{State: provisioner.StateRunning, Health: provisioner.HealthUnhealthy}, tenants.UptimeUnhealthy, true},
		{"restarted by the checks", provisioner.SiteRuntime{State: provisioner.StateStopped, Restarting: true, LastStop: stop}, tenants.UptimeUnhealthy, true},
		{"idle stop", provisioner.SiteRuntime{State: provisioner.StateStopped, LastStop: stop}, tenants.UptimeAsleep, true},
		{"crash", provisioner.SiteRuntime{State: provisioner.StateStopped, LastStop: stop, LastExit: stop}, tenants.UptimeFailed, true},
		{"stop after a crash", provisioner.SiteRuntime{State: provisioner.StateStopped, LastStop: now, LastExit: stop}, tenants.UptimeAsleep, true},
		{"paused (asleep, warm)", provisioner.SiteRuntime{State: provisioner.StatePaused, LastPause: stop}, tenants.UptimeAsleep, true},
		{"failed start", provisioner.SiteRuntime{State: provisioner.StateFailed, FailedAt: stop}, tenants.UptimeFailed, true},
		{"failed restart", provisioner.SiteRuntime{State: provisioner.StateFailed, FailedAt: stop, Restarting: true}, tenants.UptimeFailed, true},
		{"removed", provisioner.SiteRuntime{State: provisioner.StateRemoved}, "", true},
		{"starting", provisioner.SiteRuntime{State: provisioner.StateStarting}, "", false},
		{"created", provisioner.SiteRuntime{State: provisioner.StateCreated}, "", false},
	} {
		state, _, ok := uptimeState(c.rt, now)
		if state != c.state || ok != c.ok {
			t.Errorf("%s: %q %v, want %q %v", c.name, state, ok, c.state, c.ok)
		}
	}
}
