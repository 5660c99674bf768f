package provisioner

import (
	"context"
	"fmt"
	"io"
)

// What the Provisioner offers where its Runtime can: each feature is one
// of the Runtime's optional interfaces, and a Runtime without it makes
// the feature's call fail with errNotSupported, saying which.

func notSupported(what string) error { return fmt.Errorf("%s: %w", what, errNotSupported) }

// ImageTag is the image built for a site's release: local to the engine,
// never pushed anywhere.
func (p *Provisioner) ImageTag(siteID string, release int) string {
	return imageTag(p.cfg.Namespace, siteID, release)
}

// Build builds the image of the site's release from buildContext (a tar
// archive, compressed or not, with a Dockerfile at its root) with the
// engine's own builder (no registry and no other daemon), writing the
// build's output to out as it comes, and returns its tag (ImageTag). The
// image is labeled with the namespace and the site, for PruneImages. A
// build that fails is a *BuildError.
func (p *Provisioner) Build(ctx context.Context, siteID string, release int, buildContext io.Reader, out io.Writer) (string, error) {
	ri, ok := p.rt.(RuntimeImages)
	if !ok {
		return "", notSupported("building images")
	}
	return ri.Build(ctx, siteID, release, buildContext, out)
}

// PruneImages removes the images built for the site but those tagged in
// keep; one a container still uses stays.
func (p *Provisioner) PruneImages(ctx context.Context, siteID string, keep []string) error {
	ri, ok := p.rt.(RuntimeImages)
	if !ok {
		return nil // nothing was built
	}
	return ri.PruneImages(ctx, siteID, keep)
}

// CheckImage returns nil when image is on the engine's host or its
// registry has it (asked for the manifest, nothing pulled), else why not.
// A runtime that cannot tell takes every image: its nodes pull them.
func (p *Provisioner) CheckImage(ctx context.Context, ref string) error {
	ri, ok := p.rt.(RuntimeImages)
	if !ok {
		return nil
	}
	return ri.CheckImage(ctx, ref)
}

// SampleStats reads the stats of each of the namespace's running site
// replicas, at most concurrency at a time, and returns how many run (see
// RuntimeStats). A runtime without stats reports none.
func (p *Provisioner) SampleStats(ctx context.Context, concurrency int) (running int, stats []ContainerStats, err error) {
	rs, ok := p.rt.(RuntimeStats)
	if !ok {
		return p.Running(), nil, nil
	}
	return rs.SampleStats(ctx, concurrency)
}

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
	rv, ok := p.rt.(RuntimeVolumes)
	if !ok {
		return notSupported("reading volumes")
	}
	return rv.ExportVolume(ctx, spec, w)
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
	rv, ok := p.rt.(RuntimeVolumes)
	if !ok {
		return notSupported("writing volumes")
	}
	st, release, err := p.hold(ctx, spec.SiteID)
	if err != nil {
		return err
	}
	defer release()
	if err := p.removeLocked(ctx, st, false); err != nil {
		return err
	}
	return rv.ImportVolume(ctx, spec, r)
}
