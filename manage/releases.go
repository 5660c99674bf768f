package manage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/agistaffers/caddy-multitenant/tenants"
)

// Releaser rolls releases out; a Runtime that runs containers implements
// it. Errors wrap the Runtime's sentinels, and ErrBuildFailed.
type Releaser interface {
	// RollOut replaces the site's running container with one made from
	// what r.Spec returns under the site's lock, without a gap, calling
	// r.Live once the new container serves. A site that does not run is
	// left without a container (Stopped); a new container that fails to
	// become ready is removed, the live one serving throughout (Failure).
	RollOut(ctx context.Context, r RollOut) (*RollOutResult, error)
	// Build builds the image of the site's release from a build context
	// (a tar.gz with a Dockerfile at its root), writing the build's
	// output to log as it comes, and returns the image.
	Build(ctx context.Context, siteID string, release int, buildContext io.Reader, log io.Writer) (string, error)
	// PruneImages removes the images built for the site but keep.
	PruneImages(ctx context.Context, siteID string, keep []string) error
}

// ErrBuildFailed means a build from source failed; its output says why.
var ErrBuildFailed = errors.New("the build failed")

// RollOut is one rollout for a Releaser.
type RollOut struct {
	SiteID string
	// Spec returns what to run, or ok false when the release is not to be
	// rolled out (any more).
	Spec func(ctx context.Context) (spec tenants.ReleaseSpec, ok bool, err error)
	// Live is told the new container once it serves, or "" (still under
	// the site's lock) when the site does not run.
	Live func(ctx context.Context, containerID string)
}

// RollOutResult says how a rollout went.
type RollOutResult struct {
	Skipped     bool   // Spec said no
	Stopped     bool   // the site did not run: its next start runs the release
	BriefStop   string // why the live container stopped while the new one started, "" when they overlapped
	ContainerID string
	// Drained is how long the old container took to finish its requests
	// and connections; DrainTimedOut when it was stopped with some open.
	Drained       time.Duration
	DrainTimedOut bool
	// Failure is why the new container did not become ready.
	Failure *Failure
}

// KeepBuilds is how many of a site's last releases keep their build
// images; older ones are removed.
const KeepBuilds = 5

// DefaultReleaseLimit is how many releases ListReleases returns unless
// asked otherwise.
const DefaultReleaseLimit = 50

// Release is a release as operators see it: its spec with secrets
// masked.
type Release struct {
	tenants.Release
	Spec tenants.ReleaseSpec `json:"spec"`
}

func releaseOut(r *tenants.Release) *Release {
	return &Release{Release: *r, Spec: tenants.MaskSpec(r.Spec)}
}

// ListReleases returns the releases of the site ref names, newest first:
// at most limit (0 for DefaultReleaseLimit), numbered below before when
// it is not 0. Their logs are left out (GetRelease has them).
func (s *Service) ListReleases(ctx context.Context, ref string, before, limit int) ([]Release, error) {
	site, err := s.site(ctx, "", ref)
	if err != nil {
		return nil, err
	}
	switch {
	case before < 0:
		return nil, invalid("before", "must be a release number")
	case limit < 0 || limit > 500:
		return nil, invalid("limit", "must be between 1 and 500")
	case limit == 0:
		limit = DefaultReleaseLimit
	}
	list, err := s.store.ListReleases(ctx, site.ID, before, limit)
	if err != nil {
		return nil, fail("release", err)
	}
	out := make([]Release, len(list))
	for i := range list {
		list[i].Log = ""
		out[i] = *releaseOut(&list[i])
	}
	return out, nil
}

// GetRelease returns release n of the site ref names.
func (s *Service) GetRelease(ctx context.Context, ref string, n int) (*Release, error) {
	site, err := s.site(ctx, "", ref)
	if err != nil {
		return nil, err
	}
	r, err := s.store.GetRelease(ctx, site.ID, n)
	if err != nil {
		return nil, fail("release", err)
	}
	return releaseOut(r), nil
}

