package provisioner

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"
	"go.uber.org/zap"

	"github.com/agistaffers/caddy-multitenant/internal/swarmlab"
	"github.com/agistaffers/caddy-multitenant/internal/testimage"
)

// BenchmarkSwarmRuntimeScaleUp measures a Swarm cold start through
// SwarmRuntime (Scale 0->1, then the first 200 from the upstream it
// returns), on the customer's own overlay and on a shared Network, against
// the lab's floor measured in the same run, rounds alternating: a bare
// service on the lab's overlay scaled through the engine API
// (swarmlab.ScaleUpFloor). All on one node. The scale-downs between are
// not timed.
func BenchmarkSwarmRuntimeScaleUp(b *testing.B) {
	lab := swarmlab.Start(b)
	image := testimage.Build(b, testimage.DefaultTag)
	lab.LoadImage(b, image)
	ctx := context.Background()
	target := "node.hostname==" + lab.Nodes[1].Hostname
	g := labGateway{lab}
	own, err := NewSwarmRuntime(SwarmConfig{
		Client: lab.ManagerClient(), Namespace: randID("bo"), Constraints: []string{target},
		StopGracePeriod: time.Second, SubnetPool: netip.MustParsePrefix(fmt.Sprintf("198.18.%d.0/24", 200+lab.ID)),
		SubnetBits: 27, OnNetwork: g.attach, OnNetworkRelease: g.release, Logger: zap.NewNop(),
	})
	if err != nil {
		b.Fatal(err)
	}
	shared, err := NewSwarmRuntime(SwarmConfig{
		Client: lab.ManagerClient(), Namespace: randID("bs"), Network: lab.Network, Constraints: []string{target},
		StopGracePeriod: time.Second, Logger: zap.NewNop(),
	})
	if err != nil {
		b.Fatal(err)
	}
	for _, r := range []*SwarmRuntime{own, shared} {
		if _, err := r.Ensure(ctx, swarmSpec(image, "site-bench", "cust-bench")); err != nil {
			b.Fatal(err)
		}
	}
	var zero uint64
	grace := time.Second
	floorSvc := "floor-bench"
	if _, err := lab.ManagerClient().ServiceCreate(ctx, swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: floorSvc},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: image, Env: []string{"SITE_NAME=floor"}, StopGracePeriod: &grace},
			Placement:     &swarm.Placement{Constraints: []string{target}},
			Networks:      []swarm.NetworkAttachmentConfig{{Target: lab.Network}},
		},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &zero}},
		EndpointSpec: &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR},
	}, swarm.ServiceCreateOptions{}); err != nil {
		b.Fatal(err)
	}

	var ownTimes, sharedTimes, floorTimes []time.Duration
	through := func(r *SwarmRuntime) time.Duration {
		begun := time.Now()
		inst, err := r.Scale(ctx, "site-bench", 1)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := swarmlab.WaitHTTP(ctx, "http://"+inst.Upstreams[0]+"/"); err != nil {
			b.Fatal(err)
		}
		return time.Since(begun)
	}
	for b.Loop() {
		ownTimes = append(ownTimes, through(own))
		sharedTimes = append(sharedTimes, through(shared))
		floor, _, err := lab.ScaleUpFloor(ctx, floorSvc, 8080)
		if err != nil {
			b.Fatal(err)
		}
		floorTimes = append(floorTimes, floor)
		b.StopTimer()
		for _, r := range []*SwarmRuntime{own, shared} {
			if err := r.Stop(ctx, "site-bench"); err != nil {
				b.Fatal(err)
			}
		}
		if err := lab.Scale(ctx, floorSvc, 0); err != nil {
			b.Fatal(err)
		}
		if err := lab.WaitStopped(ctx, floorSvc); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	benchReport(b, "own-overlay", ownTimes)
	benchReport(b, "shared-net", sharedTimes)
	benchReport(b, "floor", floorTimes)
}

func benchReport(b *testing.B, what string, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	pct := func(p float64) time.Duration { return s[min(len(s)-1, int(p*float64(len(s))))] }
	b.ReportMetric(float64(pct(0.5).Microseconds())/1000, "p50-ms/"+what)
	b.ReportMetric(float64(pct(0.99).Microseconds())/1000, "p99-ms/"+what)
	b.Logf("%-11s n=%d min %v p50 %v p99 %v max %v", what, len(s), s[0].Round(time.Millisecond),
		pct(0.5).Round(time.Millisecond), pct(0.99).Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond))
}
