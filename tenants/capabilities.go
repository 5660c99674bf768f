package tenants

import (
	"slices"
	"strings"
)

// linuxCapabilities are the capability names the Linux kernel knows (as of
// 5.9), without the CAP_ prefix.
var linuxCapabilities = []string{
	"AUDIT_CONTROL", "AUDIT_READ", "AUDIT_WRITE", "BLOCK_SUSPEND", "BPF",
	"CHECKPOINT_RESTORE", "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER",
	"FSETID", "IPC_LOCK", "IPC_OWNER", "KILL", "LEASE", "LINUX_IMMUTABLE",
	"MAC_ADMIN", "MAC_OVERRIDE", "MKNOD", "NET_ADMIN", "NET_BIND_SERVICE",
	"NET_BROADCAST", "NET_RAW", "PERFMON", "SETFCAP", "SETGID", "SETPCAP",
	"SETUID", "SYSLOG", "SYS_ADMIN", "SYS_BOOT", "SYS_CHROOT", "SYS_MODULE",
	"SYS_NICE", "SYS_PACCT", "SYS_PTRACE", "SYS_RAWIO", "SYS_RESOURCE",
	"SYS_TIME", "SYS_TTY_CONFIG", "WAKE_ALARM",
}

// UnprivilegedCapabilities are the capabilities Docker itself gives every
// container by default. A template may add these freely; any other one
// (SYS_ADMIN, NET_ADMIN, SYS_PTRACE, SYS_MODULE, DAC_READ_SEARCH, …) can
// hand the host or its network over to a customer, so it is refused
// unless the operator allows it (the tenants option allow_capabilities).
var UnprivilegedCapabilities = []string{
	"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
	"NET_BIND_SERVICE", "NET_RAW", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}

// CanonicalCapability returns the kernel's name of capability c as Docker
// takes it, uppercase without the CAP_ prefix, and whether it is one.
func CanonicalCapability(c string) (string, bool) {
	name := strings.TrimPrefix(strings.ToUpper(c), "CAP_")
	return name, slices.Contains(linuxCapabilities, name)
}

// AllowedCapabilities returns what a template may add: the unprivileged
// capabilities and the operator's extra ones. Every entry of extra must be
// a capability name (see CanonicalCapability).
func AllowedCapabilities(extra []string) ([]string, error) {
	allowed := slices.Clone(UnprivilegedCapabilities)
	for _, c := range extra {
		name, ok := CanonicalCapability(c)
		if !ok {
			return nil, invalid("allow_capabilities", "%q is not a Linux capability", c)
		}
		if !slices.Contains(allowed, name) {
			allowed = append(allowed, name)
		}
	}
	slices.Sort(allowed)
	return allowed, nil
}

// validateCapabilities rewrites caps to their canonical names (dropping
// repeats) and refuses names the kernel does not know and, when allowed is
// not nil, capabilities outside it.
func validateCapabilities(caps []string, allowed []string) ([]string, error) {
	if len(caps) > MaxCapabilities {
		return nil, invalid("cap_add", "more than the %d capabilities there are", MaxCapabilities)
	}
	out := make([]string, 0, len(caps))
	for _, c := range caps {
		name, ok := CanonicalCapability(c)
		if !ok {
			return nil, invalid("cap_add", "%q is not a Linux capability", c)
		}
		if allowed != nil && !slices.Contains(allowed, name) {
			return nil, invalid("cap_add", "%s gives a container power over the host; the operator must allow it (tenants option allow_capabilities)", name)
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out, nil
}
