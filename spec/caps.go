package spec

import (
	"slices"
	"strings"

	"github.com/moby/sys/capability"
)

// DefaultCapabilities is Docker's default capability set, in its order.
func DefaultCapabilities() []string {
	return []string{
		"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
		"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
		"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
	}
}

// capNames lists capabilities by OCI name: every one berth knows, or only
// those the running kernel has and berth's own bounding set holds (as
// podman's --privileged does): a capability outside it cannot be given to
// a container, and asking for it fails the start with EPERM.
func capNames(supported bool) []string {
	list := capability.ListKnown()
	if supported {
		if l, err := capability.ListSupported(); err == nil {
			list = l
		}
	}
	var out []string
	for _, c := range list {
		if supported {
			if in, err := capability.GetBound(c); err == nil && !in {
				continue
			}
		}
		out = append(out, "CAP_"+strings.ToUpper(c.String()))
	}
	return out
}

// normalizeCaps turns --cap-add/--cap-drop values into OCI names, "ALL"
// kept, as moby's caps.NormalizeLegacyCapabilities does.
func normalizeCaps(in []string) ([]string, error) {
	known := capNames(false)
	var out []string
	for _, c := range in {
		c = strings.ToUpper(c)
		if c == "ALL" {
			out = append(out, c)
			continue
		}
		if !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		if !slices.Contains(known, c) {
			return nil, invalid("unknown capability: %q", c)
		}
		out = append(out, c)
	}
	return out, nil
}

// capabilities computes a container's capability set from Docker's
// defaults and the request, as moby's caps.TweakCapabilities does.
func capabilities(add, drop []string, privileged bool) ([]string, error) {
	if privileged {
		return capNames(true), nil
	}
	add, err := normalizeCaps(add)
	if err != nil {
		return nil, err
	}
	if drop, err = normalizeCaps(drop); err != nil {
		return nil, err
	}
	var caps []string
	switch {
	case slices.Contains(add, "ALL"):
		for _, c := range capNames(true) {
			if !slices.Contains(drop, c) {
				caps = append(caps, c)
			}
		}
		return caps, nil
	case slices.Contains(drop, "ALL"):
	default:
		for _, c := range DefaultCapabilities() {
			if !slices.Contains(drop, c) {
				caps = append(caps, c)
			}
		}
	}
	for _, c := range add {
		if !slices.Contains(caps, c) {
			caps = append(caps, c)
		}
	}
	return caps, nil
}

// AllCapabilities lists every capability the running kernel has, for
// `exec --privileged`.
func AllCapabilities() []string { return capNames(true) }
