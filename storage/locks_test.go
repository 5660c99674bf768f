package storage

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/agistaffers/caddy-multitenant/internal/pgtest"
)

func TestSecondNodeBlocksUntilUnlockThenAcquiresQuickly(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	schema := pgtest.Schema(t)
	first := newStorage(t, schema, Options{})
	second := newStorage(t, schema, Options{})

	if err := first.Lock(ctx, "issue_cert_example.com"); err != nil {
		t.Fatal(err)
	}
	acquired := make(chan error, 1)
	var acquiredAt time.Time
	go func() {
		err := second.Lock(ctx, "issue_cert_example.com")
		acquiredAt = time.Now()
		acquired <- err
	}()
	select {
	case err := <-acquired:
		t.Fatalf("second node got the lock while the first held it (err %v)", err)
	case <-time.After(300 * time.Millisecond):
	}

	if err := first.Unlock(ctx, "issue_cert_example.com"); err != nil {
		t.Fatal(err)
	}
	unlockedAt := time.Now()
	if err := <-acquired; err != nil {
		t.Fatal(err)
	}
	handoff := acquiredAt.Sub(unlockedAt)
	t.Logf("hand-off took %s", handoff)
	if handoff > 100*time.Millisecond {
		t.Errorf("second node acquired %s after the unlock, want < 100ms", handoff)
	}
	if err := second.Unlock(ctx, "issue_cert_example.com"); err != nil {
		t.Fatal(err)
	}
}

// helperEnv tells the test binary, re-executed, to act as a lock holder
// that then gets killed; its value is the schema to use.
const helperEnv = "STORAGE_TEST_LOCK_HOLDER_SCHEMA"

const (
	crashLockName = "crashed_holder"
	crashLockTTL  = 2 * time.Second
)

// TestHelperProcess is not a test: run as a child of
// TestCrashedHolderLeaseExpires, it takes the lock, says so, and hangs
// (heartbeat running) until it is killed.
func TestHelperProcess(t *testing.T) {
	schema := os.Getenv(helperEnv)
	if schema == "" {
		return // run as a normal test: nothing to do
	}
	s := New(newPool(t, schema), Options{Schema: schema, LockTTL: crashLockTTL})
	if err := s.Lock(context.Background(), crashLockName); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("locked")
	select {} // the parent kills us
}

func TestCrashedHolderLeaseExpires(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	schema := pgtest.Schema(t)

	child := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	child.Env = append(os.Environ(), helperEnv+"="+schema)
	child.Stderr = os.Stderr
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = child.Process.Kill(); _ = child.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("child did not take the lock: %q, %v", line, err)
	}

	waiter := newStorage(t, schema, Options{LockTTL: crashLockTTL})
	if ok, err := waiter.TryLock(ctx, crashLockName); ok || err != nil {
		t.Fatalf("TryLock while the child holds the lock = %v, %v; want false", ok, err)
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	_ = child.Wait()

	// The dead child renews nothing more: its lease ends at a fixed time.
	remaining := leaseRemaining(t, waiter.pool, crashLockName)
	if remaining <= 0 || remaining > crashLockTTL {
		t.Fatalf("lease remaining after kill = %s, want in (0, %s]", remaining, crashLockTTL)
	}
	if err := waiter.Lock(ctx, crashLockName); err != nil {
		t.Fatal(err)
	}
	waited := time.Since(killedAt)
	t.Logf("lease had %s left at kill; waiter acquired after %s", remaining, waited)
	if waited < remaining-50*time.Millisecond {
		t.Errorf("waiter acquired after %s, before the lease expired (%s)", waited, remaining)
	}
	if waited > crashLockTTL+time.Second {
		t.Errorf("waiter acquired after %s, want within ttl %s + 1s", waited, crashLockTTL)
	}
	if err := waiter.Unlock(ctx, crashLockName); err != nil {
		t.Fatal(err)
	}
}