// Rollback makes a new release of the site ref names whose spec is
// release to's (0: the one live before the live one) and rolls it out
// like any release. The site's own settings (template, env, built
// image) become release to's again, so that the next change starts from
// there.
func (s *Service) Rollback(ctx context.Context, actor, ref string, to int) (*Release, error) {
	site, err := s.site(ctx, "", ref)
	if err != nil {
		return nil, err
	}
	if err := s.serving(ctx, site); err != nil {
		return nil, err
	}
	target, err := s.rollbackTarget(ctx, site.ID, to)
	if err != nil {
		return nil, err
	}
	src := target.Source
	restored := *site
	restored.Env, restored.Image = src.Env, src.Image
	if _, err := s.store.GetTemplate(ctx, src.TemplateID); err == nil {
		restored.TemplateID = src.TemplateID
	}
	if err := s.store.UpdateSite(ctx, actor, &restored); err != nil {
		return nil, fail("site", err)
	}
	n := target.Number
	return s.release(ctx, actor, site.ID, tenants.NewRelease{Kind: tenants.KindRollback, RollbackOf: &n, Spec: target.Spec, Source: src})
}

// rollbackTarget is release to of the site, or with to 0 the newest that
// was live before the live one; only a release that served is one to
// go back to.
func (s *Service) rollbackTarget(ctx context.Context, siteID string, to int) (*tenants.Release, error) {
	if to < 0 {
		return nil, invalid("release", "must be a release number")
	}
	if to > 0 {
		r, err := s.store.GetRelease(ctx, siteID, to)
		if IsCode(fail("release", err), NotFound) {
			return nil, invalid("release", "the site has no release %d", to)
		} else if err != nil {
			return nil, fail("release", err)
		}
		switch r.Status {
		case tenants.ReleaseLive:
			return nil, conflict("release", "release %d is live already", to)
		case tenants.ReleaseSuperseded, tenants.ReleaseRolledBack:
			return r, nil
		}
		return nil, conflict("release", "release %d never served (it is %s)", to, r.Status)
	}
	for before := 0; ; {
		list, err := s.store.ListReleases(ctx, siteID, before, 100)
		if err != nil {
			return nil, fail("release", err)
		}
		seenLive := false
		for i := range list {
			switch list[i].Status {
			case tenants.ReleaseLive:
				seenLive = true
			case tenants.ReleaseSuperseded, tenants.ReleaseRolledBack:
				if seenLive || before > 0 {
					return &list[i], nil
				}
			}
		}
		if len(list) < 100 {
			return nil, conflict("release", "the site has no earlier release that served")
		}
		before = list[len(list)-1].Number
	}
}

// DeployInput is a deploy from source.
type DeployInput struct {
	// Context is the build context: a tar.gz with a Dockerfile at its
	// root.
	Context io.Reader
	// Log receives the build's output as it comes, then how the rollout
	// went.
	Log io.Writer
}

// Deploy builds the image of a new release of the site ref names from
// its source and rolls it out like any release; the site keeps the
// image (over its template's) until a release without it goes live. A
// build that fails is a failed release with its output.
func (s *Service) Deploy(ctx context.Context, actor, ref string, in DeployInput) (*Release, error) {
	site, err := s.site(ctx, "", ref)
	if err != nil {
		return nil, err
	}
	rel, ok := s.runtime.(Releaser)
	if !ok {
		return nil, errNoRuntime
	}
	if err := s.serving(ctx, site); err != nil {
		return nil, err
	}
	buildContext, remove, err := spoolContext(in.Context)
	if err != nil {
		return nil, fail("site", err)
	}
	defer remove()
	route, err := s.store.SiteRoute(ctx, site.ID)
	if err != nil {
		return nil, fail("site", err)
	}
	spec := route.Derived()
	spec.Image, spec.Built = "", true
	r, err := s.store.RecordRelease(ctx, actor, site.ID, tenants.NewRelease{Kind: tenants.KindDeploy, Status: tenants.ReleaseBuilding,
		Spec: spec, Source: route.Source(), Baseline: baseline(route)})
	if err != nil {
		return nil, fail("site", err)
	}
	log := &boundedLog{w: in.Log}
	image, err := rel.Build(ctx, site.ID, r.Number, buildContext, log)
	if err != nil {
		outcome := "the build failed; the live release serves on"
		if !errors.Is(err, ErrBuildFailed) {
			outcome = "the build could not run; the live release serves on"
		}
		s.finish(ctx, site.ID, r.Number, tenants.ReleaseFailed, outcome, log.String())
		s.log.Info("build failed", zap.String("site_id", site.ID), zap.Int("release", r.Number), zap.Error(err))
		return s.releaseAfter(ctx, site.ID, r.Number, fail("site", err))
	}
	if err := s.store.SetReleaseImage(ctx, site.ID, r.Number, image, log.String()); err != nil {
		return nil, fail("release", err)
	}
	built := *site
	built.Image = image
	if err := s.store.UpdateSite(ctx, actor, &built); err != nil {
		return nil, fail("site", err)
	}
	return s.rollOut(ctx, site.ID, r.Number, in.Log)
}

