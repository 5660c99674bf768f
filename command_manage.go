package multitenant

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// The CLI's admin commands: each translates flags and arguments to one
// action of the admin service and its answer to a table or, with --json,
// the same data as JSON. Wherever a command takes an id it takes the
// natural key too (email, slug, subdomain, hostname).

func addManageCommands(root *cobra.Command) {
	group := func(use, short string, subs ...*cobra.Command) {
		c := &cobra.Command{Use: use, Short: short, Args: cobra.ArbitraryArgs, RunE: unknownCommand}
		c.AddCommand(subs...)
		root.AddCommand(c)
	}
	cmd := func(use, short string, args cobra.PositionalArgs, fn func(context.Context, *cobra.Command, *cliEnv, []string) error) *cobra.Command {
		return &cobra.Command{Use: use, Short: short, Args: args, RunE: withEnv(schemaMigrate, fn)}
	}

	customersLs := cmd("ls", "Lists customers", cobra.NoArgs, cmdCustomersLs)
	customersLs.Flags().String("status", "", "Only customers with this status")
	customersAdd := cmd("add", "Adds a customer", cobra.NoArgs, cmdCustomersAdd)
	customersAdd.Flags().String("email", "", "Email address (required)")
	customersAdd.Flags().String("name", "", "Name (required)")
	customersAdd.Flags().String("status", "", "Status: active (default), past_due, suspended or canceled")
	customersAdd.Flags().String("plan", "", "Plan id or slug")
	customersRm := cmd("rm <customer>", "Removes a customer (id or email)", cobra.ExactArgs(1), cmdCustomersRm)
	customersRm.Flags().Bool("cascade", false, "Also remove the customer's sites and their containers")
	customersRm.Flags().Bool("purge", false, "With --cascade, also remove the sites' data volumes")
	customersSuspend := cmd("suspend <customer>", "Suspends a customer: its sites show the suspended page, their containers stop", cobra.ExactArgs(1), cmdCustomerStatus(tenants.CustomerSuspended))
	customersResume := cmd("resume <customer>", "Makes a suspended customer active again", cobra.ExactArgs(1), cmdCustomerStatus(tenants.CustomerActive))
	admins, customersInvite := accountCommands(cmd)
	group("customers", "Lists, adds, removes, suspends, resumes customers and invites their users", customersLs, customersAdd, customersRm, customersSuspend, customersResume, customersInvite)
	group("admins", "Adds, lists and removes operators of the web UI; sets passwords", admins...)

	plansLs := cmd("ls", "Lists plans", cobra.NoArgs, cmdPlansLs)
	plansAdd := cmd("add", "Adds a plan", cobra.NoArgs, cmdPlansAdd)
	plansAdd.Flags().String("slug", "", "Slug (required)")
	plansAdd.Flags().String("name", "", "Name (required)")
	plansAdd.Flags().Int("max-sites", 1, "How many sites a customer on the plan may have")
	plansAdd.Flags().String("memory", "", "Memory limit of its sites' containers, e.g. 512MiB (where the template sets none)")
	plansAdd.Flags().Float64("cpus", 0, "CPU limit of its sites' containers (where the template sets none)")
	plansAdd.Flags().Int64("pids", 0, "Pids limit of its sites' containers (where the template sets none)")
	plansAdd.Flags().String("max-replicas", "", "Cap on its sites' replicas, 1 to 64, below their template's max (default: none)")
	plansSet := cmd("set <plan>", "Changes a plan's cap on its sites' replicas", cobra.ExactArgs(1), cmdPlansSet)
	plansSet.Flags().String("max-replicas", "", "1 to 64, or none: no cap (the template's max_replicas)")
	plansRm := cmd("rm <plan>", "Removes a plan (id or slug)", cobra.ExactArgs(1), cmdPlansRm)
	group("plans", "Lists, adds, changes and removes plans", plansLs, plansAdd, plansSet, plansRm)

	sitesLs := cmd("ls", "Lists sites with their container's state", cobra.NoArgs, cmdSitesLs)
	sitesLs.Flags().String("customer", "", "Only the sites of this customer (id or email)")
	sitesLs.Flags().String("template", "", "Only the sites of this template (id or slug)")
	sitesLs.Flags().String("status", "", "Only sites with this status")
	sitesAdd := cmd("add", "Adds a site", cobra.NoArgs, cmdSitesAdd)
	sitesAdd.Flags().String("customer", "", "Customer id or email (required)")
	sitesAdd.Flags().String("subdomain", "", "Subdomain (required)")
	sitesAdd.Flags().String("template", "", "Template id or slug (required)")
	sitesAdd.Flags().StringArray("env", nil, "Environment override NAME=value (repeatable)")
	sitesSet := cmd("set <site>", "Changes a site's warm-start settings: serving stale responses while it starts, and pre-warming", cobra.ExactArgs(1), cmdSitesSet)
	sitesSet.Flags().String("serve-stale", "", "on, off, or template (take the template's setting)")
	sitesSet.Flags().String("prewarm", "", "on or off: whether the site may be started before its usual first visitor")
	sitesRm := cmd("rm <site>", "Removes a site (id or subdomain) and its container", cobra.ExactArgs(1), cmdSitesRm)
	sitesRm.Flags().Bool("purge", false, "Also remove the site's data volume")
	sitesStatus := cmd("status <site>", "Shows a site's container: its state and its last failed start", cobra.ExactArgs(1), cmdSitesStatus)
	var actions []*cobra.Command
	for _, a := range []struct{ action, short string }{
		{manage.ActionStart, "Starts a site's container and waits until it is ready"},
		{manage.ActionStop, "Stops a site's container"},
		{manage.ActionRestart, "Stops and starts a site's container"},
		{manage.ActionRedeploy, "Makes a site's current definition a new release in a new container (the volume is kept; a running site without a gap)"},
	} {
		actions = append(actions, cmd(a.action+" <site>", a.short, cobra.ExactArgs(1), cmdSiteAction(a.action)))
	}
	sitesUptime := cmd("uptime <site>", "Shows a site's uptime history: its intervals up, asleep, failed and unhealthy, and its uptime percentage (asleep left out)", cobra.ExactArgs(1), cmdSitesUptime)
	sitesUptime.Flags().Duration("window", manage.DefaultUptimeWindow, "How far back (at most 720h)")
	sitesLogs := cmd("logs <site>", "Prints a site container's output (or its last failed start)", cobra.ExactArgs(1), cmdSitesLogs)
	sitesLogs.Flags().Int("tail", manage.DefaultLogTail, "Number of last lines (0: all)")
	sitesLogs.Flags().BoolP("follow", "f", false, "Keep printing new output")
	group("sites", "Lists, adds, removes, starts, stops, restarts, redeploys, deploys and rolls back sites; shows their status, logs and releases",
		append(append([]*cobra.Command{sitesLs, sitesAdd, sitesSet, sitesRm, sitesStatus, sitesUptime, sitesLogs}, actions...), releaseCommands(cmd)...)...)

	domainsLs := cmd("ls", "Lists custom domains", cobra.NoArgs, cmdDomainsLs)
	domainsLs.Flags().String("site", "", "Only the domains of this site (id or subdomain)")
	domainsAdd := cmd("add <site> <hostname>", "Adds a custom domain to a site (unverified)", cobra.ExactArgs(2), cmdDomainsAdd)
	domainsRm := cmd("rm <domain>", "Removes a custom domain (id or hostname)", cobra.ExactArgs(1), cmdDomainsRm)
	domainsVerify := cmd("verify <domain>", "Checks a custom domain's DNS and marks it verified when it passes", cobra.ExactArgs(1), cmdDomainsVerify)
	domainsVerify.Flags().StringSlice("public-ip", nil, "The platform's public addresses (A/AAAA records pointing only at them verify)")
	domainsVerify.Flags().String("cname-target", "", "The hostname customers CNAME their domains to")
	domainsVerify.Flags().String("dns-server", "", "Ask this DNS server (host:port) instead of the system resolver")
	domainsVerify.Flags().Bool("force", false, "Mark the domain verified without checking DNS")
	group("domains", "Lists, adds, removes and verifies custom domains", domainsLs, domainsAdd, domainsRm, domainsVerify)

	templatesLs := cmd("ls", "Lists templates", cobra.NoArgs, cmdTemplatesLs)
	templatesImport := cmd("import [file]", "Creates or updates (by slug) the templates of a JSON file; default: the built-in catalog", cobra.MaximumNArgs(1), cmdTemplatesImport)
	templatesExport := cmd("export [file]", "Writes every template as JSON (the import format) to file or stdout", cobra.MaximumNArgs(1), cmdTemplatesExport)
	templatesSet := cmd("set <template>", "Changes a template's autoscaling: the most replicas of its sites and the in-flight requests per replica aimed for", cobra.ExactArgs(1), cmdTemplatesSet)
	templatesSet.Flags().Int("max-replicas", 0, "Most replicas of a site, 1 to 64 (1: no scaling)")
	templatesSet.Flags().Int("target-concurrency", 0, "In-flight requests per replica the autoscaler aims for, 1 to 10000")
	group("templates", "Lists, imports, exports and changes site templates", templatesLs, templatesImport, templatesExport, templatesSet)

	keyCreate := cmd("create", "Creates an admin API key and prints its token (shown this once)", cobra.NoArgs, cmdAPIKeyCreate)
	keyCreate.Flags().String("name", "", "What the key is for (required)")
	keyCreate.Flags().String("scope", tenants.ScopeWrite, "read or write")
	keyLs := cmd("ls", "Lists API keys (never their secrets)", cobra.NoArgs, cmdAPIKeyLs)
	keyRevoke := cmd("revoke <key id>", "Revokes an API key at once", cobra.ExactArgs(1), cmdAPIKeyRevoke)
	group("apikey", "Creates, lists and revokes admin API keys", keyCreate, keyLs, keyRevoke)
}

