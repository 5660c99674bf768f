package caddytest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Process is a running Caddy built from this module.
type Process struct {
	t       testing.TB
	dir     string
	config  string
	env     []string
	race    bool
	raced   bool   // a run of the process reported a race
	Admin   string // admin API address, host:port
	HTTP    string // the HTTP listener, host:port
	cmd     *exec.Cmd
	logs    *SyncBuffer
	exited  chan struct{}
	stopped bool
}

// Options configure Start.
type Options struct {
	// Env is added to the process environment.
	Env []string
	// Race runs a Caddy built with the race detector; a race it reports
	// fails the test.
	Race bool
}

// raceReport is how the race detector begins each report it prints.
const raceReport = "WARNING: DATA RACE"

// Start runs Caddy with caddyfile, after replacing {ADMIN} and {HTTP} with
// free loopback addresses' ports ({ADMIN_ADDR} with the whole admin
// address), and waits until the admin API and the HTTP port answer. The
// process is stopped when the test ends; its log is printed if it failed.
func Start(t testing.TB, caddyfile string, opts Options) *Process {
	t.Helper()
	p := &Process{t: t, dir: t.TempDir(), env: opts.Env, race: opts.Race}
	p.Admin = FreeAddr(t)
	p.HTTP = FreeAddr(t)
	_, httpPort, _ := net.SplitHostPort(p.HTTP)
	p.config = strings.NewReplacer("{ADMIN_ADDR}", p.Admin, "{HTTP_PORT}", httpPort).Replace(caddyfile)
	if err := os.WriteFile(filepath.Join(p.dir, "Caddyfile"), []byte(p.config), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Stop()
		if p.raced {
			t.Errorf("the race detector reported a race in caddy")
		}
		if t.Failed() {
			t.Logf("caddy log:\n%s", p.Logs())
		}
	})
	p.start()
	return p
}

func (p *Process) start() {
	p.t.Helper()
	p.logs = new(SyncBuffer)
	bin := Binary(p.t)
	if p.race {
		bin = RaceBinary(p.t)
	}
	p.cmd = exec.Command(bin, "run", "--config", filepath.Join(p.dir, "Caddyfile"))
	p.cmd.Dir = p.dir
	p.cmd.Env = append(append(os.Environ(), "HOME="+p.dir, "XDG_DATA_HOME="+p.dir, "XDG_CONFIG_HOME="+p.dir), p.env...)
	p.cmd.Stdout = p.logs
	p.cmd.Stderr = p.logs
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("starting caddy: %v", err)
	}
	p.stopped = false
	p.exited = make(chan struct{})
	go func() { p.cmd.Wait(); close(p.exited) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-p.exited:
			p.t.Fatalf("caddy exited during start-up:\n%s", p.Logs())
		default:
		}
		if p.answers() {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("caddy did not come up within 60s:\n%s", p.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *Process) answers() bool {
	for _, addr := range []string{p.Admin, p.HTTP} {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return false
		}
		c.Close()
	}
	resp, err := http.Get("http://" + p.Admin + "/config/")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Stop stops Caddy gracefully (SIGTERM), killing it after 20s.
func (p *Process) Stop() {
	if p.cmd == nil || p.stopped {
		return
	}
	p.stopped = true
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	}
	p.checkRace()
}

// checkRace remembers a race report of the run that just ended; the
// next start replaces the log.
func (p *Process) checkRace() {
	if p.race && strings.Contains(p.Logs(), raceReport) {
		p.raced = true
	}
}

// Kill ends Caddy with SIGKILL, as a crash would: nothing is cleaned up.
func (p *Process) Kill() {
	if p.cmd == nil || p.stopped {
		return
	}
	p.stopped = true
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.exited
	p.checkRace()
}

// Alive reports whether the process is still running.
func (p *Process) Alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Start starts Caddy again after Stop or Kill, with the same config and
// ports.
func (p *Process) Start() {
	p.t.Helper()
	p.start()
}

// Restart stops Caddy and starts it again with the same config and ports.
func (p *Process) Restart() {
	p.t.Helper()
	p.Stop()
	p.start()
}

// Logs returns what Caddy printed so far.
func (p *Process) Logs() string { return p.logs.String() }

// Config returns the Caddyfile the process runs, with addresses filled in.
func (p *Process) Config() string { return p.config }

// Reload posts the process's Caddyfile to the admin API's /load, forcing
// a reload even though it is unchanged.
func (p *Process) Reload(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+p.Admin+"/load", strings.NewReader(p.config))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/caddyfile")
	req.Header.Set("Cache-Control", "must-revalidate")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST /load: %s: %s", resp.Status, body)
	}
	return nil
}

// Metric returns the sum of the samples of a metric from the admin API's
// /metrics endpoint (0 when absent).
func (p *Process) Metric(name string) float64 {
	p.t.Helper()
	resp, err := http.Get("http://" + p.Admin + "/metrics")
	if err != nil {
		p.t.Fatalf("reading metrics: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var sum float64
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, name) || (len(line) > len(name) && line[len(name)] != ' ' && line[len(name)] != '{') {
			continue
		}
		var v float64
		fields := strings.Fields(line)
		if _, err := fmt.Sscan(fields[len(fields)-1], &v); err == nil {
			sum += v
		}
	}
	return sum
}

// FreeAddr returns a loopback address with a port nothing listens on.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// SyncBuffer collects a child process's output safely while tests read it.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
