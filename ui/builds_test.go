package ui

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// waitChange waits for st's next change, failing the test after a while.
func waitChange(t *testing.T, st buildState) {
	t.Helper()
	select {
	case <-st.Changed:
	case <-time.After(5 * time.Second):
		t.Fatal("the build did not change")
	}
}

// A build replays what it logged to whoever comes late, follows what it
// logs next, and ends with its outcome.
func TestBuildsReplayFollowEnd(t *testing.T) {
	bs := newBuilds(3, 1<<10)
	defer bs.close()
	step := make(chan struct{})
	b, err := bs.start("site-1", "ada", func(ctx context.Context, log io.Writer) (*manage.Release, error) {
		fmt.Fprint(log, "one\ntwo\nthr")
		<-step
		fmt.Fprint(log, "ee\n")
		<-step
		fmt.Fprint(log, "no newline")
		return &manage.Release{Release: tenants.Release{Number: 4, Status: tenants.ReleaseLive, Outcome: "served"}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if bs.get(b.ID) != b || bs.get("nope") != nil {
		t.Fatal("get")
	}
	st := b.since(0)
	for len(st.Lines) < 2 {
		waitChange(t, st)
		st = b.since(0)
	}
	if strings.Join(st.Lines, "|") != "one|two" || st.Next != 2 || st.Done {
		t.Fatalf("replay: %+v", st)
	}
	step <- struct{}{}
	waitChange(t, st)
	st = b.since(st.Next)
	if strings.Join(st.Lines, "|") != "three" || st.Next != 3 {
		t.Fatalf("follow: %+v", st)
	}
	step <- struct{}{}
	for !st.Done {
		waitChange(t, st)
		st = b.since(3)
	}
	if strings.Join(st.Lines, "|") != "no newline" || st.Release != 4 || st.Failed || st.Outcome != "release 4 is live: served" {
		t.Fatalf("end: %+v", st)
	}
}

// The registry keeps max builds, dropping ended ones first, and a log its
// last maxLog bytes.
func TestBuildsBounded(t *testing.T) {
	bs := newBuilds(2, 100)
	defer bs.close()
	hold := make(chan struct{})
	running, _ := bs.start("s", "a", func(ctx context.Context, log io.Writer) (*manage.Release, error) {
		for i := 0; i < 50; i++ {
			fmt.Fprintf(log, "line %02d\n", i)
		}
		<-hold
		return nil, &manage.Error{Code: manage.BuildFailed, Message: "step 3 failed"}
	})
	ended, _ := bs.start("s", "a", func(ctx context.Context, log io.Writer) (*manage.Release, error) { return nil, nil })
	for !ended.ended() {
		time.Sleep(time.Millisecond)
	}
	third, _ := bs.start("s", "a", func(ctx context.Context, log io.Writer) (*manage.Release, error) {
		<-ctx.Done() // until the registry closes
		return nil, ctx.Err()
	})
	if bs.get(ended.ID) != nil || bs.get(running.ID) == nil || bs.get(third.ID) == nil {
		t.Fatal("the ended build should have gone first")
	}
	st := running.since(0)
	for len(st.Lines) == 0 || st.Lines[len(st.Lines)-1] != "line 49" {
		waitChange(t, st)
		st = running.since(0)
	}
	if st.Skipped == 0 || st.Next != 50 || len(strings.Join(st.Lines, "\n")) > 100 {
		t.Fatalf("a log over its bound: skipped %d, next %d, %d lines", st.Skipped, st.Next, len(st.Lines))
	}
	close(hold)
	for !running.ended() {
		time.Sleep(time.Millisecond)
	}
	if st := running.since(st.Next); !st.Failed || !strings.Contains(st.Outcome, "step 3 failed") {
		t.Fatalf("failed build: %+v", st)
	}
	// Close cancels the running one and waits for it.
	bs.close()
	if !third.ended() {
		t.Fatal("close returned before the build ended")
	}
	if _, err := bs.start("s", "a", func(context.Context, io.Writer) (*manage.Release, error) { return nil, nil }); err == nil {
		t.Fatal("a build started after close")
	}
}