// releaseAfter returns release n as it ended, with err when there was
// one that is not the release's own failure.
func (s *Service) releaseAfter(ctx context.Context, siteID string, n int, err error) (*Release, error) {
	r, gerr := s.store.GetRelease(context.WithoutCancel(ctx), siteID, n)
	if gerr != nil {
		return nil, errors.Join(err, fail("release", gerr))
	}
	if IsCode(err, Internal) || IsCode(err, Unavailable) || IsCode(err, Canceled) {
		return releaseOut(r), err
	}
	return releaseOut(r), nil
}

// baseline is what a site without releases runs now, to record as its
// first one before a change.
func baseline(route *tenants.Route) *tenants.Release {
	if route.Live != nil {
		return nil
	}
	return &tenants.Release{Spec: route.Derived(), Source: route.Source()}
}

// changed records and rolls out a release of the site when what its
// settings make now differs from what it runs (before, read before the
// change); nil when nothing changed.
func (s *Service) changed(ctx context.Context, actor string, before *tenants.Route) (*Release, error) {
	after, err := s.store.SiteRoute(ctx, before.SiteID)
	if err != nil {
		return nil, fail("site", err)
	}
	spec := after.Derived()
	if spec.Equal(before.Spec()) {
		return nil, nil
	}
	return s.release(ctx, actor, before.SiteID, tenants.NewRelease{Kind: tenants.KindChange, Spec: spec, Source: after.Source(),
		Baseline: baseline(before)})
}

// changedAll is changed for several sites, a few at a time; the releases
// that failed are named in the warnings.
func (s *Service) changedAll(ctx context.Context, actor string, befores []*tenants.Route) (releases []Release, warnings []string) {
	out := make([]*Release, len(befores))
	errs := make([]error, len(befores))
	var g errgroup.Group
	g.SetLimit(4)
	for i, b := range befores {
		g.Go(func() error {
			out[i], errs[i] = s.changed(ctx, actor, b)
			return nil
		})
	}
	g.Wait()
	for i, err := range errs {
		if err != nil {
			s.log.Warn("releasing a changed site", zap.String("site_id", befores[i].SiteID), zap.Error(err))
			warnings = append(warnings, fmt.Sprintf("site %s: no release was made: %s", befores[i].Subdomain, err.(*Error).Message))
		}
	}
	for _, r := range out {
		if r == nil {
			continue
		}
		releases = append(releases, *r)
		if r.Status == tenants.ReleaseFailed {
			warnings = append(warnings, fmt.Sprintf("site %s: its release %d failed: %s", r.SiteID, r.Number, r.Outcome))
		}
	}
	return releases, warnings
}

// routes reads what the sites run now, before a change.
func (s *Service) routes(ctx context.Context, sites []Site) ([]*tenants.Route, error) {
	out := make([]*tenants.Route, 0, len(sites))
	for _, site := range sites {
		r, err := s.store.SiteRoute(ctx, site.ID)
		if err != nil {
			return nil, fail("site", err)
		}
		out = append(out, r)
	}
	return out, nil
}

// release records the site's next release and rolls it out.
func (s *Service) release(ctx context.Context, actor, siteID string, nr tenants.NewRelease) (*Release, error) {
	r, err := s.store.RecordRelease(ctx, actor, siteID, nr)
	if err != nil {
		return nil, fail("site", err)
	}
	return s.rollOut(ctx, siteID, r.Number, nil)
}

// Outcomes of a rollout, as a release records them.
const (
	outcomeStopped   = "the site was not running: it runs this release from its next start"
	outcomeServing   = "serving; the old container drains"
	outcomeSuperseed = "a newer release of the site came first"
)

// rolloutTimeout bounds a rollout that outlives its caller: the wait for
// the site's lock, a start and a drain.
const rolloutTimeout = 15 * time.Minute

