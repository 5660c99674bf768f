package provisioner

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
)

// ContainerStats is one reading of a site container's use, from the
// engine's stats.
type ContainerStats struct {
	SiteID, ContainerID string
	// Read is when the engine read it.
	Read time.Time
	// CPUTotal is the CPU time the container used since it started and
	// SystemCPU the host's, all its CPUs together, both in nanoseconds;
	// OnlineCPUs is the host's CPUs.
	CPUTotal, SystemCPU uint64
	OnlineCPUs          uint32
	// MemoryBytes is the memory the container uses, its inactive page
	// cache left out (what `docker stats` shows).
	MemoryBytes uint64
}

// CPUPercent returns the CPU the container used between prev and s, in
// percent of one CPU (as `docker stats` shows it: 200 is two CPUs busy),
// and false when prev is not an earlier reading of the same container.
func (s ContainerStats) CPUPercent(prev ContainerStats) (float64, bool) {
	if prev.ContainerID != s.ContainerID || s.CPUTotal < prev.CPUTotal || s.SystemCPU <= prev.SystemCPU || s.OnlineCPUs == 0 {
		return 0, false
	}
	return float64(s.CPUTotal-prev.CPUTotal) / float64(s.SystemCPU-prev.SystemCPU) * float64(s.OnlineCPUs) * 100, true
}

// SampleStats reads the stats of each of the namespace's running site
// containers, at most concurrency at a time, and returns how many run. It
// asks for one-shot stats, which the engine answers from one reading
// instead of waiting a second for a second one: CPU use comes from two
// samples (CPUPercent). A container that stopped meanwhile is left out.
func (r *DockerRuntime) SampleStats(ctx context.Context, concurrency int) (running int, stats []ContainerStats, err error) {
	f := r.namespaceFilter()
	f.Add("status", "running")
	list, err := r.cli.ContainerList(ctx, container.ListOptions{Filters: f})
	if err != nil {
		return 0, nil, fmt.Errorf("listing running containers of namespace %s: %w", r.cfg.Namespace, err)
	}
	var mu sync.Mutex
	var g errgroup.Group
	g.SetLimit(max(concurrency, 1))
	for _, c := range list {
		siteID := c.Labels[LabelSite]
		if !validName.MatchString(siteID) {
			continue
		}
		running++
		g.Go(func() error {
			s, err := r.ReplicaStats(ctx, c.ID)
			if err != nil {
				if !isNotFound(err) && ctx.Err() == nil {
					r.log.Debug("reading container stats", zap.String("site_id", siteID), zap.Error(err))
				}
				return nil
			}
			s.SiteID = siteID
			mu.Lock()
			stats = append(stats, s)
			mu.Unlock()
			return nil
		})
	}
	g.Wait()
	return running, stats, ctx.Err()
}

func (r *DockerRuntime) ReplicaStats(ctx context.Context, id string) (ContainerStats, error) {
	resp, err := r.cli.ContainerStatsOneShot(ctx, id)
	if err != nil {
		return ContainerStats{}, err
	}
	defer resp.Body.Close()
	var st container.StatsResponse
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return ContainerStats{}, fmt.Errorf("decoding stats of container %s: %w", id, err)
	}
	if st.Read.IsZero() {
		return ContainerStats{}, fmt.Errorf("container %s: no stats (not running)", id)
	}
	return ContainerStats{
		ContainerID: id,
		Read:        st.Read,
		CPUTotal:    st.CPUStats.CPUUsage.TotalUsage,
		SystemCPU:   st.CPUStats.SystemUsage,
		OnlineCPUs:  st.CPUStats.OnlineCPUs,
		MemoryBytes: memoryInUse(st.MemoryStats),
	}, nil
}

// memoryInUse is the container's memory without its inactive page cache,
// which the kernel reclaims first: what `docker stats` shows. cgroup v1
// names it total_inactive_file, v2 inactive_file.
func memoryInUse(m container.MemoryStats) uint64 {
	if v, v1 := m.Stats["total_inactive_file"]; v1 && v < m.Usage {
		return m.Usage - v
	}
	if v := m.Stats["inactive_file"]; v < m.Usage {
		return m.Usage - v
	}
	return m.Usage
}
