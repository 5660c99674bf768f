package ui

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/agistaffers/caddy-multitenant/manage"
)

// A deploy from the browser is a form post, which cannot also be the
// event stream its build log comes over. So the post starts the deploy
// here, in a goroutine this registry owns, and redirects to a page that
// follows it by id: the log so far is replayed, then followed, then the
// outcome. The registry is in memory, so a build is followable only on
// the node that runs it, and only the last few are kept.

// Bounds of the builds registry.
const (
	// maxBuilds is how many builds are kept, running or ended.
	maxBuilds = 20
	// maxBuildLog is how much of a build's log is kept (the end: where
	// the error is).
	maxBuildLog = 256 << 10
	// buildTimeout bounds a deploy started from the browser, which no
	// request waits for.
	buildTimeout = 30 * time.Minute
)

// builds are the deploys started from the UI.
type builds struct {
	ctx    context.Context // cancelled by close: the UI's owner stops
	cancel context.CancelFunc
	wg     sync.WaitGroup
	max    int
	maxLog int

	mu    sync.Mutex
	byID  map[string]*build
	order []string // oldest first
}

func newBuilds(max, maxLog int) *builds {
	ctx, cancel := context.WithCancel(context.Background())
	return &builds{ctx: ctx, cancel: cancel, max: max, maxLog: maxLog, byID: map[string]*build{}}
}

// build is one deploy's log and, once it ended, its outcome.
type build struct {
	ID      string
	SiteID  string
	Site    string // the subdomain, for the page
	Started time.Time
	maxLog  int

	mu      sync.Mutex
	lines   []string
	dropped int // lines left out from the start to keep the log bounded
	size    int
	partial []byte
	changed chan struct{} // closed and replaced on every change
	done    bool
	outcome string
	release int
	failed  bool
}

// start runs deploy in a goroutine as a new build of the site and
// returns the build at once. deploy gets a context bounded by
// buildTimeout and the registry's life, and the build as its log.
func (bs *builds) start(siteID, site string, deploy func(ctx context.Context, log io.Writer) (*manage.Release, error)) (*build, error) {
	id, err := randomID()
	if err != nil {
		return nil, err
	}
	b := &build{ID: id, SiteID: siteID, Site: site, Started: time.Now(), maxLog: bs.maxLog, changed: make(chan struct{})}
	bs.mu.Lock()
	if bs.ctx.Err() != nil {
		bs.mu.Unlock()
		return nil, &manage.Error{Code: manage.Unavailable, Message: "the server is stopping"}
	}
	bs.byID[id] = b
	bs.order = append(bs.order, id)
	bs.evict()
	bs.wg.Add(1)
	bs.mu.Unlock()
	go func() {
		defer bs.wg.Done()
		ctx, cancel := context.WithTimeout(bs.ctx, buildTimeout)
		defer cancel()
		rel, err := deploy(ctx, b)
		b.finish(rel, err)
	}()
	return b, nil
}

// evict drops the oldest builds beyond max, ended ones first; bs.mu is
// held. A running build dropped runs on, only no longer followable.
func (bs *builds) evict() {
	for len(bs.order) > bs.max {
		victim := 0
		for i, id := range bs.order {
			if bs.byID[id].ended() {
				victim = i
				break
			}
		}
		delete(bs.byID, bs.order[victim])
		bs.order = append(bs.order[:victim], bs.order[victim+1:]...)
	}
}

// get returns the build with id, if it is kept.
func (bs *builds) get(id string) *build {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	return bs.byID[id]
}

// close cancels the running builds and waits for them to end.
func (bs *builds) close() {
	bs.mu.Lock()
	bs.cancel()
	bs.mu.Unlock()
	bs.wg.Wait()
}

func randomID() (string, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("making a build id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// Write adds each complete line of p to the log.
func (b *build) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.partial = append(b.partial, p...)
	for {
		i := bytes.IndexByte(b.partial, '\n')
		if i < 0 {
			break
		}
		b.add(string(bytes.TrimSuffix(b.partial[:i], []byte("\r"))))
		b.partial = b.partial[i+1:]
	}
	// A line without end is bounded too: a build could print one forever.
	if len(b.partial) > b.maxLog {
		b.add(string(b.partial))
		b.partial = nil
	}
	return len(p), nil
}

// add appends a line, dropping the oldest beyond maxLog; b.mu is held.
func (b *build) add(line string) {
	b.lines = append(b.lines, line)
	b.size += len(line) + 1
	for b.size > b.maxLog && len(b.lines) > 1 {
		b.size -= len(b.lines[0]) + 1
		b.lines[0] = ""
		b.lines = b.lines[1:]
		b.dropped++
	}
	b.notify()
}

// notify wakes whoever waits for a change; b.mu is held.
func (b *build) notify() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// finish records how the deploy ended.
func (b *build) finish(rel *manage.Release, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.partial) > 0 {
		b.add(string(b.partial))
		b.partial = nil
	}
	b.done = true
	b.outcome, b.failed = deployOutcome(rel, err)
	if rel != nil {
		b.release = rel.Number
	}
	b.notify()
}

// deployOutcome says in words how a deploy ended, and whether it failed.
func deployOutcome(rel *manage.Release, err error) (string, bool) {
	if err != nil {
		msg := "the deploy failed"
		var me *manage.Error
		if errors.As(manage.Wrap(err), &me) && me.Code != manage.Internal {
			msg = "the deploy failed: " + me.Message
		}
		if rel != nil {
			msg = fmt.Sprintf("release %d %s: %s", rel.Number, rel.Status, msg)
		}
		return msg, true
	}
	if rel == nil {
		return "the deploy ended", false
	}
	msg := fmt.Sprintf("release %d is %s", rel.Number, rel.Status)
	if rel.Outcome != "" {
		msg += ": " + rel.Outcome
	}
	return msg, rel.Status == "failed"
}

func (b *build) ended() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.done
}

// buildState is a build's log from a line on, as the page shows it.
type buildState struct {
	// Lines are the log's lines from the one asked for; Next is the
	// number of the line after them, Skipped how many asked for were
	// already dropped.
	Lines   []string
	Next    int
	Skipped int
	Done    bool
	Outcome string
	Failed  bool
	Release int
	// Changed is closed at the next change.
	Changed <-chan struct{}
}

// since returns the log from line from (counted from the build's start,
// dropped lines included).
func (b *build) since(from int) buildState {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := buildState{Done: b.done, Outcome: b.outcome, Failed: b.failed, Release: b.release, Changed: b.changed}
	if from < b.dropped {
		st.Skipped, from = b.dropped-from, b.dropped
	}
	if i := from - b.dropped; i < len(b.lines) {
		st.Lines = append([]string(nil), b.lines[i:]...)
	}
	st.Next = b.dropped + len(b.lines)
	return st
}

// Close stops the deploys started from the UI and waits for them: the
// UI's owner calls it when it stops.
func (u *UI) Close() {
	if u.builds != nil {
		u.builds.close()
	}
}
