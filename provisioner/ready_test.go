package provisioner

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A container that exits at once ends its start as soon as Docker sees
// it exit, not when a readiness probe of its vanished address gives up:
// the time from the exit (Docker's own record of it) to Ensure's error,
// log tail included, stays below a probe's dial timeout, which a start
// that waits for the probe takes at least.
func TestExitEndsStartAtOnce(t *testing.T) {
	t.Parallel()
	p := newProv(t, nil)
	for _, health := range []string{"", "/health"} {
		spec := testSpec(randID("s"), "EXIT_AT_START", "1")
		spec.HealthPath = health
		_, err := p.Ensure(context.Background(), spec)
		failed := time.Now()
		var se *StartError
		if !errors.As(err, &se) || se.ExitCode != 3 {
			t.Fatalf("health %q: %v, want the exit as a StartError", health, err)
		}
		c := inspect(t, containerName(p.cfg.Namespace, spec.SiteID))
		exitedAt, err := time.Parse(time.RFC3339Nano, c.State.FinishedAt)
		if err != nil {
			t.Fatal(err)
		}
		if noticed := failed.Sub(exitedAt); noticed >= directProbeTimeout {
			t.Errorf("health %q: the exit was noticed %s after it happened, want less than %s", health, noticed, directProbeTimeout)
		}
	}
}