// rollOut rolls release n of the site out (writing how it went to log,
// if any) and returns it as it ended. It runs to its end even when the
// caller goes away: a rollout is not left half done.
func (s *Service) rollOut(ctx context.Context, siteID string, n int, log io.Writer) (*Release, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rolloutTimeout)
	defer cancel()
	rel, ok := s.runtime.(Releaser)
	if !ok {
		// Nothing runs containers here: the next start runs it.
		return s.releaseAfter(ctx, siteID, n, fail("release", s.store.GoLive(ctx, siteID, n, "", outcomeStopped)))
	}
	res, err := rel.RollOut(ctx, RollOut{
		SiteID: siteID,
		Spec: func(ctx context.Context) (tenants.ReleaseSpec, bool, error) {
			r, err := s.store.GetRelease(ctx, siteID, n)
			if err != nil || r.Status != tenants.ReleasePending {
				return tenants.ReleaseSpec{}, false, err
			}
			if newer, err := s.store.Superseded(ctx, siteID, n); err != nil || newer {
				if newer {
					s.finish(ctx, siteID, n, tenants.ReleaseSuperseded, outcomeSuperseed, "")
				}
				return tenants.ReleaseSpec{}, false, err
			}
			return r.Spec, true, nil
		},
		Live: func(ctx context.Context, containerID string) {
			outcome := outcomeServing
			if containerID == "" {
				outcome = outcomeStopped
			}
			if err := s.store.GoLive(ctx, siteID, n, containerID, outcome); err != nil {
				// The other nodes learn of the switch when the old
				// container is gone instead.
				s.log.Error("recording a release live", zap.String("site_id", siteID), zap.Int("release", n), zap.Error(err))
			}
		},
	})
	switch {
	case err != nil:
		s.finish(ctx, siteID, n, tenants.ReleaseFailed, "the rollout could not run; the live release serves on", "")
		return s.releaseAfter(ctx, siteID, n, fail("site", err))
	case res.Skipped:
	case res.Failure != nil:
		f := res.Failure
		s.finish(ctx, siteID, n, tenants.ReleaseFailed, "the new container did not become ready ("+f.Reason+"); the old one served throughout", f.describeLog())
	case res.Stopped:
	default:
		err = s.store.GoLive(ctx, siteID, n, res.ContainerID, res.outcome())
		s.prune(ctx, rel, siteID)
	}
	if log != nil {
		if r, gerr := s.store.GetRelease(ctx, siteID, n); gerr == nil {
			fmt.Fprintf(log, "release %d: %s: %s\n", n, r.Status, r.Outcome)
		}
	}
	return s.releaseAfter(ctx, siteID, n, fail("release", err))
}

// outcome words a rollout that went live.
func (r *RollOutResult) outcome() string {
	switch {
	case r.BriefStop != "":
		return "the live container stopped while the new one started: " + r.BriefStop
	case r.DrainTimedOut:
		return fmt.Sprintf("rolled out beside the live container, which still had requests or connections open after %s and was stopped", r.Drained.Round(time.Millisecond))
	}
	return fmt.Sprintf("rolled out beside the live container, which drained in %s", r.Drained.Round(time.Millisecond))
}

// finish records how a release that did not go live ended; a failure to
// is logged, the release then shows pending until a restart settles it.
func (s *Service) finish(ctx context.Context, siteID string, n int, status, outcome, log string) {
	if err := s.store.FinishRelease(context.WithoutCancel(ctx), siteID, n, status, outcome, log); err != nil {
		s.log.Error("recording how a release ended", zap.String("site_id", siteID), zap.Int("release", n), zap.Error(err))
	}
}

// prune removes the site's build images beyond its last KeepBuilds
// releases.
func (s *Service) prune(ctx context.Context, rel Releaser, siteID string) {
	keep, err := s.store.KeptImages(ctx, siteID, KeepBuilds)
	if err == nil {
		err = rel.PruneImages(ctx, siteID, keep)
	}
	if err != nil {
		s.log.Warn("removing old build images", zap.String("site_id", siteID), zap.Error(err))
	}
}

// describeLog is the failure's reason and log lines, for a release's log.
func (f *Failure) describeLog() string {
	out := f.Reason
	if f.ExitCode != nil {
		out += fmt.Sprintf(" (exit code %d)", *f.ExitCode)
	}
	out += "\n"
	if f.LogTail != "" {
		out += "its last log lines:\n" + f.LogTail
	}
	return out
}

// boundedLog passes a build's output on and keeps its end for the
// release.
type boundedLog struct {
	w   io.Writer
	buf []byte
}

func (l *boundedLog) Write(b []byte) (int, error) {
	l.buf = append(l.buf, b...)
	if len(l.buf) > 2*tenants.MaxReleaseLog {
		l.buf = append(l.buf[:0], l.buf[len(l.buf)-tenants.MaxReleaseLog:]...)
	}
	if l.w != nil {
		// The caller going away must not fail the build.
		_, _ = l.w.Write(b)
	}
	return len(b), nil
}

func (l *boundedLog) String() string { return string(l.buf) }
