package seccomp

import (
	"encoding/json"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// mobyProfile is the format of testdata/docker-default.json.
type mobyProfile struct {
	DefaultAction   specs.LinuxSeccompAction `json:"defaultAction"`
	DefaultErrnoRet *uint                    `json:"defaultErrnoRet"`
	ArchMap         []struct {
		Arch    specs.Arch   `json:"architecture"`
		SubArch []specs.Arch `json:"subArchitectures"`
	} `json:"archMap"`
	Syscalls []struct {
		specs.LinuxSyscall
		Includes mobyFilter `json:"includes"`
		Excludes mobyFilter `json:"excludes"`
	} `json:"syscalls"`
}

type mobyFilter struct {
	Caps      []string `json:"caps"`
	Arches    []string `json:"arches"`
	MinKernel string   `json:"minKernel"`
}

// dockerCaps is Docker's default capability set.
var dockerCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// dockerProfile returns the OCI profile Docker derives from its default
// profile for a container on this machine with the default capabilities,
// following moby's profiles/seccomp setupSeccomp.
func dockerProfile(t testing.TB) *specs.LinuxSeccomp {
	t.Helper()
	raw, err := os.ReadFile("testdata/docker-default.json")
	if err != nil {
		t.Fatal(err)
	}
	var m mobyProfile
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	p := &specs.LinuxSeccomp{DefaultAction: m.DefaultAction, DefaultErrnoRet: m.DefaultErrnoRet}
	for _, am := range m.ArchMap {
		if am.Arch == nativeArch.name {
			p.Architectures = append([]specs.Arch{am.Arch}, am.SubArch...)
		}
	}
	for _, s := range m.Syscalls {
		switch {
		case slices.Contains(s.Excludes.Arches, runtime.GOARCH),
			slices.ContainsFunc(s.Excludes.Caps, func(c string) bool { return slices.Contains(dockerCaps, c) }),
			len(s.Includes.Arches) > 0 && !slices.Contains(s.Includes.Arches, runtime.GOARCH),
			slices.ContainsFunc(s.Includes.Caps, func(c string) bool { return !slices.Contains(dockerCaps, c) }),
			s.Includes.MinKernel != "" && !kernelAtLeast(t, s.Includes.MinKernel):
			continue
		}
		p.Syscalls = append(p.Syscalls, s.LinuxSyscall)
	}
	return p
}

// kernelAtLeast compares the running kernel with a "major.minor" version.
func kernelAtLeast(t testing.TB, v string) bool {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	parse := func(s string) (int, int) {
		f := strings.FieldsFunc(s, func(r rune) bool { return r < '0' || r > '9' })
		if len(f) < 2 {
			t.Fatalf("cannot parse version %q", s)
		}
		a, _ := strconv.Atoi(f[0])
		b, _ := strconv.Atoi(f[1])
		return a, b
	}
	ka, kb := parse(unix.ByteSliceToString(u.Release[:]))
	va, vb := parse(v)
	return ka > va || ka == va && kb >= vb
}

func TestDockerProfileCompiles(t *testing.T) {
	p := dockerProfile(t)
	prog, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkProgram(prog); err != nil {
		t.Fatal(err)
	}
	t.Logf("Docker's default profile for %v: %d syscall entries, %d instructions", p.Architectures, len(p.Syscalls), len(prog))
	if len(prog) > maxInsns/2 {
		t.Errorf("%d instructions: want well under %d", len(prog), maxInsns)
	}
	// With every architecture Docker knows, still under the limit.
	all := *p
	all.Architectures = nil
	for _, a := range arches {
		all.Architectures = append(all.Architectures, a.name)
	}
	if prog, err = Compile(&all); err != nil {
		t.Fatal(err)
	}
	t.Logf("for all %d architectures: %d instructions", len(arches), len(prog))
	if err := checkProgram(prog); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkCompileDockerDefault(b *testing.B) {
	p := dockerProfile(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(p); err != nil {
			b.Fatal(err)
		}
	}
}
