package provisioner

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A container that exits at once ends its start as soon as Docker sees
// it exit, not when a readiness probe of its vanished address gives up.
// With the probe's dial allowed a minute, a start that waited for it
// would take that minute; one that follows the exit takes a moment. The
// bound between the two is far from either, so a loaded machine cannot
// blur them.
func TestExitEndsStartAtOnce(t *testing.T) {
	t.Parallel()
	const dialTimeout = time.Minute
	p := newProv(t, func(c *Config) { c.DialTimeout = dialTimeout })
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
		if noticed := failed.Sub(exitedAt); noticed >= dialTimeout/4 {
			t.Errorf("health %q: the exit was noticed %s after it happened; a start that waits for the probe takes %s", health, noticed, dialTimeout)
		}
	}
}
