package storage

import (
	"context"
	"crypto/rand"
	"strconv"
	"testing"
	"time"

	"github.com/agistaffers/caddy-multitenant/internal/pgtest"
)

func BenchmarkStore4KiB(b *testing.B) {
	ctx := context.Background()
	s := newStorage(b, pgtest.Schema(b), Options{})
	value := make([]byte, 4<<10)
	rand.Read(value)
	if err := s.Store(ctx, "warm", value); err != nil { // creates the tables
		b.Fatal(err)
	}
	b.SetBytes(int64(len(value)))
	for i := 0; b.Loop(); i++ {
		if err := s.Store(ctx, "certificates/acme/bench/"+strconv.Itoa(i%1000), value); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

func BenchmarkLoad4KiB(b *testing.B) {
	ctx := context.Background()
	s := newStorage(b, pgtest.Schema(b), Options{})
	value := make([]byte, 4<<10)
	rand.Read(value)
	if err := s.Store(ctx, "certificates/acme/bench/key", value); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(value)))
	for b.Loop() {
		if _, err := s.Load(ctx, "certificates/acme/bench/key"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// BenchmarkLockHandoff measures how long a node waiting on a lock takes to
// get it after the other node releases it: the waiter is already blocked in
// Lock when the holder's Unlock returns.
func BenchmarkLockHandoff(b *testing.B) {
	ctx := context.Background()
	schema := pgtest.Schema(b)
	nodes := [2]*Storage{newStorage(b, schema, Options{}), newStorage(b, schema, Options{})}
	if err := nodes[0].Lock(ctx, "handoff"); err != nil {
		b.Fatal(err)
	}
	var total time.Duration
	for i := 0; b.Loop(); i++ {
		holder, waiter := nodes[i%2], nodes[(i+1)%2]
		acquired := make(chan time.Time, 1)
		go func() {
			if err := waiter.Lock(ctx, "handoff"); err != nil {
				b.Error(err)
			}
			acquired <- time.Now()
		}()
		time.Sleep(5 * time.Millisecond) // let the waiter start polling
		if err := holder.Unlock(ctx, "handoff"); err != nil {
			b.Fatal(err)
		}
		released := time.Now()
		total += (<-acquired).Sub(released)
	}
	b.StopTimer()
	b.ReportMetric(float64(total)/float64(time.Millisecond)/float64(b.N), "ms/handoff")
	if err := nodes[b.N%2].Unlock(ctx, "handoff"); err != nil {
		b.Fatal(err)
	}
}
