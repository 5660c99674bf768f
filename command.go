package multitenant

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/agistaffers/caddy-multitenant/admin"
	"github.com/agistaffers/caddy-multitenant/internal/pgpool"
	"github.com/agistaffers/caddy-multitenant/provisioner"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "tenants",
		Usage: "<command> [--config <path> [--adapter <name>]] [--database-url <url>] [--schema <name>]",
		Short: "Manages the multi-tenant platform's database",
		Long: `
Works on the platform's PostgreSQL database directly, so it works on a fresh
install before any admin API key exists: migrate, status, customers, sites,
domains, templates and apikey (create/ls/revoke). Tables by default, --json
for scripts. sites start/stop/logs/rm also talk to the Docker engine of the
config (tenants { docker { host ... } }, else $DOCKER_HOST). The database comes from
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
			cmd.PersistentFlags().Bool("json", false, "Print JSON instead of a table")
			addManageCommands(cmd)
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
			store: tenants.NewStore(pool, app.storeOptions()),
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
	if m.From == 0 {
		return seedCatalog(ctx, env)
	}
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

// seedCatalog imports the built-in template catalog into a freshly
// migrated schema whose templates table is empty.
func seedCatalog(ctx context.Context, env *cliEnv) error {
	n, err := env.store.SeedCatalog(ctx, cliActor())
	if err != nil || n == 0 {
		return err
	}
	fmt.Fprintf(env.out, "imported %d templates from the built-in catalog\n", n)
	return nil
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

// withArgs is withStore for subcommands that take arguments.
func withArgs(fn func(ctx context.Context, cmd *cobra.Command, env *cliEnv, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		return withStore(func(ctx context.Context, cmd *cobra.Command, env *cliEnv) error {
			return fn(ctx, cmd, env, args)
		})(cmd, args)
	}
}

func addManageCommands(root *cobra.Command) {
	group := func(use, short string, subs ...*cobra.Command) {
		c := &cobra.Command{Use: use, Short: short}
		c.AddCommand(subs...)
		root.AddCommand(c)
	}

	customersLs := &cobra.Command{Use: "ls", Short: "Lists customers", Args: cobra.NoArgs, RunE: withArgs(cmdCustomersLs)}
	customersLs.Flags().String("status", "", "Only customers with this status")
	customersAdd := &cobra.Command{Use: "add", Short: "Adds a customer", Args: cobra.NoArgs, RunE: withArgs(cmdCustomersAdd)}
	customersAdd.Flags().String("email", "", "Email address (required)")
	customersAdd.Flags().String("name", "", "Name (required)")
	customersAdd.Flags().String("status", "", "Status: active (default), past_due, suspended or canceled")
	customersAdd.Flags().String("plan", "", "Plan id")
	customersRm := &cobra.Command{Use: "rm <customer id>", Short: "Removes a customer", Args: cobra.ExactArgs(1), RunE: withArgs(cmdCustomersRm)}
	customersRm.Flags().Bool("cascade", false, "Also remove the customer's sites and their containers")
	customersRm.Flags().Bool("purge", false, "With --cascade, also remove the sites' data volumes")
	group("customers", "Lists, adds and removes customers", customersLs, customersAdd, customersRm)

	sitesLs := &cobra.Command{Use: "ls", Short: "Lists sites", Args: cobra.NoArgs, RunE: withArgs(cmdSitesLs)}
	sitesLs.Flags().String("customer", "", "Only the sites of this customer id")
	sitesLs.Flags().String("status", "", "Only sites with this status")
	sitesAdd := &cobra.Command{Use: "add", Short: "Adds a site", Args: cobra.NoArgs, RunE: withArgs(cmdSitesAdd)}
	sitesAdd.Flags().String("customer", "", "Customer id (required)")
	sitesAdd.Flags().String("subdomain", "", "Subdomain (required)")
	sitesAdd.Flags().String("template", "", "Template id or slug (required)")
	sitesAdd.Flags().StringArray("env", nil, "Environment override NAME=value (repeatable)")
	sitesRm := &cobra.Command{Use: "rm <site>", Short: "Removes a site (id or subdomain) and its container", Args: cobra.ExactArgs(1), RunE: withArgs(cmdSitesRm)}
	sitesRm.Flags().Bool("purge", false, "Also remove the site's data volume")
	sitesStart := &cobra.Command{Use: "start <site>", Short: "Starts a site's container and waits until it is ready", Args: cobra.ExactArgs(1), RunE: withArgs(cmdSitesStart)}
	sitesStop := &cobra.Command{Use: "stop <site>", Short: "Stops a site's container", Args: cobra.ExactArgs(1), RunE: withArgs(cmdSitesStop)}
	sitesLogs := &cobra.Command{Use: "logs <site>", Short: "Prints a site container's output", Args: cobra.ExactArgs(1), RunE: withArgs(cmdSitesLogs)}
	sitesLogs.Flags().Int("tail", 100, "Number of last lines (0: all)")
	sitesLogs.Flags().BoolP("follow", "f", false, "Keep printing new output")
	group("sites", "Lists, adds, removes, starts and stops sites; shows their logs", sitesLs, sitesAdd, sitesRm, sitesStart, sitesStop, sitesLogs)

	domainsLs := &cobra.Command{Use: "ls", Short: "Lists custom domains", Args: cobra.NoArgs, RunE: withArgs(cmdDomainsLs)}
	domainsLs.Flags().String("site", "", "Only the domains of this site (id or subdomain)")
	domainsAdd := &cobra.Command{Use: "add <site> <hostname>", Short: "Adds a custom domain to a site (unverified)", Args: cobra.ExactArgs(2), RunE: withArgs(cmdDomainsAdd)}
	domainsRm := &cobra.Command{Use: "rm <domain>", Short: "Removes a custom domain (id or hostname)", Args: cobra.ExactArgs(1), RunE: withArgs(cmdDomainsRm)}
	domainsVerify := &cobra.Command{Use: "verify <domain>", Short: "Checks a custom domain's DNS and marks it verified when it passes", Args: cobra.ExactArgs(1), RunE: withArgs(cmdDomainsVerify)}
	domainsVerify.Flags().StringSlice("public-ip", nil, "The platform's public addresses (A/AAAA records pointing only at them verify)")
	domainsVerify.Flags().String("cname-target", "", "The hostname customers CNAME their domains to")
	domainsVerify.Flags().String("dns-server", "", "Ask this DNS server (host:port) instead of the system resolver")
	domainsVerify.Flags().Bool("force", false, "Mark the domain verified without checking DNS")
	group("domains", "Lists, adds, removes and verifies custom domains", domainsLs, domainsAdd, domainsRm, domainsVerify)

	templatesLs := &cobra.Command{Use: "ls", Short: "Lists templates", Args: cobra.NoArgs, RunE: withArgs(cmdTemplatesLs)}
	templatesImport := &cobra.Command{Use: "import [file]", Short: "Creates or updates (by slug) the templates of a JSON file; default: the built-in catalog", Args: cobra.MaximumNArgs(1), RunE: withArgs(cmdTemplatesImport)}
	templatesExport := &cobra.Command{Use: "export [file]", Short: "Writes every template as JSON (the import format) to file or stdout", Args: cobra.MaximumNArgs(1), RunE: withArgs(cmdTemplatesExport)}
	group("templates", "Lists, imports and exports site templates", templatesLs, templatesImport, templatesExport)

	keyCreate := &cobra.Command{Use: "create", Short: "Creates an admin API key and prints its token (shown this once)", Args: cobra.NoArgs, RunE: withArgs(cmdAPIKeyCreate)}
	keyCreate.Flags().String("name", "", "What the key is for (required)")
	keyCreate.Flags().String("scope", tenants.ScopeWrite, "read or write")
	keyLs := &cobra.Command{Use: "ls", Short: "Lists API keys (never their secrets)", Args: cobra.NoArgs, RunE: withArgs(cmdAPIKeyLs)}
	keyRevoke := &cobra.Command{Use: "revoke <key id>", Short: "Revokes an API key at once", Args: cobra.ExactArgs(1), RunE: withArgs(cmdAPIKeyRevoke)}
	group("apikey", "Creates, lists and revokes admin API keys", keyCreate, keyLs, keyRevoke)
}

func jsonOutput(cmd *cobra.Command) bool {
	v, _ := cmd.Flags().GetBool("json")
	return v
}

// emit prints v as JSON with --json, else runs table.
func emit(cmd *cobra.Command, env *cliEnv, v any, table func()) error {
	if jsonOutput(cmd) {
		enc := json.NewEncoder(env.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	table()
	return nil
}

func flag(cmd *cobra.Command, name string) string {
	v, _ := cmd.Flags().GetString(name)
	return v
}

func boolFlag(cmd *cobra.Command, name string) bool {
	v, _ := cmd.Flags().GetBool(name)
	return v
}

// all pages through a listing.
func all[T any](fetch func(tenants.Page) ([]T, error), id func(*T) string) ([]T, error) {
	var out []T
	p := tenants.Page{Limit: 500}
	for {
		items, err := fetch(p)
		if err != nil {
			return nil, err
		}
		out = append(out, items...)
		if len(items) < p.Limit {
			return out, nil
		}
		p.After = id(&items[len(items)-1])
	}
}

func when(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04")
}

func cmdCustomersLs(ctx context.Context, cmd *cobra.Command, env *cliEnv, _ []string) error {
	list, err := all(func(p tenants.Page) ([]tenants.Customer, error) {
		return env.store.ListCustomers(ctx, tenants.CustomerFilter{Status: flag(cmd, "status")}, p)
	}, func(c *tenants.Customer) string { return c.ID })
	if err != nil {
		return err
	}
	return emit(cmd, env, nonNil(list), func() {
		fmt.Fprintln(env.out, "ID\tEMAIL\tNAME\tSTATUS\tPLAN\tCREATED")
		for _, c := range list {
			fmt.Fprintf(env.out, "%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Email, c.Name, c.Status, dash(c.PlanID), when(&c.CreatedAt))
		}
	})
}

func cmdCustomersAdd(ctx context.Context, cmd *cobra.Command, env *cliEnv, _ []string) error {
	c := &tenants.Customer{Email: flag(cmd, "email"), Name: flag(cmd, "name"), Status: flag(cmd, "status"), PlanID: flag(cmd, "plan")}
	if err := env.store.CreateCustomer(ctx, cliActor(), c); err != nil {
		return cliError(err)
	}
	return emit(cmd, env, c, func() { fmt.Fprintf(env.out, "added customer %s (%s)\n", c.ID, c.Email) })
}

func cmdCustomersRm(ctx context.Context, cmd *cobra.Command, env *cliEnv, args []string) error {
	id := args[0]
	cascade := boolFlag(cmd, "cascade")
	var sites []tenants.Site
	if cascade {
		var err error
		sites, err = all(func(p tenants.Page) ([]tenants.Site, error) {
			return env.store.ListSites(ctx, tenants.SiteFilter{CustomerID: id}, p)
		}, func(s *tenants.Site) string { return s.ID })
		if err != nil {
			return cliError(err)
		}
	}
	if err := env.store.DeleteCustomer(ctx, cliActor(), id, cascade); err != nil {
		if errors.Is(err, tenants.ErrConflict) && !cascade {
			return fmt.Errorf("%w (use --cascade to remove them too)", err)
		}
		return cliError(err)
	}
	if len(sites) > 0 {
		removeContainers(ctx, cmd, env, sites, boolFlag(cmd, "purge"))
	}
	fmt.Fprintf(env.out, "removed customer %s and %d sites\n", id, len(sites))
	return nil
}

// removeContainers removes the containers of deleted sites; Docker
// failures are reported, not fatal: the sites are gone either way.
func removeContainers(ctx context.Context, cmd *cobra.Command, env *cliEnv, sites []tenants.Site, purge bool) {
	prov, stop, err := env.provisioner(ctx)
	if err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: containers of removed sites were not removed: %v\n", err)
		return
	}
	defer stop()
	for _, s := range sites {
		if err := prov.RemoveSite(ctx, s.ID, purge); err != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "warning: removing container of site %s: %v\n", s.ID, err)
		}
	}
}

// provisioner makes a provisioner on the config's Docker engine and the
// schema's namespace, as the server does, for the length of a command.
func (env *cliEnv) provisioner(ctx context.Context) (*provisioner.Provisioner, func(), error) {
	a := env.app
	prov, err := provisioner.New(a.provisionerConfig(env.pool, zap.NewNop()))
	if err != nil {
		return nil, nil, err
	}
	if err := prov.Start(ctx); err != nil {
		prov.Stop()
		return nil, nil, fmt.Errorf("connecting to docker: %w", err)
	}
	return prov, func() { prov.Stop() }, nil
}

// site finds a site by id or subdomain.
func (env *cliEnv) site(ctx context.Context, ref string) (*tenants.Site, error) {
	return byRef(ctx, ref, "site", env.store.GetSite, env.store.GetSiteBySubdomain)
}

// byRef finds what ref names: by id when it looks like a uuid, else by
// name (a subdomain, a hostname).
func byRef[T any](ctx context.Context, ref, kind string, byID, byName func(context.Context, string) (*T, error)) (*T, error) {
	find := byName
	if len(ref) == 36 && strings.Count(ref, "-") == 4 {
		find = byID
	}
	v, err := find(ctx, ref)
	if errors.Is(err, tenants.ErrNotFound) {
		return nil, fmt.Errorf("no %s %q", kind, ref)
	}
	return v, err
}

func cmdSitesLs(ctx context.Context, cmd *cobra.Command, env *cliEnv, _ []string) error {
	f := tenants.SiteFilter{CustomerID: flag(cmd, "customer"), Status: flag(cmd, "status")}
	list, err := all(func(p tenants.Page) ([]tenants.Site, error) { return env.store.ListSites(ctx, f, p) },
		func(s *tenants.Site) string { return s.ID })
	if err != nil {
		return cliError(err)
	}
	runtimes, err := env.store.ListRuntimes(ctx)
	if err != nil {
		return err
	}
	state := map[string]string{}
	for _, r := range runtimes {
		state[r.SiteID] = r.State
	}
	return emit(cmd, env, nonNil(list), func() {
		fmt.Fprintln(env.out, "ID\tSUBDOMAIN\tCUSTOMER\tTEMPLATE\tSTATUS\tCONTAINER")
		for _, s := range list {
			fmt.Fprintf(env.out, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Subdomain, s.CustomerID, s.TemplateID, s.Status, dash(state[s.ID]))
		}
	})
}

func cmdSitesAdd(ctx context.Context, cmd *cobra.Command, env *cliEnv, _ []string) error {
	tplRef := flag(cmd, "template")
	tplID := tplRef
	if tplRef != "" && !(len(tplRef) == 36 && strings.Count(tplRef, "-") == 4) {
		t, err := env.store.GetTemplateBySlug(ctx, tplRef)
		if err != nil {
			return fmt.Errorf("no template %q", tplRef)
		}
		tplID = t.ID
	}
	envVars := map[string]string{}
	for _, kv := range mustStringArray(cmd, "env") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("--env %q: want NAME=value", kv)
		}
		envVars[k] = v
	}
	s := &tenants.Site{CustomerID: flag(cmd, "customer"), Subdomain: flag(cmd, "subdomain"), TemplateID: tplID, Env: envVars}
	if err := env.store.CreateSite(ctx, cliActor(), s); err != nil {
		return cliError(err)
	}
	return emit(cmd, env, s, func() { fmt.Fprintf(env.out, "added site %s (%s)\n", s.ID, s.Subdomain) })
}

func mustStringArray(cmd *cobra.Command, name string) []string {
	v, _ := cmd.Flags().GetStringArray(name)
	return v
}

func cmdSitesRm(ctx context.Context, cmd *cobra.Command, env *cliEnv, args []string) error {
	s, err := env.site(ctx, args[0])
	if err != nil {
		return err
	}
	if err := env.store.DeleteSite(ctx, cliActor(), s.ID); err != nil {
		return cliError(err)
	}
	removeContainers(ctx, cmd, env, []tenants.Site{*s}, boolFlag(cmd, "purge"))
	fmt.Fprintf(env.out, "removed site %s (%s)\n", s.ID, s.Subdomain)
	return nil
}

func cmdSitesStart(ctx context.Context, cmd *cobra.Command, env *cliEnv, args []string) error {
	s, err := env.site(ctx, args[0])
	if err != nil {
		return err
	}
	sp, err := env.app.sitePolicy().siteSpec(ctx, env.store, s.ID)
	if err != nil {
		return err
	}
	prov, stop, err := env.provisioner(ctx)
	if err != nil {
		return err
	}
	defer stop()
	upstream, err := prov.Ensure(ctx, sp)
	if err != nil {
		return err
	}
	st := adminStatus(prov.Status(s.ID))
	_ = env.store.SaveRuntimes(ctx, []tenants.SiteRuntime{toStoreRuntime(prov.Status(s.ID))})
	return emit(cmd, env, st, func() { fmt.Fprintf(env.out, "site %s is running at %s\n", s.Subdomain, upstream) })
}

func cmdSitesStop(ctx context.Context, cmd *cobra.Command, env *cliEnv, args []string) error {
	s, err := env.site(ctx, args[0])
	if err != nil {
		return err
	}
	prov, stop, err := env.provisioner(ctx)
	if err != nil {
		return err
	}
	defer stop()
	if err := prov.StopSite(ctx, s.ID); err != nil {
		return err
	}
	st := adminStatus(prov.Status(s.ID))
	_ = env.store.SaveRuntimes(ctx, []tenants.SiteRuntime{toStoreRuntime(prov.Status(s.ID))})
	return emit(cmd, env, st, func() { fmt.Fprintf(env.out, "site %s is stopped\n", s.Subdomain) })
}

func cmdSitesLogs(ctx context.Context, cmd *cobra.Command, env *cliEnv, args []string) error {
	s, err := env.site(ctx, args[0])
	if err != nil {
		return err
	}
	tail, _ := cmd.Flags().GetInt("tail")
	follow := boolFlag(cmd, "follow")
	prov, stop, err := env.provisioner(ctx)
	if err != nil {
		return err
	}
	defer stop()
	if follow {
		// Follow until interrupted, not for the command's usual bound.
		ctx = cmd.Context()
	}
	rc, err := prov.Logs(ctx, s.ID, tail, follow)
	if err != nil {
		return err
	}
	defer rc.Close()
	env.out.Flush()
	_, err = io.Copy(cmd.OutOrStdout(), rc)
	return err
}

// domain finds a domain by id or hostname.
func (env *cliEnv) domain(ctx context.Context, ref string) (*tenants.Domain, error) {
	return byRef(ctx, ref, "domain", env.store.GetDomain, env.store.GetDomainByHostname)
}

func cmdDomainsLs(ctx context.Context, cmd *cobra.Command, env *cliEnv, _ []string) error {
	siteID := ""
	if ref := flag(cmd, "site"); ref != "" {
		s, err := env.site(ctx, ref)
		if err != nil {
			return err
		}
		siteID = s.ID
	}
	list, err := all(func(p tenants.Page) ([]tenants.Domain, error) { return env.store.ListDomains(ctx, siteID, p) },
		func(d *tenants.Domain) string { return d.ID })
	if err != nil {
		return cliError(err)
	}
	return emit(cmd, env, nonNil(list), func() {
		fmt.Fprintln(env.out, "ID\tHOSTNAME\tSITE\tVERIFIED\tVERIFY TOKEN")
		for _, d := range list {
			fmt.Fprintf(env.out, "%s\t%s\t%s\t%s\t%s\n", d.ID, d.Hostname, d.SiteID, when(d.VerifiedAt), d.VerifyToken)
		}
	})
}

func cmdDomainsAdd(ctx context.Context, cmd *cobra.Command, env *cliEnv, args []string) error {
	s, err := env.site(ctx, args[0])
	if err != nil {
		return err
	}
	d := &tenants.Domain{SiteID: s.ID, Hostname: args[1]}
	if err := env.store.CreateDomain(ctx, cliActor(), d); err != nil {
		return cliError(err)
	}
	return emit(cmd, env, d, func() {
		fmt.Fprintf(env.out, "added %s to site %s (unverified)\nto verify, add the DNS record:\n  TXT %s%s %q\nthen run: caddy tenants domains verify %s\n",
			d.Hostname, s.Subdomain, admin.TXTPrefix, d.Hostname, d.VerifyToken, d.Hostname)
	})
}

func cmdDomainsRm(ctx context.Context, cmd *cobra.Command, env *cliEnv, args []string) error {
	d, err := env.domain(ctx, args[0])
	if err != nil {
		return err
	}
	if err := env.store.DeleteDomain(ctx, cliActor(), d.ID); err != nil {
		return cliError(err)
	}
	fmt.Fprintf(env.out, "removed domain %s\n", d.Hostname)
	return nil
}

func cmdDomainsVerify(ctx context.Context, cmd *cobra.Command, env *cliEnv, args []string) error {
	d, err := env.domain(ctx, args[0])
	if err != nil {
		return err
	}
	v := &admin.Verifier{CNAMETarget: flag(cmd, "cname-target")}
	ips, _ := cmd.Flags().GetStringSlice("public-ip")
	for _, s := range ips {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return fmt.Errorf("--public-ip %q is not an IP address", s)
		}
		v.PublicIPs = append(v.PublicIPs, ip)
	}
	if addr := flag(cmd, "dns-server"); addr != "" {
		v.Resolver = admin.NewResolver(addr)
	}
	res := admin.VerifyResult{Domain: d, Expect: v.Expect(d.Hostname, d.VerifyToken)}
	if boolFlag(cmd, "force") {
		res.Method = "manual"
	} else {
		res.Method, res.Reason = v.Verify(ctx, d.Hostname, d.VerifyToken)
	}
	if res.Method != "" {
		if d, err = env.store.SetDomainVerified(ctx, cliActor(), d.ID, true); err != nil {
			return err
		}
		res.Domain, res.Verified = d, true
	}
	if err := emit(cmd, env, res, func() {
		if res.Verified {
			fmt.Fprintf(env.out, "%s is verified (%s)\n", d.Hostname, res.Method)
			return
		}
		fmt.Fprintf(env.out, "%s is not verified: %s\nany of these records verifies it:\n", d.Hostname, res.Reason)
		for _, e := range res.Expect {
			fmt.Fprintf(env.out, "  %s\n", e)
		}
	}); err != nil {
		return err
	}
	if !res.Verified {
		env.out.Flush()
		return fmt.Errorf("%s is not verified", d.Hostname)
	}
	return nil
}

func cmdTemplatesLs(ctx context.Context, cmd *cobra.Command, env *cliEnv, _ []string) error {
	list, err := all(func(p tenants.Page) ([]tenants.Template, error) { return env.store.ListTemplates(ctx, p) },
		func(t *tenants.Template) string { return t.ID })
	if err != nil {
		return err
	}
	return emit(cmd, env, nonNil(list), func() {
		fmt.Fprintln(env.out, "ID\tSLUG\tNAME\tIMAGE\tPORT\tVERSION")
		for _, t := range list {
			fmt.Fprintf(env.out, "%s\t%s\t%s\t%s\t%d\t%d\n", t.ID, t.Slug, t.Name, t.Image, t.Port, t.Version)
		}
	})
}

func cmdTemplatesImport(ctx context.Context, cmd *cobra.Command, env *cliEnv, args []string) error {
	var list []tenants.Template
	var err error
	source := "the built-in catalog"
	if len(args) == 1 {
		source = args[0]
		var data []byte
		if args[0] == "-" {
			data, err = io.ReadAll(cmd.InOrStdin())
		} else {
			data, err = os.ReadFile(args[0])
		}
		if err != nil {
			return err
		}
		list, err = tenants.ParseTemplates(data)
	} else {
		list, err = tenants.Catalog()
	}
	if err != nil {
		return err
	}
	res, err := env.store.ImportTemplates(ctx, cliActor(), list)
	if err != nil {
		return cliError(err)
	}
	return emit(cmd, env, res, func() {
		fmt.Fprintf(env.out, "imported %s: %d created, %d updated, %d unchanged\n", source, len(res.Created), len(res.Updated), len(res.Unchanged))
	})
}

func cmdTemplatesExport(ctx context.Context, cmd *cobra.Command, env *cliEnv, args []string) error {
	list, err := all(func(p tenants.Page) ([]tenants.Template, error) { return env.store.ListTemplates(ctx, p) },
		func(t *tenants.Template) string { return t.ID })
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(tenants.TemplateFile{Templates: nonNil(list)}, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if len(args) == 1 && args[0] != "-" {
		if err := os.WriteFile(args[0], data, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(env.out, "exported %d templates to %s\n", len(list), args[0])
		return nil
	}
	_, err = env.out.Write(data)
	return err
}

func cmdAPIKeyCreate(ctx context.Context, cmd *cobra.Command, env *cliEnv, _ []string) error {
	token, key, err := env.store.CreateAPIKey(ctx, cliActor(), flag(cmd, "name"), flag(cmd, "scope"))
	if err != nil {
		return cliError(err)
	}
	out := struct {
		*tenants.APIKey
		Token string `json:"token"`
	}{key, token}
	return emit(cmd, env, out, func() {
		fmt.Fprintf(env.out, "created %s key %s (%s)\n%s\nthis token is shown once: store it now\n", key.Scope, key.KeyID, key.Name, token)
	})
}

func cmdAPIKeyLs(ctx context.Context, cmd *cobra.Command, env *cliEnv, _ []string) error {
	list, err := env.store.ListAPIKeys(ctx)
	if err != nil {
		return err
	}
	return emit(cmd, env, nonNil(list), func() {
		fmt.Fprintln(env.out, "KEY ID\tNAME\tSCOPE\tCREATED\tREVOKED")
		for _, k := range list {
			fmt.Fprintf(env.out, "%s\t%s\t%s\t%s\t%s\n", k.KeyID, k.Name, k.Scope, when(&k.CreatedAt), when(k.RevokedAt))
		}
	})
}

func cmdAPIKeyRevoke(ctx context.Context, cmd *cobra.Command, env *cliEnv, args []string) error {
	if err := env.store.RevokeAPIKey(ctx, cliActor(), args[0]); err != nil {
		if errors.Is(err, tenants.ErrNotFound) {
			return fmt.Errorf("no api key %q", args[0])
		}
		return err
	}
	fmt.Fprintf(env.out, "revoked api key %s\n", args[0])
	return nil
}

// cliError words the store's errors for a terminal.
func cliError(err error) error {
	var verr *tenants.ValidationError
	switch {
	case errors.As(err, &verr):
		return fmt.Errorf("invalid %s: %s", verr.Field, verr.Message)
	case errors.Is(err, tenants.ErrNotFound):
		return errors.New("not found")
	}
	return err
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
