package multitenant

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"github.com/spf13/cobra"

	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// The CLI's release commands: sites releases, release, rollback and
// deploy, each one action of the admin service.

func releaseCommands(cmd func(string, string, cobra.PositionalArgs, func(context.Context, *cobra.Command, *cliEnv, []string) error) *cobra.Command) []*cobra.Command {
	releases := cmd("releases <site>", "Lists a site's releases, newest first: what changed, who, when, how it went", cobra.ExactArgs(1), cmdSitesReleases)
	releases.Flags().Int("limit", manage.DefaultReleaseLimit, "How many releases")
	release := cmd("release <site> <n>", "Shows a site's release n: its spec (secrets masked), what it changed, its outcome and log", cobra.ExactArgs(2), cmdSitesRelease)
	rollback := cmd("rollback <site> [n]", "Makes a new release with the spec of release n (default: the one live before) and rolls it out", cobra.RangeArgs(1, 2), cmdSitesRollback)
	deploy := cmd("deploy <site> <dir>", "Builds the directory (a Dockerfile at its root; .dockerignore honoured) into a new release and rolls it out", cobra.ExactArgs(2), cmdSitesDeploy)
	return []*cobra.Command{releases, release, rollback, deploy}
}

func cmdSitesReleases(ctx context.Context, cmd *cobra.Command, env *cliEnv, args []string) error {
	limit, _ := cmd.Flags().GetInt("limit")
	list, err := env.svc.ListReleases(ctx, args[0], 0, limit)
	if err != nil {
		return err
	}
	return emit(cmd, env, nonNil(list), func() {
		fmt.Fprintln(env.out, "RELEASE\tKIND\tSTATUS\tBY\tCREATED\tCHANGES\tOUTCOME")
		for _, r := range list {
			fmt.Fprintf(env.out, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Number, kindOf(&r), r.Status, r.Actor, when(&r.CreatedAt),
				dash(changesOf(r.Changes)), dash(r.Outcome))
		}
	})
}

func kindOf(r *manage.Release) string {
	if r.RollbackOf != nil {
		return fmt.Sprintf("%s to %d", r.Kind, *r.RollbackOf)
	}
	return r.Kind
}

// changesOf words a release's changes for a table cell.
func changesOf(changes []tenants.FieldChange) string {
	var parts []string
	for _, c := range changes {
		switch {
		case c.Before == nil:
			parts = append(parts, "+"+c.Field)
		case c.After == nil:
			parts = append(parts, "-"+c.Field)
		default:
			parts = append(parts, fmt.Sprintf("%s: %s → %s", c.Field, *c.Before, *c.After))
		}
	}
	return strings.Join(parts, ", ")
}

func cmdSitesRelease(ctx context.Context, cmd *cobra.Command, env *cliEnv, args []string) error {
	n, err := strconv.Atoi(args[1])
	if err != nil || n < 1 {
		return fmt.Errorf("release %q: want a release number", args[1])
	}
	r, err := env.svc.GetRelease(ctx, args[0], n)
	if err != nil {
		return err
	}
	return emit(cmd, env, r, func() { printRelease(cmd, env, r) })
}

func printRelease(cmd *cobra.Command, env *cliEnv, r *manage.Release) {
	fmt.Fprintf(env.out, "release:\t%d (%s)\n", r.Number, kindOf(r))
	fmt.Fprintf(env.out, "status:\t%s\n", r.Status)
	fmt.Fprintf(env.out, "by:\t%s\n", r.Actor)
	fmt.Fprintf(env.out, "created:\t%s\n", when(&r.CreatedAt))
	fmt.Fprintf(env.out, "image:\t%s\n", r.Spec.Image)
	fmt.Fprintf(env.out, "template:\t%s v%d\n", r.Spec.TemplateSlug, r.Spec.TemplateVersion)
	fmt.Fprintf(env.out, "changes:\t%s\n", dash(changesOf(r.Changes)))
	fmt.Fprintf(env.out, "outcome:\t%s\n", dash(r.Outcome))
	if log := strings.TrimSpace(r.Log); log != "" {
		env.out.Flush()
		fmt.Fprintf(cmd.OutOrStdout(), "log:\n%s\n", log)
	}
}

func cmdSitesRollback(ctx context.Context, cmd *cobra.Command, env *cliEnv, args []string) error {
	to := 0
	if len(args) == 2 {
		n, err := strconv.Atoi(args[1])
		if err != nil || n < 1 {
			return fmt.Errorf("release %q: want a release number", args[1])
		}
		to = n
	}
	r, err := env.svc.Rollback(ctx, cliActor(), args[0], to)
	return releaseEnded(cmd, env, r, err)
}

// releaseEnded prints a release as a rollout left it; a failed one is
// the command's failure.
func releaseEnded(cmd *cobra.Command, env *cliEnv, r *manage.Release, err error) error {
	if err != nil {
		return err
	}
	if err := emit(cmd, env, r, func() { printRelease(cmd, env, r) }); err != nil {
		return err
	}
	if r.Status == tenants.ReleaseFailed {
		env.out.Flush()
		return fmt.Errorf("release %d failed: %s", r.Number, r.Outcome)
	}
	return nil
}

// cmdSitesDeploy packs the directory as the docker CLI would (honouring
// its .dockerignore) and deploys it, the build's output on stderr as it
// comes.
func cmdSitesDeploy(ctx context.Context, cmd *cobra.Command, env *cliEnv, args []string) error {
	dir := args[1]
	if _, err := os.Stat(filepath.Join(dir, "Dockerfile")); err != nil {
		return fmt.Errorf("%s has no Dockerfile: %w", dir, err)
	}
	pr, pw := io.Pipe()
	packed := make(chan error, 1)
	go func() {
		err := packContext(dir, pw)
		pw.CloseWithError(err)
		packed <- err
	}()
	r, err := env.svc.Deploy(ctx, cliActor(), args[0], manage.DeployInput{Context: pr, Log: cmd.ErrOrStderr()})
	pr.CloseWithError(errors.New("deploy ended"))
	if perr := <-packed; perr != nil && err != nil {
		return fmt.Errorf("packing %s: %w", dir, perr)
	}
	return releaseEnded(cmd, env, r, err)
}

// packContext writes dir as a tar.gz build context to w, leaving out
// what its .dockerignore excludes (never the Dockerfile or the
// .dockerignore itself, as docker build does).
func packContext(dir string, w io.Writer) error {
	var patterns []string
	if f, err := os.Open(filepath.Join(dir, ".dockerignore")); err == nil {
		patterns, err = ignorefile.ReadAll(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("reading .dockerignore: %w", err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return fmt.Errorf("reading .dockerignore: %w", err)
	}
	zw := gzip.NewWriter(w)
	tw := tar.NewWriter(zw)
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel != "Dockerfile" && rel != ".dockerignore" {
			skip, err := pm.MatchesOrParentMatches(rel)
			if err != nil {
				return err
			}
			if skip {
				if d.IsDir() && !pm.Exclusions() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		var link string
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		h.Name = rel
		if d.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}
