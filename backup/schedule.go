package backup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/riverqueue/river"
	"go.uber.org/zap"

	"github.com/agistaffers/caddy-multitenant/tenants"
)

// QueueBackups is the job queue of scheduled backups: one at a time per
// node, apart from other jobs (alert deliveries must not wait on one).
const QueueBackups = "backups"

// Timeout bounds one scheduled backup. It stays below the job queue's
// rescue of stuck jobs (the root package sets it above), so a backup
// still running is never handed to a second node.
const Timeout = 110 * time.Minute

// ScheduledArgs is the durable job of one period's backup.
type ScheduledArgs struct {
	// Period is the start of the period, UTC.
	Period time.Time `json:"period"`
}

// Kind names the job in the queue.
func (ScheduledArgs) Kind() string { return "tenants_scheduled_backup" }

// InsertOpts make the job unique per period, however many nodes' leaders
// (one at a time, a new one after a restart) insert it.
func (ScheduledArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueBackups, MaxAttempts: 3, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// Schedule makes one backup per period. Durability comes in three
// layers: the queue's leader (one node at a time) inserts the period's job
// on start and then often (a restart starts its timer over, so a period
// must not wait for a full one); the job is unique per period; and the
// period is claimed in the backups table, whose unique key holds after
// the queue forgot a finished job.
type Schedule struct {
	Service *Service
	Store   *tenants.Store
	// Every is the period, Keep how many successful backups stay, Dir
	// where archives go.
	Every time.Duration
	Keep  int
	Dir   string
	// Node names this node in the records.
	Node string
	// Done, if set, hears how each attempt ended (nil: it succeeded).
	Done func(error)
	// Logger defaults to a no-op logger.
	Logger *zap.Logger
}

// PeriodicJob is the job the queue's leader inserts: this period's backup,
// checked every minute (or four times a period, if shorter), so that no period goes without.
func (s *Schedule) PeriodicJob() *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(min(s.Every/4, time.Minute)), func() (river.JobArgs, *river.InsertOpts) {
		return ScheduledArgs{Period: time.Now().UTC().Truncate(s.Every)}, nil
	}, &river.PeriodicJobOpts{ID: "tenants_scheduled_backup", RunOnStart: true})
}

// Worker runs the jobs.
func (s *Schedule) Worker() river.Worker[ScheduledArgs] { return &scheduleWorker{s: s} }

type scheduleWorker struct {
	river.WorkerDefaults[ScheduledArgs]
	s *Schedule
}

func (w *scheduleWorker) Timeout(*river.Job[ScheduledArgs]) time.Duration { return Timeout }

func (w *scheduleWorker) Work(ctx context.Context, job *river.Job[ScheduledArgs]) error {
	err := w.s.run(ctx, job.Args.Period, job.ID)
	if w.s.Done != nil {
		w.s.Done(err)
	}
	return err
}

func (s *Schedule) log() *zap.Logger {
	if s.Logger == nil {
		return zap.NewNop()
	}
	return s.Logger
}

// run makes the backup of period, unless it was made already.
func (s *Schedule) run(ctx context.Context, period time.Time, jobID int64) error {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("creating backup directory: %w", err)
	}
	path := filepath.Join(s.Dir, FileName(s.Service.cfg.Schema, period))
	rec, mine, err := s.Store.ClaimScheduledBackup(ctx, period, jobID, s.Node, path)
	if err != nil || !mine {
		return err
	}
	m, err := s.Service.WriteRecorded(ctx, s.Store, rec, "")
	if err != nil {
		return fmt.Errorf("backing up period %s: %w", period.Format(time.RFC3339), err)
	}
	s.log().Info("scheduled backup made", zap.String("path", path), zap.Int("sites", len(m.Volumes)))
	// The backup is made: a failed pruning is the next period's to do.
	if err := s.prune(ctx); err != nil {
		s.log().Warn("pruning old backups", zap.Error(err))
	}
	return nil
}

// prune removes the archives beyond Keep.
func (s *Schedule) prune(ctx context.Context) error {
	old, err := s.Store.PruneScheduledBackups(ctx, s.Keep)
	if err != nil {
		return err
	}
	for _, b := range old {
		// Another host's archive is not on this disk: its record goes,
		// the file stays for that host's operator.
		if err := os.Remove(b.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log().Warn("removing an old backup", zap.String("path", b.Path), zap.Error(err))
		}
	}
	return nil
}
