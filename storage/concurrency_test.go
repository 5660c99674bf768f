package storage

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/agistaffers/caddy-multitenant/internal/pgtest"
)

func TestLargeStoreNeverTearsForConcurrentLoads(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	schema := pgtest.Schema(t)
	writer := newStorage(t, schema, Options{})
	reader := newStorage(t, schema, Options{})
	const size = 4 << 20

	// Each value is one byte repeated: any mix of two writes shows.
	valueOf := func(b byte) []byte { return bytes.Repeat([]byte{b}, size) }
	if err := writer.Store(ctx, "big/value", valueOf('A')); err != nil {
		t.Fatal(err)
	}
	written := map[byte]bool{'A': true}
	var writtenMu sync.Mutex

	done := make(chan struct{})
	var wg sync.WaitGroup
	var loads int
	var loadsMu sync.Mutex
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				got, err := reader.Load(ctx, "big/value")
				if err != nil {
					t.Error(err)
					return
				}
				writtenMu.Lock()
				known := len(got) > 0 && written[got[0]]
				writtenMu.Unlock()
				if len(got) != size || !known || bytes.Count(got, got[:1]) != size {
					t.Errorf("torn load: %d bytes, starting %q", len(got), got[:min(len(got), 1)])
					return
				}
				loadsMu.Lock()
				loads++
				loadsMu.Unlock()
			}
		})
	}
	for _, b := range []byte("BCDEFGHI") {
		writtenMu.Lock()
		written[b] = true // before the write: a load may see it as soon as it commits
		writtenMu.Unlock()
		if err := writer.Store(ctx, "big/value", valueOf(b)); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	t.Logf("%d loads during 8 stores of %d bytes", loads, size)
}

// The cancellation tests block the storage's statements for real: another
// transaction holds the table in ACCESS EXCLUSIVE mode, so only
// cancellation can end them.

func TestCancelledContextEndsBlockedCalls(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	schema := pgtest.Schema(t)
	s := newStorage(t, schema, Options{})
	if err := s.Store(ctx, "k/v", []byte("v")); err != nil { // creates the tables
		t.Fatal(err)
	}

	blocker, err := pgtest.Pool(t, schema).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Rollback(context.Background())
	if _, err := blocker.Exec(ctx, "LOCK TABLE certmagic_data IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}

	calls := map[string]func(context.Context) error{
		"Load":   func(ctx context.Context) error { _, err := s.Load(ctx, "k/v"); return err },
		"Store":  func(ctx context.Context) error { return s.Store(ctx, "k/v", []byte("w")) },
		"List":   func(ctx context.Context) error { _, err := s.List(ctx, "k", true); return err },
		"Stat":   func(ctx context.Context) error { _, err := s.Stat(ctx, "k/v"); return err },
		"Delete": func(ctx context.Context) error { return s.Delete(ctx, "k") },
	}
	var wg sync.WaitGroup
	for name, call := range calls {
		wg.Go(func() { assertPromptCancel(t, name, call) })
	}
	wg.Wait()

	if err := blocker.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	// Cancelled statements cost their connections, not the storage. (Not
	// checked: what k/v holds now. pgx's default cancellation closes the
	// socket without a cancel request, so the server may still run the
	// abandoned Store and Delete once the table lock is gone.)
	if err := s.Store(ctx, "after/cancel", []byte("ok")); err != nil {
		t.Errorf("Store after the cancellations: %v", err)
	}
	if got, err := s.Load(ctx, "after/cancel"); err != nil || string(got) != "ok" {
		t.Errorf("Load after the cancellations = %q, %v", got, err)
	}
}

func TestCancelledContextEndsLockWait(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	schema := pgtest.Schema(t)
	holder := newStorage(t, schema, Options{})
	waiter := newStorage(t, schema, Options{})
	if err := holder.Lock(ctx, "busy"); err != nil {
		t.Fatal(err)
	}
	assertPromptCancel(t, "Lock", func(ctx context.Context) error { return waiter.Lock(ctx, "busy") })
	if err := holder.Unlock(ctx, "busy"); err != nil {
		t.Fatal(err)
	}
}

func TestAlreadyCancelledContextFailsFast(t *testing.T) {
	t.Parallel()
	s := newStorage(t, pgtest.Schema(t), Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if err := s.Store(ctx, "k", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Store: %v, want context.Canceled", err)
	}
	if _, err := s.Load(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Errorf("Load: %v, want context.Canceled", err)
	}
	if _, err := s.List(ctx, "k", false); !errors.Is(err, context.Canceled) {
		t.Errorf("List: %v, want context.Canceled", err)
	}
	if err := s.Lock(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Errorf("Lock: %v, want context.Canceled", err)
	}
	if s.Exists(ctx, "k") {
		t.Error("Exists with a cancelled context: got true")
	}
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("calls with a cancelled context took %s", elapsed)
	}
	// Creating the tables failed above; that must not stick.
	if err := s.Store(testCtx(t), "k", []byte("v")); err != nil {
		t.Errorf("Store after a failed first use: %v", err)
	}
}

// assertPromptCancel runs call with a context that ends after 200ms and
// requires it to return a context error well within a second.
func assertPromptCancel(t *testing.T, name string, call func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := call(ctx)
	elapsed := time.Since(start)
	if err == nil {
		t.Errorf("%s returned nil while blocked", name)
	}
	if elapsed < 150*time.Millisecond {
		t.Errorf("%s returned after %s (%v): it was not blocked, the test proves nothing", name, elapsed, err)
	}
	if elapsed > time.Second {
		t.Errorf("%s took %s to notice cancellation, want < 1s", name, elapsed)
	}
}
