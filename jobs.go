package multitenant

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"

	"github.com/agistaffers/caddy-multitenant/alerts"
	"github.com/agistaffers/caddy-multitenant/backup"
	"github.com/agistaffers/caddy-multitenant/internal/pglock"
)

// The platform's durable jobs (scheduled backups, alert deliveries,
// pre-warms) run
// on River, a job queue in PostgreSQL: its tables live in the platform's
// schema, each job runs on one node at a time, a failed one is retried
// with backoff, and one left by a node that died is handed to another.

// jobRescueAfter is when a job still running is taken for one whose node
// died and run again: above the longest job (a backup's Timeout).
const jobRescueAfter = 2 * time.Hour

// jobs is the platform's job queue: a client with its own pool (River
// holds a connection for LISTEN and its leader's, which must not starve
// requests of the shared pool).
type jobs struct {
	pool    *pgxpool.Pool
	client  *river.Client[pgx.Tx]
	started atomic.Bool
}

// newJobs makes the job queue with the workers and periodic jobs that
// add registers; no I/O until start.
func newJobs(dsn, schema string, logger *zap.Logger, add func(*river.Workers) []*river.PeriodicJob) (*jobs, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parsing database url: %w", err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.ConnConfig.RuntimeParams["application_name"] = "caddy-multitenant-jobs"
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("creating job queue pool: %w", err)
	}
	workers := river.NewWorkers()
	periodic := add(workers)
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Schema:               schema,
		Logger:               slog.New(zapslog.NewHandler(logger.Core())),
		Workers:              workers,
		PeriodicJobs:         periodic,
		RescueStuckJobsAfter: jobRescueAfter,
		Queues: map[string]river.QueueConfig{
			river.QueueDefault:  {MaxWorkers: 4},
			backup.QueueBackups: {MaxWorkers: 1},
		},
	})
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("setting up the job queue: %w", err)
	}
	return &jobs{pool: pool, client: client}, nil
}

// migrate applies River's migrations to schema, under the schema's
// migration lock (River's migrator takes none, and nodes start together).
func (j *jobs) migrate(ctx context.Context, schema string) error {
	conn, err := j.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("connecting to database: %w", err)
	}
	defer conn.Release()
	unlock, err := pglock.Session(ctx, conn.Conn(), pglock.Key(pglock.ScopeMigrate, schema, ""))
	if err != nil {
		return fmt.Errorf("taking migration lock: %w", err)
	}
	defer unlock()
	m, err := rivermigrate.New(riverpgxv5.New(j.pool), &rivermigrate.Config{Schema: schema, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("migrating the job queue's tables: %w", err)
	}
	return nil
}

// stop lets running jobs finish (for a bounded time; an unfinished one is
// rescued by another node later), then closes the pool.
func (j *jobs) stop() error {
	defer j.pool.Close()
	if !j.started.Load() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := j.client.Stop(ctx); err == nil {
		return nil
	}
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return j.client.StopAndCancel(ctx)
}

// setUpOperations gives the platform what runs beside serving: the
// backup service, and with the backup, alerts and prewarm options the
// schedule, the alerter, the pre-warm's slots and the job queue they run
// on. No I/O.
func (p *platform) setUpOperations(a *App) error {
	p.backups = newBackups(p.pool, a.Schema, p.runtime, a.logger.Named("backup"))
	if a.Backup != nil {
		p.backupDir = a.Backup.Dir
	}
	if a.Backup == nil && p.alerter == nil && p.prewarm == nil {
		return nil
	}
	var schedule *backup.Schedule
	if c := a.Backup; c != nil {
		schedule = &backup.Schedule{Service: p.backups, Store: p.store, Every: time.Duration(c.Every), Keep: c.Keep,
			Dir: c.Dir, Node: p.node, Done: p.backupDone, Logger: a.logger.Named("backup")}
	}
	var err error
	p.jobs, err = newJobs(a.dsn, a.Schema, a.logger.Named("jobs"), func(w *river.Workers) []*river.PeriodicJob {
		if p.alerter != nil {
			p.alerter.Register(w)
		}
		var periodic []*river.PeriodicJob
		if p.prewarm != nil {
			river.AddWorker(w, p.prewarm.Worker())
			periodic = append(periodic, p.prewarm.PeriodicJob())
		}
		if schedule != nil {
			river.AddWorker(w, schedule.Worker())
			periodic = append(periodic, schedule.PeriodicJob())
		}
		return periodic
	})
	return err
}

// backupDone raises backup_failed when a scheduled backup fails, and
// clears it once one succeeds.
func (p *platform) backupDone(err error) {
	if p.alerter == nil {
		return
	}
	if err != nil {
		p.alerter.Raise(alerts.RuleBackupFailed, "", "a scheduled backup failed: "+err.Error())
		return
	}
	p.alerter.Clear(alerts.RuleBackupFailed, "")
}

// startOperations starts the job queue, once the database answers.
func (p *platform) startOperations(ctx context.Context) error {
	if p.jobs == nil {
		return nil
	}
	if err := p.jobs.client.Start(ctx); err != nil {
		return fmt.Errorf("starting the job queue: %w", err)
	}
	p.jobs.started.Store(true)
	return nil
}
