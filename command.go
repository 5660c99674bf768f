package multitenant

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/agistaffers/caddy-multitenant/internal/pgpool"
	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/provisioner"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "tenants",
		Usage: "<command> [--config <path> [--adapter <name>]] [--database-url <url>] [--schema <name>]",
		Short: "Manages the multi-tenant platform",
		Long: `
Runs the platform's admin actions (the admin API's, through the same admin
service) on its PostgreSQL database and Docker engine directly, so it works
on a fresh install before any admin API key exists: migrate, status,
customers, plans, sites, domains, templates and apikey. Tables by default,
--json for scripts (carrying everything the table shows).

The database is found the way Caddy finds its config: the tenants option of
--config, else of ./Caddyfile, else $DATABASE_URL (--database-url overrides
all three). sites start/stop/logs/… also use the config's Docker engine
(tenants { docker { host … } }, else $DOCKER_HOST). Commands that need the
schema apply pending migrations first.`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.PersistentFlags().StringP("config", "c", "", "Configuration file to read the tenants app from")
			cmd.PersistentFlags().StringP("adapter", "a", "", "Name of config adapter to apply")
			cmd.PersistentFlags().String("database-url", "", "PostgreSQL URL (overrides the config and $DATABASE_URL)")
			cmd.PersistentFlags().String("schema", "", "PostgreSQL schema (default: the config's, else tenants)")
			cmd.PersistentFlags().Bool("json", false, "Print JSON instead of a table")
			cmd.Args = cobra.ArbitraryArgs
			cmd.RunE = unknownCommand
			cmd.AddCommand(&cobra.Command{
				Use:   "migrate",
				Short: "Applies pending database migrations (and imports the catalog into a fresh schema)",
				Args:  cobra.NoArgs,
				RunE:  withEnv(schemaAsIs, cmdMigrate),
			})
			cmd.AddCommand(&cobra.Command{
				Use:   "status",
				Short: "Shows the schema version and how many customers, sites and domains exist",
				Args:  cobra.NoArgs,
				RunE:  withEnv(schemaAsIs, cmdStatus),
			})
			addManageCommands(cmd)
			addBackupCommands(cmd)
		},
	})
}

// unknownCommand answers a command group run without a known subcommand:
// its help when given none, else an error naming the mistake, with the
// subcommands it may have meant.
func unknownCommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's default, set only on its own path
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	} else {
		msg += "; run '" + cmd.CommandPath() + " --help' for its commands"
	}
	return errors.New(msg)
}

// cliEnv is what a subcommand works with.
type cliEnv struct {
	app   *App
	pool  *pgxpool.Pool
	store *tenants.Store
	svc   *manage.Service
	rt    *cliRuntime
	out   *tabwriter.Writer
}

// Whether a command migrates the schema before it runs.
const (
	schemaAsIs    = false // migrate and status look at the schema as it is
	schemaMigrate = true
)

// withEnv finds the database (see appFromFlags), opens a pool for the
// length of the command, migrates it first when migrate is set, and runs
// fn with the admin service.
func withEnv(migrate bool, fn func(ctx context.Context, cmd *cobra.Command, env *cliEnv, args []string) error) func(*cobra.Command, []string) error {
	return withEnvFor(migrate, 5*time.Minute, fn)
}

