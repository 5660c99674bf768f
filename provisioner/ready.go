package provisioner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// Readiness polling: fast first (a small static site is often ready within
// milliseconds of its start), at most readyFastDelay apart while most sites
// come up (the first request waits on every millisecond of it), then
// capped at readyMaxDelay so a slow one costs little.
const (
	readyFirstDelay = 2 * time.Millisecond
	readyFastDelay  = 10 * time.Millisecond
	readyFastWindow = 2 * time.Second
	readyMaxDelay   = 100 * time.Millisecond
	probeTimeout    = 2 * time.Second

	// proxyProbeWindow: with a published port, Docker's userland proxy
	// accepts the connection even while nothing listens in the container,
	// then closes it at once (in about a millisecond) when its own dial
	// fails. A connection that stays open this long has a listener behind
	// it.
	proxyProbeWindow = 50 * time.Millisecond

	// defaultDialTimeout is Config.DialTimeout's default.
	defaultDialTimeout = 500 * time.Millisecond
)

// Whether this process can reach container addresses on Docker's bridge
// (true on a Linux host; not with rootless Docker or a remote engine).
const (
	directUnknown int32 = iota
	directReachable
	directUnreachable
)

var probeClient = &http.Client{
	Timeout: probeTimeout,
	Transport: &http.Transport{
		DisableKeepAlives: true,
		Proxy:             nil, // never route health checks through HTTP_PROXY
	},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// waitReady polls upstream until the site is ready, the container exits
// (a *StartError with exit code and log tail), the runtime drops the
// replica (errReplicaGone), or ctx ends.
//
// With a published port, the TCP check dials the container's own address
// (direct) when this process can reach it: the userland proxy in front of a
// published port accepts connections before anything listens behind it.
//
// The exit is watched beside the probes, and cancels the one in flight: a
// dial to the address of a container that is gone does not fail, it hangs
// until its timeout, and the first visitor would wait on it.
func (p *Provisioner) waitReady(ctx context.Context, spec *Spec, rep Replica) error {
	probeCtx, stopProbe := context.WithCancel(ctx)
	exit := make(chan int, 1)
	gone := make(chan error, 1)
	watched := make(chan struct{})
	defer func() {
		stopProbe() // also ends the watch
		<-watched
	}()
	go func() {
		defer close(watched)
		w, ok := p.rt.(ReplicaWatcher)
		if !ok {
			return // the runtime's Scale returned it running; the probes tell the rest
		}
		code, err := w.WaitExit(probeCtx, rep.ID)
		switch {
		case err == nil:
			exit <- code
			stopProbe()
		case errors.Is(err, errReplicaGone):
			gone <- err
			stopProbe()
		case probeCtx.Err() == nil:
			p.log.Debug("watching replica during start", zap.String("site_id", spec.SiteID), zap.Error(err))
		}
	}()

	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	delay := readyFirstDelay
	began := time.Now()
	var lastErr error
	for {
		ok, err := p.probe(probeCtx, spec, rep)
		if ok {
			return nil
		}
		lastErr = err
		timer.Reset(delay)
		select {
		case code := <-exit:
			return p.exited(spec.SiteID, rep.ID, code)
		case err := <-gone:
			return err
		case <-ctx.Done():
			return &StartError{SiteID: spec.SiteID, Reason: fmt.Sprintf("not ready within %s", p.cfg.StartTimeout),
				ExitCode: -1, Err: errors.Join(ctx.Err(), lastErr)}
		case <-timer.C:
		}
		limit := readyFastDelay
		if time.Since(began) > readyFastWindow {
			limit = readyMaxDelay
		}
		delay = min(delay*3/2, limit)
	}
}

// exited builds the error for a container that exited during start. It uses
// its own short ctx: the start's ctx may be what just expired.
func (p *Provisioner) exited(siteID, id string, code int) *StartError {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return &StartError{
		SiteID:   siteID,
		Reason:   "container exited during start",
		ExitCode: code,
		LogTail:  p.logTail(ctx, id, 20),
	}
}

// probe checks once whether upstream is ready: it accepts a TCP connection
// (see tcpReady), and, if the spec names a health path, answers it with 2xx.
func (p *Provisioner) probe(ctx context.Context, spec *Spec, rep Replica) (bool, error) {
	upstream := rep.Upstream
	if err := p.tcpReady(ctx, upstream, rep.Probe); err != nil {
		return false, err
	}
	if spec.HealthPath == "" {
		return true, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+upstream+spec.HealthPath, nil)
	if err != nil {
		return false, err
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return false, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return false, fmt.Errorf("health check %s: status %d", spec.HealthPath, resp.StatusCode)
	}
	return true, nil
}

// tcpReady checks that something listens behind upstream. When upstream
// is the container's own address (network mode, no egress) a connection
// proves it. With a published port it dials direct (the container's bridge
// address) while that is reachable; otherwise it dials the published port
// and, since Docker's userland proxy accepts before the site listens and
// then closes at once, counts a connection that stays open for
// proxyProbeWindow (or that the server speaks on) as ready.
func (p *Provisioner) tcpReady(ctx context.Context, upstream, direct string) error {
	dialsContainer := upstream == direct
	if direct != "" && (dialsContainer || p.direct.Load() != directUnreachable) {
		d := net.Dialer{Timeout: p.cfg.DialTimeout}
		conn, err := d.DialContext(ctx, "tcp", direct)
		switch {
		case err == nil:
			conn.Close()
			p.direct.Store(directReachable)
			return nil
		case errors.Is(err, syscall.ECONNREFUSED):
			p.direct.Store(directReachable)
			return err
		case ctx.Err() != nil || dialsContainer || p.direct.Load() == directReachable:
			return err
		}
		if p.direct.CompareAndSwap(directUnknown, directUnreachable) {
			p.log.Info("container addresses are not reachable; probing readiness through published ports",
				zap.String("address", direct), zap.Error(err))
		}
	}
	d := net.Dialer{Timeout: probeTimeout}
	conn, err := d.DialContext(ctx, "tcp", upstream)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(proxyProbeWindow))
	var b [1]byte
	_, err = conn.Read(b[:])
	var ne net.Error
	if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
		return fmt.Errorf("connection closed before ready: %w", err)
	}
	return nil
}

// logTail is replica id's last n log lines, where the runtime can say.
func (p *Provisioner) logTail(ctx context.Context, id string, n int) string {
	if w, ok := p.rt.(ReplicaWatcher); ok {
		return w.LogTail(ctx, id, n)
	}
	return ""
}