func cmdMigrate(ctx context.Context, _ *cobra.Command, env *cliEnv, _ []string) error {
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
		n, err := env.store.SeedCatalog(ctx, cliActor())
		if err != nil || n == 0 {
			return err
		}
		fmt.Fprintf(env.out, "imported %d templates from the built-in catalog\n", n)
	}
	return nil
}

func cmdStatus(ctx context.Context, _ *cobra.Command, env *cliEnv, _ []string) error {
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

// warn prints what the service warned of, on stderr.
func warn(cmd *cobra.Command, warnings []string) {
	for _, w := range warnings {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", w)
	}
}

func flag(cmd *cobra.Command, name string) string {
	v, _ := cmd.Flags().GetString(name)
	return v
}

func boolFlag(cmd *cobra.Command, name string) bool {
	v, _ := cmd.Flags().GetBool(name)
	return v
}

func when(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// Customers

func cmdCustomersLs(ctx context.Context, cmd *cobra.Command, env *cliEnv, _ []string) error {
	list, err := env.svc.AllCustomers(ctx, flag(cmd, "status"))
	if err != nil {
		return err
	}
	return emit(cmd, env, nonNil(list), func() {
		fmt.Fprintln(env.out, "ID\tEMAIL\tNAME\tSTATUS\tPLAN\tCREATED")
		for _, c := range list {
			fmt.Fprintf(env.out, "%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Email, c.Name, c.Status, dash(c.PlanSlug), when(&c.CreatedAt))
		}
	})
}

func cmdCustomersAdd(ctx context.Context, cmd *cobra.Command, env *cliEnv, _ []string) error {
	c, err := env.svc.CreateCustomer(ctx, cliActor(), manage.CustomerInput{Email: flag(cmd, "email"), Name: flag(cmd, "name"),
		Status: flag(cmd, "status"), Plan: flag(cmd, "plan")})
	if err != nil {
		return err
	}
	return emit(cmd, env, c, func() { fmt.Fprintf(env.out, "added customer %s (%s)\n", c.ID, c.Email) })
}

func cmdCustomersRm(ctx context.Context, cmd *cobra.Command, env *cliEnv, args []string) error {
	cascade := boolFlag(cmd, "cascade")
	n, err := env.svc.DeleteCustomer(ctx, cliActor(), args[0], cascade, boolFlag(cmd, "purge"))
	if manage.IsCode(err, manage.Conflict) && !cascade {
		return fmt.Errorf("%w (use --cascade to remove them too)", cliError(err))
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(env.out, "removed customer %s and %d sites\n", args[0], n)
	return nil
}

func cmdCustomerStatus(status string) func(context.Context, *cobra.Command, *cliEnv, []string) error {
	return func(ctx context.Context, cmd *cobra.Command, env *cliEnv, args []string) error {
		c, err := env.svc.SetCustomerStatus(ctx, cliActor(), args[0], status)
		if err != nil {
			return err
		}
		return emit(cmd, env, c, func() { fmt.Fprintf(env.out, "customer %s is %s\n", c.Email, c.Status) })
	}
}

// Plans

func cmdPlansLs(ctx context.Context, cmd *cobra.Command, env *cliEnv, _ []string) error {
	list, err := env.svc.ListPlans(ctx, manage.Page{Limit: 500})
	if err != nil {
		return err
	}
	return emit(cmd, env, nonNil(list), func() {
		fmt.Fprintln(env.out, "ID\tSLUG\tNAME\tMAX SITES\tMEMORY\tCPUS\tPIDS\tMAX REPLICAS")
		for _, p := range list {
			replicas := "-"
			if p.MaxReplicas != nil {
				replicas = strconv.Itoa(*p.MaxReplicas)
			}
			fmt.Fprintf(env.out, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", p.ID, p.Slug, p.Name, p.MaxSites,
				orDash(p.MemoryBytes, func(n int64) string { return humanize.IBytes(uint64(n)) }),
				orDash(p.NanoCPUs, func(n int64) string { return fmt.Sprintf("%.2f", float64(n)/1e9) }),
				orDash(p.PidsLimit, func(n int64) string { return fmt.Sprint(n) }), replicas)
		}
	})
}

func orDash(n int64, f func(int64) string) string {
	if n == 0 {
		return "-"
	}
	return f(n)
}

func cmdPlansAdd(ctx context.Context, cmd *cobra.Command, env *cliEnv, _ []string) error {
	in := manage.PlanInput{Slug: flag(cmd, "slug"), Name: flag(cmd, "name")}
	in.MaxSites, _ = cmd.Flags().GetInt("max-sites")
	in.PidsLimit, _ = cmd.Flags().GetInt64("pids")
	cpus, _ := cmd.Flags().GetFloat64("cpus")
	in.NanoCPUs = int64(cpus * 1e9)
	if m := flag(cmd, "memory"); m != "" {
		n, err := parseSize(m)
		if err != nil {
			return fmt.Errorf("--memory: %w", err)
		}
		in.MemoryBytes = n
	}
	if v := flag(cmd, "max-replicas"); v != "" && v != "none" {
		n, err := replicasFlag(v)
		if err != nil {
			return err
		}
		in.MaxReplicas = &n
	}
	p, err := env.svc.CreatePlan(ctx, cliActor(), in)
	if err != nil {
		return err
	}
	return emit(cmd, env, p, func() { fmt.Fprintf(env.out, "added plan %s (%s)\n", p.Slug, p.ID) })
}

func cmdPlansSet(ctx context.Context, cmd *cobra.Command, env *cliEnv, args []string) error {
	var patch manage.PlanPatch
	switch v := flag(cmd, "max-replicas"); v {
	case "":
		return errors.New("nothing to change: give --max-replicas N or none")
	case "none":
		patch.MaxReplicas = manage.Nullable[int]{Set: true}
	default:
		n, err := replicasFlag(v)
		if err != nil {
			return err
		}
		patch.MaxReplicas = manage.Nullable[int]{Set: true, Value: &n}
	}
	p, err := env.svc.UpdatePlan(ctx, cliActor(), args[0], patch)
	if err != nil {
		return err
	}
	return emit(cmd, env, p, func() { fmt.Fprintf(env.out, "plan %s: max replicas %s\n", p.Slug, planReplicas(p)) })
}

// replicasFlag reads a --max-replicas N (the service checks its range).
func replicasFlag(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("--max-replicas %q: want a number from 1 to %d, or none", v, tenants.MaxReplicas)
	}
	return n, nil
}

// planReplicas words a plan's cap on replicas.
func planReplicas(p *tenants.Plan) string {
	if p.MaxReplicas == nil {
		return "not capped"
	}
	return strconv.Itoa(*p.MaxReplicas)
}

func cmdPlansRm(ctx context.Context, cmd *cobra.Command, env *cliEnv, args []string) error {
	if err := env.svc.DeletePlan(ctx, cliActor(), args[0]); err != nil {
		return err
	}
	fmt.Fprintf(env.out, "removed plan %s\n", args[0])
	return nil
}

// Sites

// liveStates lets the admin service see the containers as they are, not
// only as last recorded; without the engine the recorded states do.
func liveStates(ctx context.Context, cmd *cobra.Command, env *cliEnv) {
	if _, err := env.rt.provisioner(ctx); err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: container states as last recorded (the Docker engine does not answer: %v)\n", err)
	}
}

func cmdSitesLs(ctx context.Context, cmd *cobra.Command, env *cliEnv, _ []string) error {
	liveStates(ctx, cmd, env)
	list, err := env.svc.AllSites(ctx, manage.SiteFilter{Customer: flag(cmd, "customer"), Template: flag(cmd, "template"), Status: flag(cmd, "status")})
	if err != nil {
		return err
	}
	return emit(cmd, env, nonNil(list), func() {
		fmt.Fprintln(env.out, "ID\tSUBDOMAIN\tCUSTOMER\tTEMPLATE\tSTATUS\tCONTAINER\tLAST FAILURE")
		for _, s := range list {
			failure := "-"
			if s.Failure != nil {
				failure = when(&s.Failure.At) + " " + s.Failure.Reason
			}
			container := s.State
			if s.Health == manage.HealthUnhealthy {
				container += " (unhealthy)"
			}
			fmt.Fprintf(env.out, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Subdomain, s.CustomerEmail, s.TemplateSlug, s.Status, container, failure)
		}
	})
}

func cmdSitesAdd(ctx context.Context, cmd *cobra.Command, env *cliEnv, _ []string) error {
	envVars := map[string]string{}
	for _, kv := range stringArray(cmd, "env") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("--env %q: want NAME=value", kv)
		}
		envVars[k] = v
	}
	s, err := env.svc.CreateSite(ctx, cliActor(), manage.SiteInput{Customer: flag(cmd, "customer"), Subdomain: flag(cmd, "subdomain"),
		Template: flag(cmd, "template"), Env: envVars})
	if err != nil {
		return err
	}
	warn(cmd, s.Warnings)
	return emit(cmd, env, s, func() { fmt.Fprintf(env.out, "added site %s (%s)\n", s.ID, s.Subdomain) })
}