// withEnvFor is withEnv for commands that may take longer than others
// (backups: as long as the volumes take); 0 means no time limit.
func withEnvFor(migrate bool, limit time.Duration, fn func(ctx context.Context, cmd *cobra.Command, env *cliEnv, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		app, fromConfig, err := appFromFlags(cmd)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithCancel(cmd.Context())
		if limit > 0 {
			ctx, cancel = context.WithTimeout(cmd.Context(), limit)
		}
		defer cancel()
		pool, err := pgpool.Acquire(app.dsn, app.Schema)
		if err != nil {
			return err
		}
		defer pgpool.Release(app.dsn, app.Schema)
		env := &cliEnv{app: app, pool: pool, out: tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)}
		defer env.out.Flush()
		if migrate {
			if err := env.migrate(ctx, cmd); err != nil {
				return err
			}
		}
		opts := app.storeOptions()
		if !fromConfig {
			// No config: the server's settings, as it recorded them, so
			// that the CLI refuses what the server would (a reserved
			// subdomain, a custom domain under the base domain).
			if st, err := tenants.NewStore(pool, opts).RecordedSettings(ctx); err == nil {
				opts.BaseDomain, opts.Reserved = st.BaseDomain, st.Reserved
			} else if !errors.Is(err, tenants.ErrNotFound) && migrate {
				return cliError(manage.Wrap(err))
			}
		}
		env.store = tenants.NewStore(pool, opts)
		env.rt = newCLIRuntime(app, pool, env.store)
		defer env.rt.close()
		env.svc = manage.New(manage.Config{Store: env.store, Runtime: env.rt.siteRuntime, Logger: zap.NewNop(),
			Backups: newBackups(pool, app.Schema, env.rt.siteRuntime, zap.NewNop()), Schema: app.Schema, Node: cliActor()})
		return cliError(fn(ctx, cmd, env, args))
	}
}

// migrate applies pending migrations (a fresh schema also gets the
// catalog), saying so on stderr.
func (env *cliEnv) migrate(ctx context.Context, cmd *cobra.Command) error {
	v, err := tenants.SchemaVersion(ctx, env.pool)
	if err != nil {
		return fmt.Errorf("connecting to database: %w", err)
	}
	if v >= tenants.LatestVersion() {
		return nil
	}
	m, err := tenants.Migrate(ctx, env.pool, env.app.Schema)
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "migrated schema %s from version %d to %d\n", env.app.Schema, m.From, m.To)
	if m.From == 0 {
		n, err := tenants.NewStore(env.pool, env.app.storeOptions()).SeedCatalog(ctx, cliActor())
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "imported %d templates from the built-in catalog\n", n)
	}
	return nil
}

// errNoDatabase says every way the CLI finds its database.
var errNoDatabase = errors.New("no database to work on: give --config <file> with a tenants option (or --database-url <url>), " +
	"run where ./Caddyfile has a tenants option, or set DATABASE_URL")

// appFromFlags builds the tenants app settings the way the server would
// see them, finding the database like Caddy finds its config: the tenants
// option of --config, else of ./Caddyfile, else $DATABASE_URL;
// --database-url and --schema override. fromConfig reports whether a
// config gave the settings.
func appFromFlags(cmd *cobra.Command) (app *App, fromConfig bool, err error) {
	flags := cmd.Flags()
	configFile, _ := flags.GetString("config")
	adapter, _ := flags.GetString("adapter")
	dsn, _ := flags.GetString("database-url")
	schema, _ := flags.GetString("schema")

	app = new(App)
	if configFile != "" || fileExists("Caddyfile") {
		name := configFile
		if name == "" {
			name = "./Caddyfile"
		}
		raw, err := tenantsAppJSON(configFile, adapter)
		switch {
		case err != nil:
			return nil, false, fmt.Errorf("loading %s: %w", name, err)
		case raw != nil:
			if err := json.Unmarshal(raw, app); err != nil {
				return nil, false, fmt.Errorf("decoding the tenants option of %s: %w", name, err)
			}
			fromConfig = true
		case configFile != "" && dsn == "":
			return nil, false, fmt.Errorf("%s has no tenants option: %w", name, errNoDatabase)
		}
	}
	switch {
	case dsn != "":
		app.DatabaseURL = dsn
	case app.DatabaseURL == "" && os.Getenv("DATABASE_URL") != "":
		app.DatabaseURL = "{env.DATABASE_URL}"
	case app.DatabaseURL == "":
		return nil, false, errNoDatabase
	}
	if schema != "" {
		app.Schema = schema
	}
	if err := app.expand(); err != nil {
		return nil, false, err
	}
	if err := app.validate(); err != nil {
		if app.dsn == "" {
			return nil, false, fmt.Errorf("%w (%w)", errNoDatabase, err)
		}
		return nil, false, err
	}
	return app, fromConfig, nil
}