func TestUnlockOfLockNotHeldFailsAndReleasesNothing(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	schema := pgtest.Schema(t)
	holder := newStorage(t, schema, Options{})
	other := newStorage(t, schema, Options{})

	if err := holder.Lock(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if err := other.Unlock(ctx, "x"); err == nil {
		t.Error("Unlock by a node that does not hold the lock: got nil error")
	}
	if err := holder.Unlock(ctx, "never_locked"); err == nil {
		t.Error("Unlock of a name never locked: got nil error")
	}
	if ok, err := other.TryLock(ctx, "x"); ok || err != nil {
		t.Fatalf("TryLock after the foreign Unlock = %v, %v; the lock was released", ok, err)
	}
	var owner string
	if err := holder.pool.QueryRow(ctx, `SELECT owner FROM certmagic_locks WHERE name = 'x'`).Scan(&owner); err != nil {
		t.Fatal(err)
	}
	if owner != holder.owner {
		t.Errorf("lock owner = %q, want the holder %q", owner, holder.owner)
	}
	if err := holder.Unlock(ctx, "x"); err != nil {
		t.Errorf("holder's Unlock: %v", err)
	}
	if err := holder.Unlock(ctx, "x"); err == nil {
		t.Error("second Unlock: got nil error")
	}
}

func TestTryLock(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	schema := pgtest.Schema(t)
	a := newStorage(t, schema, Options{})
	b := newStorage(t, schema, Options{})

	try := func(s *Storage, want bool) {
		t.Helper()
		ok, err := s.TryLock(ctx, "try")
		if err != nil || ok != want {
			t.Fatalf("TryLock = %v, %v; want %v", ok, err, want)
		}
	}
	try(a, true)
	try(b, false)
	try(a, false) // not re-entrant: the lease is the Storage's, goroutines exclude each other
	if err := a.Unlock(ctx, "try"); err != nil {
		t.Fatal(err)
	}
	try(b, true)
	try(a, false)
	if err := b.Unlock(ctx, "try"); err != nil {
		t.Fatal(err)
	}
}

func TestExpiredLeaseIsTakenOver(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	schema := pgtest.Schema(t)
	a := newStorage(t, schema, Options{LockTTL: 300 * time.Millisecond})
	b := newStorage(t, schema, Options{})

	if ok, err := a.TryLock(ctx, "stale"); !ok || err != nil {
		t.Fatalf("TryLock = %v, %v", ok, err)
	}
	// Simulate a holder that stopped renewing (hung, partitioned).
	a.Close()
	start := time.Now()
	if err := b.Lock(ctx, "stale"); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited > 2*time.Second {
		t.Errorf("takeover took %s", waited)
	}
	if err := a.Unlock(ctx, "stale"); err == nil {
		t.Error("Unlock of a lease that expired and was taken over: got nil error")
	}
	if ok, _ := a.TryLock(ctx, "other"); ok {
		t.Error("TryLock after Close succeeded")
	}
	if err := b.Unlock(ctx, "stale"); err != nil {
		t.Errorf("the new holder's Unlock: %v", err)
	}
}

func TestRenewLockLeaseExtendsExpiry(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	schema := pgtest.Schema(t)
	// A short TTL makes the heartbeat run during the test, to show it does
	// not cut the renewed lease back.
	holder := newStorage(t, schema, Options{LockTTL: 300 * time.Millisecond})
	other := newStorage(t, schema, Options{})

	if err := holder.Lock(ctx, "long_job"); err != nil {
		t.Fatal(err)
	}
	before := leaseRemaining(t, holder.pool, "long_job")
	if err := holder.RenewLockLease(ctx, "long_job", 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	after := leaseRemaining(t, holder.pool, "long_job")
	if before > 300*time.Millisecond || after < 9*time.Minute {
		t.Errorf("lease remaining: %s before renewal, %s after; want ≤300ms then ~10m", before, after)
	}
	time.Sleep(400 * time.Millisecond) // several heartbeats
	if still := leaseRemaining(t, holder.pool, "long_job"); still < 9*time.Minute {
		t.Errorf("heartbeat shortened the renewed lease to %s", still)
	}
	if err := other.RenewLockLease(ctx, "long_job", time.Minute); err == nil {
		t.Error("RenewLockLease by a non-holder: got nil error")
	}
	if err := holder.RenewLockLease(ctx, "not_held", time.Minute); err == nil {
		t.Error("RenewLockLease of a lock not held: got nil error")
	}
	if err := holder.Unlock(ctx, "long_job"); err != nil {
		t.Fatal(err)
	}
}

func TestHeartbeatKeepsLeaseAlive(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	schema := pgtest.Schema(t)
	// A lease short enough to lapse several times over the test, long
	// enough that a heartbeat (every TTL/3) delayed by a loaded machine
	// still lands in time: a 300 ms lease flaked under CI load.
	holder := newStorage(t, schema, Options{LockTTL: 1500 * time.Millisecond})
	other := newStorage(t, schema, Options{})

	if err := holder.Lock(ctx, "held"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second) // over three TTLs
	for time.Now().Before(deadline) {
		if ok, err := other.TryLock(ctx, "held"); ok || err != nil {
			t.Fatalf("another node took a lock whose holder is alive: %v, %v", ok, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := holder.Unlock(ctx, "held"); err != nil {
		t.Fatal(err)
	}
}

func TestHeartbeatStopsOnUnlockAndClose(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := newStorage(t, pgtest.Schema(t), Options{LockTTL: 300 * time.Millisecond})

	for i := range 5 {
		if err := s.Lock(ctx, "n"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.heartbeats.Load(); n != 5 {
		t.Fatalf("%d heartbeats running with 5 locks held", n)
	}
	time.Sleep(250 * time.Millisecond) // let them renew at least once
	for i := range 3 {
		if err := s.Unlock(ctx, "n"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	// Unlock waits for its heartbeat to return: no settling needed.
	if n := s.heartbeats.Load(); n != 2 {
		t.Fatalf("%d heartbeats running after 3 of 5 unlocks, want 2", n)
	}
	s.Close()
	if n := s.heartbeats.Load(); n != 0 {
		t.Fatalf("%d heartbeats running after Close", n)
	}
}

func TestLockExcludesAcrossGoroutinesAndNodes(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	schema := pgtest.Schema(t)
	nodes := []*Storage{newStorage(t, schema, Options{}), newStorage(t, schema, Options{})}
	const goroutinesPerNode, incrementsEach = 20, 4

	if err := nodes[0].Store(ctx, "counter", []byte("0")); err != nil {
		t.Fatal(err)
	}
	var inside, overlaps atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, len(nodes)*goroutinesPerNode)
	for _, node := range nodes {
		for range goroutinesPerNode {
			wg.Go(func() {
				for range incrementsEach {
					if err := increment(ctx, node, &inside, &overlaps); err != nil {
						errs <- err
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := overlaps.Load(); n != 0 {
		t.Errorf("%d critical sections overlapped", n)
	}
	value, err := nodes[1].Load(ctx, "counter")
	if err != nil {
		t.Fatal(err)
	}
	if want := strconv.Itoa(len(nodes) * goroutinesPerNode * incrementsEach); string(value) != want {
		t.Errorf("counter = %s, want %s", value, want)
	}
}

func increment(ctx context.Context, s *Storage, inside, overlaps *atomic.Int32) error {
	if err := s.Lock(ctx, "counter"); err != nil {
		return err
	}
	if !inside.CompareAndSwap(0, 1) {
		overlaps.Add(1)
	}
	value, err := s.Load(ctx, "counter")
	if err == nil {
		var n int
		if n, err = strconv.Atoi(string(value)); err == nil {
			err = s.Store(ctx, "counter", []byte(strconv.Itoa(n+1)))
		}
	}
	inside.Store(0)
	if unlockErr := s.Unlock(ctx, "counter"); unlockErr != nil {
		err = errors.Join(err, unlockErr)
	}
	return err
}

// leaseRemaining is how long the lease on name has left, by the database's
// clock.
func leaseRemaining(t *testing.T, pool *pgxpool.Pool, name string) time.Duration {
	t.Helper()
	var seconds float64
	err := pool.QueryRow(context.Background(),
		`SELECT extract(epoch FROM expires - now())::float8 FROM certmagic_locks WHERE name = $1`, name).Scan(&seconds)
	if err != nil {
		t.Fatalf("reading lease on %s: %v", name, err)
	}
	return time.Duration(seconds * float64(time.Second))
}
