package provisioner

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"go.uber.org/zap"
)

// LabelRole marks a container that is not a site's: one made to reach a
// site's volume through the engine's archive API, never started.
const LabelRole = "caddy-multitenant.role"

// errNoVolume refuses a volume operation on a site whose template mounts
// no volume.
var errNoVolume = errors.New("the site has no volume (its template has no data path)")

// ExportVolume writes the site's volume to w: the tar of its data path
// that the engine's archive API gives, read from the site's container,
// which may run or be stopped. A site whose container is gone (or was
// made for another data path) is read through a container made for the
// purpose from the site's own image and never started, then removed: no
// other image is needed. A running site is read as it runs; its files may
// change meanwhile.
func (r *DockerRuntime) ExportVolume(ctx context.Context, spec Spec, w io.Writer) error {
	c, err := r.cli.ContainerInspect(ctx, containerName(r.cfg.Namespace, spec.SiteID))
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("inspecting container of site %s: %w", spec.SiteID, err)
	}
	var rc io.ReadCloser
	if err == nil && r.ours(&c, spec.SiteID) && r.mountsVolume(&c, &spec) {
		rc, _, err = r.cli.CopyFromContainer(ctx, c.ID, spec.DataPath)
	}
	if rc == nil && (err == nil || isNotFound(err)) {
		// No container of the site, or one being removed or started
		// right now (the engine then may not find the data path in it):
		// one of our own, which nobody starts.
		if err := r.ensureVolume(ctx, &spec); err != nil {
			return err
		}
		id, remove, cerr := r.volumeContainer(ctx, &spec)
		if cerr != nil {
			return cerr
		}
		defer remove()
		rc, _, err = r.cli.CopyFromContainer(ctx, id, spec.DataPath)
	}
	if err != nil {
		return fmt.Errorf("reading the volume of site %s: %w", spec.SiteID, err)
	}
	defer rc.Close()
	if _, err := io.Copy(w, rc); err != nil {
		return fmt.Errorf("reading the volume of site %s: %w", spec.SiteID, err)
	}
	return nil
}

// ImportVolume replaces the site's volume with the tar tarball (as
// ExportVolume wrote it): the volume emptied and filled from it through a
// container made for the purpose, never started. The caller has removed
// the site's container (it is made anew at the next start).
func (r *DockerRuntime) ImportVolume(ctx context.Context, spec Spec, tarball io.Reader) error {
	// Files the archive does not have must go too: a fresh volume.
	if err := r.cli.VolumeRemove(ctx, volumeName(r.cfg.Namespace, spec.SiteID), true); err != nil && !isNotFound(err) {
		return fmt.Errorf("removing the volume of site %s: %w", spec.SiteID, err)
	}
	if err := r.ensureVolume(ctx, &spec); err != nil {
		return err
	}
	id, remove, err := r.volumeContainer(ctx, &spec)
	if err != nil {
		return err
	}
	defer remove()
	// The archive's one top-level directory is the data path's last
	// element, so it lands on the data path when copied into its parent.
	if err := r.cli.CopyToContainer(ctx, id, path.Dir(spec.DataPath), tarball, container.CopyToContainerOptions{}); err != nil {
		return fmt.Errorf("writing the volume of site %s: %w", spec.SiteID, err)
	}
	return nil
}

// mountsVolume reports whether c has the site's volume at spec's data
// path.
func (r *DockerRuntime) mountsVolume(c *container.InspectResponse, spec *Spec) bool {
	for _, m := range c.Mounts {
		if m.Name == volumeName(r.cfg.Namespace, spec.SiteID) && m.Destination == spec.DataPath {
			return true
		}
	}
	return false
}

// volumeContainer creates (and never starts) a container of the site's
// image with its volume at the data path and no network, for the archive
// API, and returns it with its removal. It carries no site label, so
// adoption never takes it for the site's container.
func (r *DockerRuntime) volumeContainer(ctx context.Context, spec *Spec) (string, func(), error) {
	if err := r.ensureImage(ctx, spec.Image); err != nil {
		return "", nil, err
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := containerName(r.cfg.Namespace, spec.SiteID) + "-volume-" + hex.EncodeToString(b[:])
	cfg := &container.Config{
		Image:  spec.Image,
		Labels: map[string]string{LabelNamespace: r.cfg.Namespace, LabelRole: "volume"},
		// Never run; a command keeps the create from failing on an image
		// that has none.
		Cmd: []string{"true"},
	}
	hc := &container.HostConfig{
		NetworkMode: "none",
		Mounts:      []mount.Mount{{Type: mount.TypeVolume, Source: volumeName(r.cfg.Namespace, spec.SiteID), Target: spec.DataPath}},
	}
	resp, err := r.cli.ContainerCreate(ctx, cfg, hc, nil, nil, name)
	if err != nil {
		return "", nil, fmt.Errorf("creating a container for the volume of site %s: %w", spec.SiteID, err)
	}
	return resp.ID, func() {
		// The caller's ctx may be what ended; the container must go anyway.
		if err := r.removeContainer(context.WithoutCancel(ctx), resp.ID); err != nil {
			r.log.Warn("removing a volume's container", zap.String("site_id", spec.SiteID), zap.Error(err))
		}
	}, nil
}