// tenantsAppJSON returns the tenants app of a config file (./Caddyfile
// when file is ""), nil when it has none.
func tenantsAppJSON(file, adapter string) (json.RawMessage, error) {
	cfgJSON, _, _, err := caddycmd.LoadConfig(file, adapter)
	if err != nil {
		return nil, err
	}
	var cfg struct {
		Apps map[string]json.RawMessage `json:"apps"`
	}
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		return nil, err
	}
	return cfg.Apps["tenants"], nil
}

func fileExists(name string) bool {
	_, err := os.Stat(name)
	return err == nil
}

// cliRuntime is the CLI's runtime: a provisioner on the config's engine
// and the schema's namespace, made at the first action that needs the
// engine, whose state changes are saved to the database when the command
// ends (the server saves them in batches).
type cliRuntime struct {
	*siteRuntime
	app  *App
	pool *pgxpool.Pool

	mu   sync.Mutex // guards prov
	prov *provisioner.Provisioner

	changesMu sync.Mutex // apart from mu: the provisioner reports while it starts
	changes   map[string]provisioner.SiteRuntime
}

func newCLIRuntime(app *App, pool *pgxpool.Pool, store *tenants.Store) *cliRuntime {
	rt := &cliRuntime{app: app, pool: pool, changes: map[string]provisioner.SiteRuntime{}}
	rt.siteRuntime = &siteRuntime{store: store, policy: app.sitePolicy(), releases: tenants.NewReleaseLocker(pool, app.Schema, nil),
		prov: rt.provisioner, started: rt.started}
	return rt
}

func (rt *cliRuntime) provisioner(ctx context.Context) (*provisioner.Provisioner, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.prov != nil {
		return rt.prov, nil
	}
	// The CLI's process ends with its command: the swarm runtime's client
	// goes with it.
	cfg, _, err := rt.app.provisionerConfig(rt.pool, zap.NewNop())
	if err != nil {
		return nil, err
	}
	// Not a node: every node's use of the old container counts.
	cfg.PeersUse = func(ctx context.Context, siteID, containerID string) (bool, error) {
		return rt.store.PeersUse(ctx, "", siteID, containerID, peerTTL)
	}
	cfg.OnChange = func(s provisioner.SiteRuntime) {
		rt.changesMu.Lock()
		defer rt.changesMu.Unlock()
		rt.changes[s.SiteID] = s
	}
	p, err := provisioner.New(cfg)
	if err != nil {
		return nil, err
	}
	if err := p.Start(ctx); err != nil {
		p.Stop()
		return nil, fmt.Errorf("%w: %w", manage.ErrEngineUnavailable, err)
	}
	rt.prov = p
	return p, nil
}

func (rt *cliRuntime) started() *provisioner.Provisioner {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.prov
}

// close saves the state changes and stops the provisioner.
func (rt *cliRuntime) close() {
	p := rt.started()
	if p == nil {
		return
	}
	p.Stop()
	rt.changesMu.Lock()
	batch := make([]tenants.SiteRuntime, 0, len(rt.changes))
	for _, s := range rt.changes {
		batch = append(batch, toStoreRuntime(s))
	}
	rt.changesMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = rt.store.SaveRuntimes(ctx, batch)
}

// cliActor names the operator in the audit log.
func cliActor() string {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if name == "" {
		name = "unknown"
	}
	return "cli:" + name
}

// cliError words the admin service's errors for a terminal: the field at
// fault first, the cause (the CLI's user is the operator) after.
func cliError(err error) error {
	var e *manage.Error
	if !errors.As(err, &e) {
		return err
	}
	msg := e.Message
	if e.Field != "" {
		msg = "invalid " + e.Field + ": " + msg
		if e.Code == manage.Conflict {
			msg = e.Field + ": " + e.Message
		}
	}
	if e.Err != nil && (e.Code == manage.Internal || e.Code == manage.Unavailable || e.Code == manage.StartFailed || e.Code == manage.Upstream) {
		msg += ": " + e.Err.Error()
	}
	return errors.New(msg)
}