func cmdSitesSet(ctx context.Context, cmd *cobra.Command, env *cliEnv, args []string) error {
	var patch manage.SitePatch
	switch v := flag(cmd, "serve-stale"); v {
	case "":
	case "template":
		patch.ServeStale = manage.Nullable[bool]{Set: true}
	case "on", "off":
		on := v == "on"
		patch.ServeStale = manage.Nullable[bool]{Set: true, Value: &on}
	default:
		return fmt.Errorf("--serve-stale %q: want on, off or template", v)
	}
	switch v := flag(cmd, "prewarm"); v {
	case "":
	case "on", "off":
		on := v == "on"
		patch.Prewarm = &on
	default:
		return fmt.Errorf("--prewarm %q: want on or off", v)
	}
	if !patch.ServeStale.Set && patch.Prewarm == nil {
		return errors.New("nothing to change: give --serve-stale or --prewarm")
	}
	s, err := env.svc.UpdateSite(ctx, cliActor(), args[0], patch)
	if err != nil {
		return err
	}
	return emit(cmd, env, s, func() {
		stale := "template's"
		if s.ServeStale != nil {
			stale = onOffWord(*s.ServeStale)
		}
		fmt.Fprintf(env.out, "site %s: serve stale %s, pre-warm %s\n", s.Subdomain, stale, onOffWord(s.Prewarm))
	})
}

