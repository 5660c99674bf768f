package multitenant

import (
	"context"
	"fmt"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/agistaffers/caddy-multitenant/backup"
	"github.com/agistaffers/caddy-multitenant/manage"
)

// The CLI's backup commands: backup, restore and backups ls.

func addBackupCommands(root *cobra.Command) {
	backupCmd := &cobra.Command{
		Use:   "backup",
		Short: "Writes a backup archive: the platform's schema and every site's volume (or one site's)",
		Long: `
Writes one archive (tar.gz) holding every table of the platform's schema,
read in one consistent snapshot, and each site's volume, read through the
Docker engine (a site's container may run, be stopped or be gone), with a
manifest of versions, sizes and checksums. It is recorded among the
backups (caddy tenants backups ls).`,
		Args: cobra.NoArgs,
		RunE: withEnvFor(schemaMigrate, 0, cmdBackup),
	}
	backupCmd.Flags().String("site", "", "Back up this site's volume only (id or subdomain), with the whole database")
	backupCmd.Flags().StringP("out", "o", "", "Archive to write (default: tenants-<schema>-<time>.tar.gz here)")
	restoreCmd := &cobra.Command{
		Use:   "restore <archive>",
		Short: "Restores a backup archive: the whole platform onto an empty one, or one site",
		Long: `
Reads the whole archive and checks it against its manifest first: a damaged
archive, or one of a newer schema than this binary knows, changes nothing.
Without --site the platform is restored onto an empty schema (no customers
or sites; what a fresh start put there gives way) and an engine without its
sites' volumes: the same sites serve the same data. With --site only that
site is restored, into a running platform: its volume and, if the site is
gone, its rows; nothing else changes.`,
		Args: cobra.ExactArgs(1),
		RunE: withEnvFor(schemaAsIs, 0, cmdRestore),
	}
	restoreCmd.Flags().String("site", "", "Restore this site only (id or subdomain)")
	backupsLs := &cobra.Command{
		Use:   "ls",
		Short: "Lists backups: when, by whom, outcome, size",
		Args:  cobra.NoArgs,
		RunE:  withEnv(schemaMigrate, cmdBackupsLs),
	}
	backups := &cobra.Command{Use: "backups", Short: "Lists backups", Args: cobra.ArbitraryArgs, RunE: unknownCommand}
	backups.AddCommand(backupsLs)
	root.AddCommand(backupCmd, restoreCmd, backups)
}

func cmdBackup(ctx context.Context, cmd *cobra.Command, env *cliEnv, _ []string) error {
	out := flag(cmd, "out")
	if out == "" {
		out = backup.FileName(env.app.Schema, time.Now())
	}
	b, err := env.svc.CreateBackup(ctx, cliActor(), manage.BackupInput{Site: flag(cmd, "site"), Path: out})
	if err != nil {
		return err
	}
	return emit(cmd, env, b, func() {
		fmt.Fprintf(env.out, "backup %s: %s (%s, %d site volumes)\n", b.ID, b.Path, humanize.IBytes(uint64(b.SizeBytes)), b.Sites)
	})
}

func cmdRestore(ctx context.Context, cmd *cobra.Command, env *cliEnv, args []string) error {
	res, err := env.svc.RestoreFile(ctx, cliActor(), args[0], flag(cmd, "site"))
	if err != nil {
		return err
	}
	return emit(cmd, env, res, func() {
		m := res.Manifest
		fmt.Fprintf(env.out, "restored %s (schema version %d, made %s by %s): %d site volumes\n",
			args[0], m.SchemaVersion, when(&m.CreatedAt), m.Binary, len(res.Sites))
		if res.Recreated {
			fmt.Fprintln(env.out, "the site was gone: its rows were restored too")
		}
	})
}

func cmdBackupsLs(ctx context.Context, cmd *cobra.Command, env *cliEnv, _ []string) error {
	list, err := env.svc.ListBackups(ctx, manage.Page{Limit: 500})
	if err != nil {
		return err
	}
	return emit(cmd, env, nonNil(list), func() {
		fmt.Fprintln(env.out, "ID\tKIND\tSTATUS\tSTARTED\tSIZE\tSITES\tNODE\tPATH\tERROR")
		for _, b := range list {
			fmt.Fprintf(env.out, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", b.ID, b.Kind, b.Status, when(&b.StartedAt),
				humanize.IBytes(uint64(b.SizeBytes)), b.Sites, b.Node, b.Path, dash(b.Error))
		}
	})
}
