package prewarm

import (
	"context"
	"time"

	"github.com/riverqueue/river"
	"go.uber.org/zap"
)

// The pre-warm of a slot is a durable job on the platform's queue, so it
// runs once however many nodes share the database: the queue's leader
// inserts the next slot's job often (every insertInterval, and at start),
// each unique per slot and scheduled Lead before it.

// insertInterval is how often the queue's leader inserts the next slot's
// job: often enough that a restart loses no slot.
const insertInterval = 5 * time.Minute

// jobTimeout bounds one slot's pre-warm (its starts, one after another).
const jobTimeout = 15 * time.Minute

// SlotArgs is the durable job of one slot's pre-warm.
type SlotArgs struct {
	// Slot is the start of the hour slot, UTC.
	Slot time.Time `json:"slot"`
}

// Kind names the job in the queue.
func (SlotArgs) Kind() string { return "tenants_prewarm" }

// InsertOpts make the job unique per slot.
func (SlotArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 3, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// PeriodicJob is the job the queue's leader inserts: the coming slot's
// pre-warm, scheduled Lead before the slot (at once when that is past).
func (s *Scheduler) PeriodicJob() *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(insertInterval), func() (river.JobArgs, *river.InsertOpts) {
		args := SlotArgs{Slot: SlotOf(s.cfg.Now()).Add(Slot)}
		opts := args.InsertOpts()
		opts.ScheduledAt = args.Slot.Add(-s.cfg.Lead)
		return args, &opts
	}, &river.PeriodicJobOpts{ID: "tenants_prewarm", RunOnStart: true})
}

// Worker runs the jobs.
func (s *Scheduler) Worker() river.Worker[SlotArgs] { return &slotWorker{s: s} }

type slotWorker struct {
	river.WorkerDefaults[SlotArgs]
	s *Scheduler
}

func (w *slotWorker) Timeout(*river.Job[SlotArgs]) time.Duration { return jobTimeout }

func (w *slotWorker) Work(ctx context.Context, job *river.Job[SlotArgs]) error {
	rep, err := w.s.Warm(ctx, job.Args.Slot)
	if len(rep.Started)+len(rep.NoRoom)+len(rep.Failed) > 0 {
		w.s.log.Info("pre-warm of a slot done", zap.Time("slot", rep.Slot), zap.Int("candidates", len(rep.Decisions)),
			zap.Strings("started", rep.Started), zap.Strings("no_room", rep.NoRoom), zap.Strings("failed", rep.Failed))
	}
	return err
}