func onOffWord(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func stringArray(cmd *cobra.Command, name string) []string {
	v, _ := cmd.Flags().GetStringArray(name)
	return v
}

func cmdSitesRm(ctx context.Context, cmd *cobra.Command, env *cliEnv, args []string) error {
	s, err := env.svc.DeleteSite(ctx, cliActor(), args[0], boolFlag(cmd, "purge"))
	if err != nil {
		return err
	}
	fmt.Fprintf(env.out, "removed site %s (%s)\n", s.ID, s.Subdomain)
	return nil
}

func cmdSiteAction(action string) func(context.Context, *cobra.Command, *cliEnv, []string) error {
	return func(ctx context.Context, cmd *cobra.Command, env *cliEnv, args []string) error {
		st, err := env.svc.SiteAction(ctx, cliActor(), args[0], action)
		if err != nil {
			return err
		}
		return emit(cmd, env, st, func() {
			if st.State == manage.StateRunning {
				fmt.Fprintf(env.out, "site %s is running at %s\n", args[0], st.Upstream)
			} else {
				fmt.Fprintf(env.out, "site %s is %s\n", args[0], st.State)
			}
		})
	}
}

func cmdSitesStatus(ctx context.Context, cmd *cobra.Command, env *cliEnv, args []string) error {
	liveStates(ctx, cmd, env)
	st, err := env.svc.SiteStatus(ctx, args[0])
	if err != nil {
		return err
	}
	return emit(cmd, env, st, func() {
		fmt.Fprintf(env.out, "state:\t%s (%s)\n", st.State, st.Source)
		fmt.Fprintf(env.out, "container:\t%s\n", dash(st.ContainerID))
		fmt.Fprintf(env.out, "upstream:\t%s\n", dash(st.Upstream))
		if st.MaxReplicas > 1 {
			fmt.Fprintf(env.out, "replicas:\t%d of at most %d (%s)\n", st.Replicas, st.MaxReplicas, strings.Join(st.Upstreams, ", "))
		}
		fmt.Fprintf(env.out, "last started:\t%s\n", when(st.LastStartedAt))
		fmt.Fprintf(env.out, "last active:\t%s\n", when(st.LastActiveAt))
		if st.Health != "" {
			health := st.Health
			if st.HealthFailures > 0 {
				health += fmt.Sprintf(" (%d failed checks in a row: %s)", st.HealthFailures, st.HealthError)
			}
			if st.Restarting {
				health += ", restarting"
			}
			fmt.Fprintf(env.out, "health:\t%s\n", health)
		}
		if f := st.Failure; f != nil {
			fmt.Fprintf(env.out, "last failure:\t%s: %s", when(&f.At), f.Reason)
			if f.ExitCode != nil {
				fmt.Fprintf(env.out, " (exit code %d)", *f.ExitCode)
			}
			fmt.Fprintln(env.out)
			if tail := strings.TrimSpace(f.LogTail); tail != "" {
				env.out.Flush()
				fmt.Fprintf(cmd.OutOrStdout(), "its last log lines:\n%s\n", tail)
			}
		}
	})
}

func cmdSitesUptime(ctx context.Context, cmd *cobra.Command, env *cliEnv, args []string) error {
	window, _ := cmd.Flags().GetDuration("window")
	u, err := env.svc.SiteUptime(ctx, args[0], window)
	if err != nil {
		return err
	}
	return emit(cmd, env, u, func() {
		pct := "-"
		if u.UptimePercent != nil {
			pct = fmt.Sprintf("%.3f%%", *u.UptimePercent)
		}
		fmt.Fprintf(env.out, "uptime:\t%s (since %s; asleep left out)\n", pct, when(&u.Since))
		for _, st := range tenants.UptimeStates {
			fmt.Fprintf(env.out, "%s:\t%s\n", st, (time.Duration(u.Seconds[st]) * time.Second).Round(time.Second))
		}
		fmt.Fprintln(env.out, "STATE\tFROM\tUNTIL")
		for _, in := range u.Intervals {
			until := "now"
			if in.EndedAt != nil {
				until = when(in.EndedAt)
			}
			fmt.Fprintf(env.out, "%s\t%s\t%s\n", in.State, when(&in.StartedAt), until)
		}
	})
}

func cmdSitesLogs(ctx context.Context, cmd *cobra.Command, env *cliEnv, args []string) error {
	tail, _ := cmd.Flags().GetInt("tail")
	follow := boolFlag(cmd, "follow")
	if follow {
		// Follow until interrupted, not for the command's usual bound.
		ctx = cmd.Context()
	}
	rc, err := env.svc.SiteLogs(ctx, args[0], tail, follow)
	if err != nil {
		return err
	}
	defer rc.Close()
	env.out.Flush()
	_, err = io.Copy(cmd.OutOrStdout(), rc)
	return err
}

// Domains

func cmdDomainsLs(ctx context.Context, cmd *cobra.Command, env *cliEnv, _ []string) error {
	list, err := env.svc.AllDomains(ctx, flag(cmd, "site"))
	if err != nil {
		return err
	}
	return emit(cmd, env, nonNil(list), func() {
		fmt.Fprintln(env.out, "ID\tHOSTNAME\tSITE\tVERIFIED\tVERIFY TOKEN")
		for _, d := range list {
			fmt.Fprintf(env.out, "%s\t%s\t%s\t%s\t%s\n", d.ID, d.Hostname, d.Subdomain, when(d.VerifiedAt), d.VerifyToken)
		}
	})
}

func cmdDomainsAdd(ctx context.Context, cmd *cobra.Command, env *cliEnv, args []string) error {
	d, err := env.svc.CreateDomain(ctx, cliActor(), manage.DomainInput{Site: args[0], Hostname: args[1]})
	if err != nil {
		return err
	}
	return emit(cmd, env, d, func() {
		fmt.Fprintf(env.out, "added %s to site %s (unverified)\nto verify, add the DNS record:\n  TXT %s%s %q\nthen run: caddy tenants domains verify %s\n",
			d.Hostname, d.Subdomain, manage.TXTPrefix, d.Hostname, d.VerifyToken, d.Hostname)
	})
}

func cmdDomainsRm(ctx context.Context, cmd *cobra.Command, env *cliEnv, args []string) error {
	d, err := env.svc.DeleteDomain(ctx, cliActor(), args[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(env.out, "removed domain %s\n", d.Hostname)
	return nil
}

// cmdDomainsVerify verifies as the server's tenant_admin does, with the
// DNS settings given as flags (the CLI has no tenant_admin block).
func cmdDomainsVerify(ctx context.Context, cmd *cobra.Command, env *cliEnv, args []string) error {
	v := &manage.Verifier{CNAMETarget: flag(cmd, "cname-target")}
	ips, _ := cmd.Flags().GetStringSlice("public-ip")
	for _, s := range ips {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return fmt.Errorf("--public-ip %q is not an IP address", s)
		}
		v.PublicIPs = append(v.PublicIPs, ip)
	}
	if addr := flag(cmd, "dns-server"); addr != "" {
		v.Resolver = manage.NewResolver(addr)
	}
	svc := manage.New(manage.Config{Store: env.store, Runtime: env.rt.siteRuntime, Verifier: v})
	res, err := svc.VerifyDomain(ctx, cliActor(), args[0], boolFlag(cmd, "force"))
	if err != nil {
		return err
	}
	if err := emit(cmd, env, res, func() {
		if res.Verified {
			fmt.Fprintf(env.out, "%s is verified (%s)\n", res.Domain.Hostname, dash(res.Method))
			return
		}
		fmt.Fprintf(env.out, "%s is not verified: %s\nany of these records verifies it:\n", res.Domain.Hostname, res.Reason)
		for _, e := range res.Expect {
			fmt.Fprintf(env.out, "  %s\n", e)
		}
	}); err != nil {
		return err
	}
	if !res.Verified {
		env.out.Flush()
		return fmt.Errorf("%s is not verified", res.Domain.Hostname)
	}
	return nil
}

// Templates

func cmdTemplatesLs(ctx context.Context, cmd *cobra.Command, env *cliEnv, _ []string) error {
	list, err := env.svc.AllTemplates(ctx)
	if err != nil {
		return err
	}
	return emit(cmd, env, nonNil(list), func() {
		fmt.Fprintln(env.out, "ID\tSLUG\tNAME\tIMAGE\tPORT\tVERSION\tMAX REPLICAS\tTARGET")
		for _, t := range list {
			fmt.Fprintf(env.out, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\n", t.ID, t.Slug, t.Name, t.Image, t.Port, t.Version,
				t.MaxReplicas, t.TargetConcurrency)
		}
	})
}

func cmdTemplatesSet(ctx context.Context, cmd *cobra.Command, env *cliEnv, args []string) error {
	var patch manage.TemplatePatch
	if cmd.Flags().Changed("max-replicas") {
		n, _ := cmd.Flags().GetInt("max-replicas")
		patch.MaxReplicas = &n
	}
	if cmd.Flags().Changed("target-concurrency") {
		n, _ := cmd.Flags().GetInt("target-concurrency")
		patch.TargetConcurrency = &n
	}
	if patch.MaxReplicas == nil && patch.TargetConcurrency == nil {
		return errors.New("nothing to change: give --max-replicas or --target-concurrency")
	}
	res, err := env.svc.UpdateTemplate(ctx, cliActor(), args[0], patch)
	if err != nil {
		return err
	}
	return emit(cmd, env, res, func() {
		fmt.Fprintf(env.out, "template %s: max replicas %d, target %d in flight per replica (version %d)\n",
			res.Slug, res.MaxReplicas, res.TargetConcurrency, res.Version)
		for _, w := range res.Warnings {
			fmt.Fprintln(env.out, "warning:", w)
		}
	})
}

func cmdTemplatesImport(ctx context.Context, cmd *cobra.Command, env *cliEnv, args []string) error {
	var list []tenants.Template // nil: the built-in catalog
	source := "the built-in catalog"
	if len(args) == 1 {
		source = args[0]
		var data []byte
		var err error
		if args[0] == "-" {
			data, err = io.ReadAll(cmd.InOrStdin())
		} else {
			data, err = os.ReadFile(args[0])
		}
		if err != nil {
			return err
		}
		if list, err = manage.ParseTemplates(data); err != nil {
			return err
		}
	}
	res, err := env.svc.ImportTemplates(ctx, cliActor(), list)
	if err != nil {
		return err
	}
	warn(cmd, res.Warnings)
	return emit(cmd, env, res, func() {
		fmt.Fprintf(env.out, "imported %s: %d created, %d updated, %d unchanged\n", source, len(res.Created), len(res.Updated), len(res.Unchanged))
	})
}

func cmdTemplatesExport(ctx context.Context, cmd *cobra.Command, env *cliEnv, args []string) error {
	file, err := env.svc.ExportTemplates(ctx)
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(file, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if len(args) == 1 && args[0] != "-" {
		if err := os.WriteFile(args[0], data, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(env.out, "exported %d templates to %s\n", len(file.Templates), args[0])
		return nil
	}
	_, err = env.out.Write(data)
	return err
}

// API keys

func cmdAPIKeyCreate(ctx context.Context, cmd *cobra.Command, env *cliEnv, _ []string) error {
	key, err := env.svc.CreateAPIKey(ctx, cliActor(), flag(cmd, "name"), flag(cmd, "scope"))
	if err != nil {
		return err
	}
	return emit(cmd, env, key, func() {
		fmt.Fprintf(env.out, "created %s key %s (%s)\n%s\nthis token is shown once: store it now\n", key.Scope, key.KeyID, key.Name, key.Token)
	})
}

func cmdAPIKeyLs(ctx context.Context, cmd *cobra.Command, env *cliEnv, _ []string) error {
	list, err := env.svc.ListAPIKeys(ctx)
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
	if err := env.svc.RevokeAPIKey(ctx, cliActor(), args[0]); err != nil {
		if manage.IsCode(err, manage.NotFound) {
			return fmt.Errorf("no api key %q", args[0])
		}
		return err
	}
	fmt.Fprintf(env.out, "revoked api key %s\n", args[0])
	return nil
}
