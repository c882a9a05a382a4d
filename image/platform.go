package image

import (
	"fmt"
	goruntime "runtime"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// DefaultPlatform is the platform of this machine, as `docker pull` picks
// by default.
func DefaultPlatform() ocispec.Platform {
	return Normalize(ocispec.Platform{OS: goruntime.GOOS, Architecture: goruntime.GOARCH})
}

// Normalize spells a platform the way image indexes do: amd64, not x86_64;
// arm64 with variant v8; arm with a variant (v7 unless given).
func Normalize(p ocispec.Platform) ocispec.Platform {
	p.OS = strings.ToLower(p.OS)
	switch arch := strings.ToLower(p.Architecture); arch {
	case "x86_64", "x86-64", "amd64":
		p.Architecture = "amd64"
		if p.Variant == "v1" {
			p.Variant = ""
		}
	case "aarch64", "arm64":
		p.Architecture = "arm64"
		if p.Variant == "8" || p.Variant == "" {
			p.Variant = "v8"
		}
	case "armhf":
		p.Architecture, p.Variant = "arm", "v7"
	case "armel":
		p.Architecture, p.Variant = "arm", "v6"
	case "arm":
		switch p.Variant {
		case "", "7":
			p.Variant = "v7"
		case "5", "6", "8":
			p.Variant = "v" + p.Variant
		}
	case "i386", "i686", "x86", "386":
		p.Architecture = "386"
	default:
		p.Architecture = arch
	}
	return p
}

// ParsePlatform reads "os[/arch[/variant]]", as --platform takes it. An
// architecture alone ("arm64") means linux.
func ParsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(s, "/")
	bad := func() (ocispec.Platform, error) {
		return ocispec.Platform{}, fmt.Errorf("invalid platform %q: want os[/arch[/variant]]: %w", s, errdefs.ErrInvalidArgument)
	}
	for _, part := range parts {
		if part == "" || strings.ContainsAny(part, " \t") {
			return bad()
		}
	}
	var p ocispec.Platform
	switch len(parts) {
	case 1:
		if known := Normalize(ocispec.Platform{Architecture: parts[0]}); knownArch(known.Architecture) {
			p = ocispec.Platform{OS: "linux", Architecture: parts[0]}
		} else {
			p = ocispec.Platform{OS: parts[0], Architecture: goruntime.GOARCH}
		}
	case 2:
		p = ocispec.Platform{OS: parts[0], Architecture: parts[1]}
	case 3:
		p = ocispec.Platform{OS: parts[0], Architecture: parts[1], Variant: parts[2]}
	default:
		return bad()
	}
	return Normalize(p), nil
}

func knownArch(a string) bool {
	switch a {
	case "amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64", "mips64le", "loong64":
		return true
	}
	return false
}

// FormatPlatform writes p as "os/arch[/variant]".
func FormatPlatform(p ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// rank says how well have serves want: 0 = not at all, higher = better.
// An exact variant ranks highest; an older arm variant runs on a newer
// one; an image that names no variant runs anywhere of its architecture.
func rank(want, have ocispec.Platform) int {
	want, have = Normalize(want), Normalize(have)
	if want.OS != have.OS || want.Architecture != have.Architecture {
		return 0
	}
	switch {
	case want.Variant == have.Variant:
		return 100
	case have.Variant == "":
		return 50
	case want.Architecture == "arm" && have.Variant < want.Variant:
		// v7 runs v6 and v5 code: prefer the nearest.
		return 10 + int(have.Variant[len(have.Variant)-1]-'0')
	}
	return 0
}

// Match reports whether an image for have runs on want.
func Match(want, have ocispec.Platform) bool { return rank(want, have) > 0 }

// Select picks, from an index's manifests, the one for platform want: the
// best ranked, the first among equals. Entries without a platform and
// attestation manifests (BuildKit's "unknown/unknown") are never chosen.
func Select(idx ocispec.Index, want ocispec.Platform) (ocispec.Descriptor, error) {
	best, bestRank := -1, 0
	for i, d := range idx.Manifests {
		if d.Platform == nil || d.Annotations["vnd.docker.reference.type"] == "attestation-manifest" {
			continue
		}
		if r := rank(want, *d.Platform); r > bestRank {
			best, bestRank = i, r
		}
	}
	if best < 0 {
		return ocispec.Descriptor{}, fmt.Errorf("no matching manifest for %s in the manifest list entries: %w", FormatPlatform(Normalize(want)), errdefs.ErrNotFound)
	}
	return idx.Manifests[best], nil
}
