package tenants

import (
	"path"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/distribution/reference"
	"golang.org/x/net/idna"
)

// envName is a portable environment variable name (POSIX).
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// slugPattern names templates and plans in URLs and files.
var slugPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$`)

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// IsLabel reports whether s is one lowercase RFC 1123 DNS label: 1-63
// letters, digits and hyphens, not starting or ending with a hyphen. It is
// on the hot path of every request, hence no regexp.
func IsLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// ValidateSubdomain checks that sub is one lowercase DNS label and not one
// of the reserved names.
func ValidateSubdomain(sub string, reserved []string) error {
	if !IsLabel(sub) {
		return invalid("subdomain", "must be one lowercase DNS label: 1-63 letters, digits or hyphens, not starting or ending with a hyphen")
	}
	for _, r := range reserved {
		if sub == r {
			return invalid("subdomain", "%q is reserved", sub)
		}
	}
	return nil
}

// idnaProfile converts hostnames to their ASCII (punycode) form the way
// browsers do for lookups, with the strict rules of registration so that
// underscores, spaces and other junk are refused.
var idnaProfile = idna.New(
	idna.MapForLookup(),
	idna.BidiRule(),
	idna.ValidateLabels(true),
	idna.StrictDomainName(true),
	idna.Transitional(false),
)

// NormalizeHost turns what a client sent as a host (Host header, SNI, user
// input) into the one form hosts are stored and looked up by: lowercase
// ASCII (IDNA), without port or trailing dot. It fails for anything that is
// not a DNS hostname, IP addresses included.
func NormalizeHost(host string) (string, error) {
	h := host
	if strings.HasPrefix(h, "[") { // [v6]:port or [v6]
		return "", invalid("hostname", "ip addresses are not hostnames")
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 {
		if strings.IndexByte(h[:i], ':') >= 0 {
			return "", invalid("hostname", "ip addresses are not hostnames")
		}
		port := h[i+1:]
		if port == "" || len(port) > 5 || strings.Trim(port, "0123456789") != "" {
			return "", invalid("hostname", "invalid port in %q", host)
		}
		h = h[:i]
	}
	h = strings.TrimSuffix(h, ".")
	if h == "" {
		return "", invalid("hostname", "empty hostname")
	}
	if isASCIILowerHost(h) {
		// The common case: already normal, no allocation from idna.
	} else {
		if !utf8.ValidString(h) {
			return "", invalid("hostname", "hostname is not valid UTF-8")
		}
		ascii, err := idnaProfile.ToASCII(h)
		if err != nil {
			return "", invalid("hostname", "invalid hostname %q", host)
		}
		ascii = strings.ToLower(ascii)
		// A second pass must be a no-op: the stored form has to look itself
		// up, whatever odd input produced it.
		if again, err := idnaProfile.ToASCII(ascii); err != nil || again != ascii {
			return "", invalid("hostname", "invalid hostname %q", host)
		}
		h = ascii
	}
	if len(h) > 253 {
		return "", invalid("hostname", "hostname longer than 253 characters")
	}
	for rest := h; ; {
		l, after, more := strings.Cut(rest, ".")
		if !IsLabel(l) {
			return "", invalid("hostname", "invalid hostname %q", host)
		}
		if !more {
			// A hostname's last label is never all digits (RFC 3696 2),
			// which rules out IPv4 addresses, shorthand ones such as
			// "127.1" included; IPv6 ones never get here (colons).
			if allDigits(l) {
				return "", invalid("hostname", "ip addresses are not hostnames")
			}
			return h, nil
		}
		rest = after
	}
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isASCIILowerHost reports whether h has only lowercase ASCII letters,
// digits, hyphens and dots, and no label starting with the IDNA "xn--"
// prefix, so IDNA processing would leave it unchanged.
func isASCIILowerHost(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return !strings.HasPrefix(h, "xn--") && !strings.Contains(h, ".xn--")
}

// ValidateImage checks that image is a valid container image reference,
// such as "nginx:1.27", "ghcr.io/org/app@sha256:…" or "registry:5000/a/b".
func ValidateImage(image string) error {
	if image == "" {
		return invalid("image", "required")
	}
	if err := checkText("image", image, MaxImageLen); err != nil {
		return err
	}
	if _, err := reference.ParseNormalizedNamed(image); err != nil {
		return invalid("image", "invalid image reference: %v", err)
	}
	return nil
}

// ValidateEnv checks an env map: at most MaxEnvEntries variables, names of
// letters, digits and underscores, values of text. A bad value is reported
// as field.NAME, so the client sees which one.
func ValidateEnv(field string, env map[string]string) error {
	if len(env) > MaxEnvEntries {
		return invalid(field, "more than %d variables", MaxEnvEntries)
	}
	for k, v := range env {
		if !envName.MatchString(k) {
			return invalid(field, "invalid variable name %q: use letters, digits and underscores, not starting with a digit", k)
		}
		if len(k) > MaxEnvNameLen {
			return invalid(field, "variable name %.20s… longer than %d characters", k, MaxEnvNameLen)
		}
		if err := checkText(field+"."+k, v, MaxEnvValueLen); err != nil {
			return err
		}
	}
	return nil
}

func validateSlug(slug string) error {
	if !slugPattern.MatchString(slug) {
		return invalid("slug", "must be lowercase letters, digits and hyphens (1-%d), not starting or ending with a hyphen", MaxSlugLen)
	}
	return nil
}

// validateStripeID checks the shape Stripe gives its ids: the prefix of
// the kind of object (cus_, sub_, price_), then letters and digits. Empty
// means none.
func validateStripeID(field, prefix, id string) error {
	if id == "" {
		return nil
	}
	rest, ok := strings.CutPrefix(id, prefix)
	if !ok || rest == "" || len(id) > MaxStripeIDLen || !isAlnum(rest) {
		return invalid(field, "must be a Stripe id: %s followed by letters and digits, at most %d characters", prefix, MaxStripeIDLen)
	}
	return nil
}

func isAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func validateID(field, id string) error {
	if !uuidPattern.MatchString(id) {
		return invalid(field, "must be a uuid")
	}
	return nil
}

func validateName(field, name string) error {
	if strings.TrimSpace(name) == "" {
		return invalid(field, "required")
	}
	return checkText(field, name, MaxNameLen)
}

func validateEmail(email string) error {
	if err := checkText("email", email, MaxEmailLen); err != nil {
		return err
	}
	at := strings.LastIndexByte(email, '@')
	if at < 1 || at == len(email)-1 || strings.ContainsAny(email, " \t\r\n<>") {
		return invalid("email", "invalid email address")
	}
	if _, err := NormalizeHost(email[at+1:]); err != nil {
		return invalid("email", "invalid email domain")
	}
	return nil
}

// MaxPidsLimit is the highest pids_limit a container may get: Linux's
// default pid_max, far beyond what any one site needs.
const MaxPidsLimit = 32768

// ValidateLimits checks container limits on their own (0 means not set);
// whether the Docker host has that much is for the caller to ask.
func ValidateLimits(l Limits) error {
	return validateLimits(l.MemoryBytes, l.NanoCPUs, l.PidsLimit)
}

func validateLimits(memoryBytes, nanoCPUs, pidsLimit int64) error {
	switch {
	case memoryBytes < 0:
		return invalid("memory_bytes", "must not be negative")
	case memoryBytes > 0 && memoryBytes < 6<<20:
		return invalid("memory_bytes", "below Docker's minimum of 6 MiB")
	case nanoCPUs < 0:
		return invalid("nano_cpus", "must not be negative")
	case nanoCPUs > 0 && nanoCPUs < 10_000_000:
		return invalid("nano_cpus", "below Docker's minimum of 0.01 CPU (10000000)")
	case pidsLimit < 0:
		return invalid("pids_limit", "must not be negative")
	case pidsLimit > MaxPidsLimit:
		return invalid("pids_limit", "must be at most %d", MaxPidsLimit)
	}
	return nil
}

// userPattern is a numeric uid, optionally with a gid: names would need
// the image's /etc/passwd, and a typo would only show at the first start.
var userPattern = regexp.MustCompile(`^[0-9]{1,10}(:[0-9]{1,10})?$`)

// maxID is the largest uid or gid a container may run as.
const maxID = 1<<31 - 2

func validateUser(user string) error {
	if user == "" {
		return nil
	}
	if !userPattern.MatchString(user) {
		return invalid("user", "must be a numeric uid or uid:gid, e.g. 1000:1000")
	}
	for id := range strings.SplitSeq(user, ":") {
		if n, err := strconv.ParseInt(id, 10, 64); err != nil || n > maxID {
			return invalid("user", "uid and gid must be at most %d", maxID)
		}
	}
	return nil
}

// validateTemplate checks t without the platform's settings: capability
// names are checked to be real, not to be allowed (Store.validateTemplate
// does that). It rewrites cap_add to canonical names.
func validateTemplate(t *Template) error {
	return validateTemplateAllowing(t, nil)
}

// validateTemplate checks t against the platform's settings too: a
// privileged capability must be allowed by the operator.
func (s *Store) validateTemplate(t *Template) error {
	allowed, err := AllowedCapabilities(s.opts.AllowCapabilities)
	if err != nil {
		return err
	}
	return validateTemplateAllowing(t, allowed)
}

func validateTemplateAllowing(t *Template, allowedCaps []string) error {
	t.defaultScaling()
	if err := validateSlug(t.Slug); err != nil {
		return err
	}
	if err := validateName("name", t.Name); err != nil {
		return err
	}
	if err := checkText("description", t.Description, MaxDescriptionLen); err != nil {
		return err
	}
	if err := ValidateImage(t.Image); err != nil {
		return err
	}
	if t.Port < 1 || t.Port > 65535 {
		return invalid("port", "must be between 1 and 65535")
	}
	if err := ValidateEnv("env", t.Env); err != nil {
		return err
	}
	if err := checkText("data_path", t.DataPath, MaxPathLen); err != nil {
		return err
	}
	if err := checkText("health_path", t.HealthPath, MaxPathLen); err != nil {
		return err
	}
	if t.DataPath != "" && (!path.IsAbs(t.DataPath) || path.Clean(t.DataPath) != t.DataPath || t.DataPath == "/") {
		return invalid("data_path", "must be a clean absolute path other than /")
	}
	if t.HealthPath != "" && (!strings.HasPrefix(t.HealthPath, "/") || strings.ContainsAny(t.HealthPath, " \t\r\n#")) {
		return invalid("health_path", "must be a URL path starting with /")
	}
	if err := validateLimits(t.MemoryBytes, t.NanoCPUs, t.PidsLimit); err != nil {
		return err
	}
	if err := validateHealth(t.HealthIntervalMs, t.UnhealthyAfter, t.RestartAfter); err != nil {
		return err
	}
	if err := validateReplicas("max_replicas", t.MaxReplicas); err != nil {
		return err
	}
	if t.TargetConcurrency < 1 || t.TargetConcurrency > MaxTargetConcurrency {
		return invalid("target_concurrency", "must be from 1 to %d", MaxTargetConcurrency)
	}
	caps, err := validateCapabilities(t.CapAdd, allowedCaps)
	if err != nil {
		return err
	}
	t.CapAdd = caps
	return validateUser(t.User)
}

// MaxHealthIntervalMs bounds a template's health_interval_ms (a day).
const MaxHealthIntervalMs = 24 * 60 * 60 * 1000

// validateHealth checks a template's health monitoring settings.
func validateHealth(intervalMs, unhealthyAfter, restartAfter int) error {
	switch {
	case intervalMs < 0 || intervalMs > MaxHealthIntervalMs:
		return invalid("health_interval_ms", "must be between 0 (the default, 30s) and %d", MaxHealthIntervalMs)
	case intervalMs > 0 && intervalMs < 100:
		return invalid("health_interval_ms", "must be at least 100 (or 0 for the default, 30s)")
	case unhealthyAfter < 0 || unhealthyAfter > 1000:
		return invalid("unhealthy_after", "must be between 0 (the default, 3) and 1000")
	case restartAfter < -1 || restartAfter > 1000:
		return invalid("restart_after", "must be between -1 (never) and 1000, 0 for the default (5)")
	}
	return nil
}

// validateReplicas checks a max_replicas of a template or a plan.
func validateReplicas(field string, n int) error {
	if n < 1 || n > MaxReplicas {
		return invalid(field, "must be from 1 to %d", MaxReplicas)
	}
	return nil
}
