package multitenant

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/agistaffers/caddy-multitenant/internal/pgpool"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "tenants",
		Usage: "<command> [--config <path> [--adapter <name>]] [--database-url <url>] [--schema <name>]",
		Short: "Manages the multi-tenant platform's database",
		Long: `
Works on the platform's PostgreSQL database directly, so it works on a fresh
install before any admin API key exists. The database comes from
--database-url, or from the tenants app of the config given with --config
(default: ./Caddyfile when present), or from $DATABASE_URL.`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.PersistentFlags().StringP("config", "c", "", "Configuration file to read the tenants app from")
			cmd.PersistentFlags().StringP("adapter", "a", "", "Name of config adapter to apply")
			cmd.PersistentFlags().String("database-url", "", "PostgreSQL URL (overrides the config)")
			cmd.PersistentFlags().String("schema", "", "PostgreSQL schema (default: the config's, else tenants)")
			cmd.AddCommand(&cobra.Command{
				Use:   "migrate",
				Short: "Applies pending database migrations",
				Args:  cobra.NoArgs,
				RunE:  withStore(cmdMigrate),
			})
			cmd.AddCommand(&cobra.Command{
				Use:   "status",
				Short: "Shows the schema version and how many customers, sites and domains exist",
				Args:  cobra.NoArgs,
				RunE:  withStore(cmdStatus),
			})
		},
	})
}

// cliEnv is what a subcommand works with.
type cliEnv struct {
	app   *App
	pool  *pgxpool.Pool
	store *tenants.Store
	out   *tabwriter.Writer
}

// withStore resolves the database settings from the flags, opens a pool
// for the duration of the command and runs fn.
func withStore(fn func(ctx context.Context, cmd *cobra.Command, env *cliEnv) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		app, err := appFromFlags(cmd)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Minute)
		defer cancel()
		pool, err := pgpool.Acquire(app.dsn, app.Schema)
		if err != nil {
			return err
		}
		defer pgpool.Release(app.dsn, app.Schema)
		env := &cliEnv{
			app:   app,
			pool:  pool,
			store: tenants.NewStore(pool, tenants.Options{BaseDomain: app.BaseDomain, Reserved: app.Reserved}),
			out:   tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0),
		}
		defer env.out.Flush()
		return fn(ctx, cmd, env)
	}
}

// appFromFlags builds the tenants app settings the way the server would
// see them: from the config file, overridden by flags.
func appFromFlags(cmd *cobra.Command) (*App, error) {
	flags := cmd.Flags()
	configFile, _ := flags.GetString("config")
	adapter, _ := flags.GetString("adapter")
	dsn, _ := flags.GetString("database-url")
	schema, _ := flags.GetString("schema")

	app := new(App)
	if configFile != "" || (dsn == "" && fileExists("Caddyfile")) {
		cfgJSON, _, _, err := caddycmd.LoadConfig(configFile, adapter)
		if err != nil {
			return nil, fmt.Errorf("loading config: %w", err)
		}
		var cfg struct {
			Apps map[string]json.RawMessage `json:"apps"`
		}
		if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
			return nil, fmt.Errorf("decoding config: %w", err)
		}
		if raw, ok := cfg.Apps["tenants"]; ok {
			if err := json.Unmarshal(raw, app); err != nil {
				return nil, fmt.Errorf("decoding tenants app: %w", err)
			}
		} else if dsn == "" {
			return nil, errors.New("the config has no tenants app; pass --database-url")
		}
	}
	if dsn != "" {
		app.DatabaseURL = dsn
	}
	if app.DatabaseURL == "" {
		app.DatabaseURL = "{env.DATABASE_URL}"
	}
	if schema != "" {
		app.Schema = schema
	}
	if err := app.expand(); err != nil {
		return nil, err
	}
	if err := app.validate(); err != nil {
		return nil, err
	}
	return app, nil
}

func fileExists(name string) bool {
	_, err := os.Stat(name)
	return err == nil
}

func cmdMigrate(ctx context.Context, _ *cobra.Command, env *cliEnv) error {
	m, err := tenants.Migrate(ctx, env.pool, env.app.Schema)
	if err != nil {
		return err
	}
	if m.From == m.To {
		fmt.Fprintf(env.out, "schema %s is up to date at version %d\n", env.app.Schema, m.To)
		return nil
	}
	fmt.Fprintf(env.out, "migrated schema %s from version %d to %d\n", env.app.Schema, m.From, m.To)
	return nil
}

func cmdStatus(ctx context.Context, _ *cobra.Command, env *cliEnv) error {
	v, err := tenants.SchemaVersion(ctx, env.pool)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.out, "schema:\t%s\n", env.app.Schema)
	fmt.Fprintf(env.out, "version:\t%d of %d\n", v, tenants.LatestVersion())
	if v == 0 {
		fmt.Fprintln(env.out, "the schema is empty: run `caddy tenants migrate`")
		return nil
	}
	c, err := env.store.Count(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.out, "customers:\t%d\nplans:\t%d\ntemplates:\t%d\nsites:\t%d\ncustom domains:\t%d\nactive api keys:\t%d\n",
		c.Customers, c.Plans, c.Templates, c.Sites, c.Domains, c.APIKeys)
	return nil
}
