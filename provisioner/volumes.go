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
func (p *Provisioner) ExportVolume(ctx context.Context, spec Spec, w io.Writer) error {
	if err := spec.validate(); err != nil {
		return err
	}
	if spec.DataPath == "" {
		return errNoVolume
	}
	c, err := p.cli.ContainerInspect(ctx, containerName(p.cfg.Namespace, spec.SiteID))
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("inspecting container of site %s: %w", spec.SiteID, err)
	}
	var rc io.ReadCloser
	if err == nil && p.ours(&c, spec.SiteID) && p.mountsVolume(&c, &spec) {
		rc, _, err = p.cli.CopyFromContainer(ctx, c.ID, spec.DataPath)
	}
	if rc == nil && (err == nil || isNotFound(err)) {
		// No container of the site, or one being removed or started
		// right now (the engine then may not find the data path in it):
		// one of our own, which nobody starts.
		if err := p.ensureVolume(ctx, &spec); err != nil {
			return err
		}
		id, remove, cerr := p.volumeContainer(ctx, &spec)
		if cerr != nil {
			return cerr
		}
		defer remove()
		rc, _, err = p.cli.CopyFromContainer(ctx, id, spec.DataPath)
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

// ImportVolume replaces the site's volume with the tar r (as ExportVolume
// wrote it). Under the site's lock, on every node: the container is
// removed (it is made anew at the next start), the volume emptied and
// filled from r through a container made for the purpose, never started.
func (p *Provisioner) ImportVolume(ctx context.Context, spec Spec, r io.Reader) error {
	if err := spec.validate(); err != nil {
		return err
	}
	if spec.DataPath == "" {
		return errNoVolume
	}
	st := p.sites.getOrCreate(spec.SiteID)
	st.op.Lock()
	defer st.op.Unlock()
	unlock, err := p.lock(ctx, spec.SiteID)
	if err != nil {
		return err
	}
	defer unlock()
	if err := p.removeLocked(ctx, st); err != nil {
		return err
	}
	// Files the archive does not have must go too: a fresh volume.
	if err := p.cli.VolumeRemove(ctx, volumeName(p.cfg.Namespace, spec.SiteID), true); err != nil && !isNotFound(err) {
		return fmt.Errorf("removing the volume of site %s: %w", spec.SiteID, err)
	}
	if err := p.ensureVolume(ctx, &spec); err != nil {
		return err
	}
	id, remove, err := p.volumeContainer(ctx, &spec)
	if err != nil {
		return err
	}
	defer remove()
	// The archive's one top-level directory is the data path's last
	// element, so it lands on the data path when copied into its parent.
	if err := p.cli.CopyToContainer(ctx, id, path.Dir(spec.DataPath), r, container.CopyToContainerOptions{}); err != nil {
		return fmt.Errorf("writing the volume of site %s: %w", spec.SiteID, err)
	}
	return nil
}

// mountsVolume reports whether c has the site's volume at spec's data
// path.
func (p *Provisioner) mountsVolume(c *container.InspectResponse, spec *Spec) bool {
	for _, m := range c.Mounts {
		if m.Name == volumeName(p.cfg.Namespace, spec.SiteID) && m.Destination == spec.DataPath {
			return true
		}
	}
	return false
}

// volumeContainer creates (and never starts) a container of the site's
// image with its volume at the data path and no network, for the archive
// API, and returns it with its removal. It carries no site label, so
// adoption never takes it for the site's container.
func (p *Provisioner) volumeContainer(ctx context.Context, spec *Spec) (string, func(), error) {
	if err := p.ensureImage(ctx, spec.Image); err != nil {
		return "", nil, err
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := containerName(p.cfg.Namespace, spec.SiteID) + "-volume-" + hex.EncodeToString(b[:])
	cfg := &container.Config{
		Image:  spec.Image,
		Labels: map[string]string{LabelNamespace: p.cfg.Namespace, LabelRole: "volume"},
		// Never run; a command keeps the create from failing on an image
		// that has none.
		Cmd: []string{"true"},
	}
	hc := &container.HostConfig{
		NetworkMode: "none",
		Mounts:      []mount.Mount{{Type: mount.TypeVolume, Source: volumeName(p.cfg.Namespace, spec.SiteID), Target: spec.DataPath}},
	}
	resp, err := p.cli.ContainerCreate(ctx, cfg, hc, nil, nil, name)
	if err != nil {
		return "", nil, fmt.Errorf("creating a container for the volume of site %s: %w", spec.SiteID, err)
	}
	return resp.ID, func() {
		// The caller's ctx may be what ended; the container must go anyway.
		if err := p.removeContainer(context.WithoutCancel(ctx), resp.ID); err != nil {
			p.log.Warn("removing a volume's container", zap.String("site_id", spec.SiteID), zap.Error(err))
		}
	}, nil
}
