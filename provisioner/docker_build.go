package provisioner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
)

// LabelRelease is stamped on the images built for a site's release.
const LabelRelease = "caddy-multitenant.release"

// BuildError is a build that failed: the engine's message (a bad
// Dockerfile, a failing step). The build's output went to Build's writer.
type BuildError struct {
	SiteID  string
	Message string
}

func (e *BuildError) Error() string {
	return fmt.Sprintf("building site %s: %s", e.SiteID, e.Message)
}

// imageTag is the image built for a site of namespace ns's release:
// local to the engine, never pushed anywhere.
func imageTag(ns, siteID string, release int) string {
	return strings.ToLower("tenant-"+ns+"-"+siteID) + ":r" + strconv.Itoa(release)
}

// Build implements RuntimeImages: it builds the image of the site's release from buildContext (a tar
// archive, compressed or not, with a Dockerfile at its root) with the
// engine's own builder (no registry and no other daemon), writing the
// build's output to out as it comes, and returns its tag (ImageTag). The
// image is labeled with the namespace and the site, for PruneImages. A
// build that fails is a *BuildError.
func (r *DockerRuntime) Build(ctx context.Context, siteID string, release int, buildContext io.Reader, out io.Writer) (string, error) {
	if !validName.MatchString(siteID) {
		return "", fmt.Errorf("invalid site id %q", siteID)
	}
	tag := imageTag(r.cfg.Namespace, siteID, release)
	resp, err := r.cli.ImageBuild(ctx, buildContext, build.ImageBuildOptions{
		Tags:        []string{tag},
		Dockerfile:  "Dockerfile",
		Remove:      true,
		ForceRemove: true,
		Labels:      map[string]string{LabelNamespace: r.cfg.Namespace, LabelSite: siteID, LabelRelease: strconv.Itoa(release)},
		// The classic builder runs in the engine itself and needs no
		// BuildKit daemon, on every engine version there is.
		Version: build.BuilderV1,
	})
	if err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("building site %s: %w", siteID, ctx.Err())
		}
		return "", &BuildError{SiteID: siteID, Message: err.Error()}
	}
	defer resp.Body.Close()
	err = readMessages(resp.Body, func(msg engineMessage) error {
		switch {
		case msg.Error != "":
			io.WriteString(out, msg.Error+"\n")
			return &BuildError{SiteID: siteID, Message: msg.Error}
		case msg.Stream != "":
			io.WriteString(out, msg.Stream)
		case msg.Status != "":
			io.WriteString(out, msg.Status+"\n")
		}
		return nil
	})
	var be *BuildError
	if errors.As(err, &be) {
		return "", be
	} else if err != nil {
		return "", fmt.Errorf("reading the build output of site %s: %w", siteID, err)
	}
	if _, err := r.cli.ImageInspect(ctx, tag); err != nil {
		return "", fmt.Errorf("image %s missing after its build: %w", tag, err)
	}
	return tag, nil
}

// PruneImages implements RuntimeImages: it removes the images built for the site but those tagged in
// keep; one a container still uses stays.
func (r *DockerRuntime) PruneImages(ctx context.Context, siteID string, keep []string) error {
	list, err := r.cli.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", LabelNamespace+"="+r.cfg.Namespace), filters.Arg("label", LabelSite+"="+siteID))})
	if err != nil {
		return fmt.Errorf("listing the images of site %s: %w", siteID, err)
	}
	var errs []error
	for _, img := range list {
		if slices.ContainsFunc(img.RepoTags, func(t string) bool { return slices.Contains(keep, t) }) {
			continue
		}
		_, err := r.cli.ImageRemove(ctx, img.ID, image.RemoveOptions{Force: true, PruneChildren: true})
		if err != nil && !isNotFound(err) && !isConflict(err) {
			errs = append(errs, fmt.Errorf("removing image %s: %w", img.ID, err))
		}
	}
	return errors.Join(errs...)
}
