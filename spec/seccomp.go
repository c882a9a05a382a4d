package spec

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// defaultProfile is Docker's default seccomp profile in moby's format
// (README.md says where it comes from).
//
//go:embed default.json
var defaultProfile []byte

// DefaultSeccompProfile returns a copy of Docker's default seccomp profile
// in moby's format, as embedded.
func DefaultSeccompProfile() []byte { return slices.Clone(defaultProfile) }

// profile is a seccomp profile in moby's format: an OCI profile whose
// architectures may come from an arch map and whose syscall rules apply
// only to some capabilities, architectures or kernels.
type profile struct {
	DefaultAction    specs.LinuxSeccompAction `json:"defaultAction"`
	DefaultErrnoRet  *uint                    `json:"defaultErrnoRet,omitempty"`
	Architectures    []specs.Arch             `json:"architectures,omitempty"`
	ArchMap          []archMap                `json:"archMap,omitempty"`
	ListenerPath     string                   `json:"listenerPath,omitempty"`
	ListenerMetadata string                   `json:"listenerMetadata,omitempty"`
	Flags            []specs.LinuxSeccompFlag `json:"flags,omitempty"`
	Syscalls         []syscallRule            `json:"syscalls"`
}

type archMap struct {
	Arch    specs.Arch   `json:"architecture"`
	SubArch []specs.Arch `json:"subArchitectures"`
}

type syscallRule struct {
	Name     string                   `json:"name,omitempty"`
	Names    []string                 `json:"names,omitempty"`
	Action   specs.LinuxSeccompAction `json:"action"`
	ErrnoRet *uint                    `json:"errnoRet,omitempty"`
	Args     []specs.LinuxSeccompArg  `json:"args,omitempty"`
	Includes filter                   `json:"includes"`
	Excludes filter                   `json:"excludes"`
}

// filter limits a rule to (includes) or away from (excludes) containers
// with all of Caps in their bounding set, on one of Arches (Go names), on
// a kernel at least MinKernel ("major.minor").
type filter struct {
	Caps      []string `json:"caps,omitempty"`
	Arches    []string `json:"arches,omitempty"`
	MinKernel string   `json:"minKernel,omitempty"`
}

// goToSeccomp maps GOARCH to the seccomp architecture of its arch map.
var goToSeccomp = map[string]specs.Arch{
	"386": specs.ArchX86, "amd64": specs.ArchX86_64, "arm": specs.ArchARM, "arm64": specs.ArchAARCH64,
	"mips": specs.ArchMIPS, "mipsle": specs.ArchMIPSEL, "mips64": specs.ArchMIPS64, "mips64le": specs.ArchMIPSEL64,
	"ppc64": specs.ArchPPC64, "ppc64le": specs.ArchPPC64LE, "s390x": specs.ArchS390X,
	"riscv64": specs.ArchRISCV64, "loong64": specs.ArchLOONGARCH64,
}

// host is what a profile's filters are checked against.
type host struct {
	arch   string // GOARCH
	kernel [2]int // major, minor
}

func thisHost() host {
	h := host{arch: runtime.GOARCH}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		h.kernel, _ = parseKernel(unix.ByteSliceToString(u.Release[:]))
	}
	return h
}

// parseKernel reads "major.minor" from the front of a kernel release.
func parseKernel(s string) ([2]int, bool) {
	f := strings.FieldsFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	if len(f) < 2 {
		return [2]int{}, false
	}
	a, _ := strconv.Atoi(f[0])
	b, _ := strconv.Atoi(f[1])
	return [2]int{a, b}, true
}

func (h host) kernelAtLeast(v string) (bool, error) {
	k, ok := parseKernel(v)
	if !ok {
		return false, fmt.Errorf("invalid kernel version %q in seccomp profile: %w", v, errdefs.ErrInvalidArgument)
	}
	return h.kernel[0] > k[0] || h.kernel[0] == k[0] && h.kernel[1] >= k[1], nil
}

// convertSeccomp turns a profile in moby's format (an OCI profile is one
// too) into the OCI profile of a container whose bounding set is caps, on
// h, as moby's profiles/seccomp setupSeccomp does.
func convertSeccomp(raw []byte, caps []string, h host) (*specs.LinuxSeccomp, error) {
	var p profile
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("decoding seccomp profile failed: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	if len(p.ArchMap) > 0 && len(p.Architectures) > 0 {
		return nil, fmt.Errorf("both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap': %w", errdefs.ErrInvalidArgument)
	}
	out := &specs.LinuxSeccomp{
		DefaultAction: p.DefaultAction, DefaultErrnoRet: p.DefaultErrnoRet,
		Architectures: p.Architectures, ListenerPath: p.ListenerPath,
		ListenerMetadata: p.ListenerMetadata, Flags: p.Flags,
	}
	for _, m := range p.ArchMap {
		if m.Arch == goToSeccomp[h.arch] {
			out.Architectures = append(append(out.Architectures, m.Arch), m.SubArch...)
		}
	}
	for _, r := range p.Syscalls {
		if r.Name != "" {
			return nil, fmt.Errorf("the 'name' field is no longer supported, use 'names' instead: %w", errdefs.ErrInvalidArgument)
		}
		ok, err := r.applies(caps, h)
		if err != nil {
			return nil, err
		}
		if ok {
			out.Syscalls = append(out.Syscalls, specs.LinuxSyscall{Names: r.Names, Action: r.Action, ErrnoRet: r.ErrnoRet, Args: r.Args})
		}
	}
	return out, nil
}

// applies reports whether rule r is part of the profile for caps on h:
// no exclude matches (any listed cap held, the arch listed, the kernel new
// enough) and every include holds (all caps held, the arch listed, the
// kernel new enough).
func (r syscallRule) applies(caps []string, h host) (bool, error) {
	if slices.Contains(r.Excludes.Arches, h.arch) {
		return false, nil
	}
	for _, c := range r.Excludes.Caps {
		if slices.Contains(caps, c) {
			return false, nil
		}
	}
	if r.Excludes.MinKernel != "" {
		if ok, err := h.kernelAtLeast(r.Excludes.MinKernel); err != nil || ok {
			return false, err
		}
	}
	if len(r.Includes.Arches) > 0 && !slices.Contains(r.Includes.Arches, h.arch) {
		return false, nil
	}
	for _, c := range r.Includes.Caps {
		if !slices.Contains(caps, c) {
			return false, nil
		}
	}
	if r.Includes.MinKernel != "" {
		if ok, err := h.kernelAtLeast(r.Includes.MinKernel); err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}
