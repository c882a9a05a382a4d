package seccomp

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/errdefs"
)

const (
	retAllow  = unix.SECCOMP_RET_ALLOW
	retEPERM  = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	retENOSYS = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
	retKill   = unix.SECCOMP_RET_KILL_THREAD
)

func uintp(v uint) *uint { return &v }

// nrOf returns the number of a system call in an ABI.
func nrOf(t testing.TB, a specs.Arch, name string) uint32 {
	t.Helper()
	e := lookupSyscall(name)
	if e == nil || e.nr[archByName(a).table] < 0 {
		t.Fatalf("no %s on %s", name, a)
	}
	return uint32(e.nr[archByName(a).table])
}

// call describes one system call as the filter sees it.
type call struct {
	arch specs.Arch // "" is the native ABI
	name string
	nr   uint32 // when name is ""
	args [6]uint64
}

func (c call) data(t testing.TB) (seccompData, bool) {
	a := nativeArch
	if c.arch != "" {
		a = archByName(c.arch)
	}
	d := seccompData{nr: c.nr, arch: a.audit, args: c.args}
	if c.name != "" {
		d.nr = nrOf(t, a.name, c.name)
	}
	return d, a.bigEndian
}

// eval compiles p and runs the filter on c.
func eval(t testing.TB, p *specs.LinuxSeccomp, c call) uint32 {
	t.Helper()
	prog, err := Compile(p)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	if err := checkProgram(prog); err != nil {
		t.Fatalf("invalid program: %v", err)
	}
	d, be := c.data(t)
	got, err := run(prog, d, be)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return got
}

func nameRule(act specs.LinuxSeccompAction, names ...string) specs.LinuxSyscall {
	return specs.LinuxSyscall{Names: names, Action: act}
}

func ruleArgs(act specs.LinuxSeccompAction, name string, args ...specs.LinuxSeccompArg) specs.LinuxSyscall {
	return specs.LinuxSyscall{Names: []string{name}, Action: act, Args: args}
}

func arg(i uint, op specs.LinuxSeccompOperator, v uint64, v2 ...uint64) specs.LinuxSeccompArg {
	a := specs.LinuxSeccompArg{Index: i, Op: op, Value: v}
	if len(v2) > 0 {
		a.ValueTwo = v2[0]
	}
	return a
}

func TestCompileActions(t *testing.T) {
	for _, tc := range []struct {
		act   specs.LinuxSeccompAction
		errno *uint
		want  uint32
	}{
		{specs.ActKill, nil, unix.SECCOMP_RET_KILL_THREAD},
		{specs.ActKillThread, nil, unix.SECCOMP_RET_KILL_THREAD},
		{specs.ActKillProcess, nil, unix.SECCOMP_RET_KILL_PROCESS},
		{specs.ActTrap, nil, unix.SECCOMP_RET_TRAP},
		{specs.ActErrno, nil, retEPERM},
		{specs.ActErrno, uintp(99), unix.SECCOMP_RET_ERRNO | 99},
		{specs.ActTrace, nil, unix.SECCOMP_RET_TRACE | uint32(unix.EPERM)},
		{specs.ActTrace, uintp(7), unix.SECCOMP_RET_TRACE | 7},
		{specs.ActAllow, nil, retAllow},
		{specs.ActLog, nil, unix.SECCOMP_RET_LOG},
		{specs.ActNotify, nil, unix.SECCOMP_RET_USER_NOTIF},
	} {
		t.Run(fmt.Sprintf("%s/%v", tc.act, tc.errno != nil), func(t *testing.T) {
			// As a rule's action, under a default that differs from every action.
			r := nameRule(tc.act, "mkdir")
			r.ErrnoRet = tc.errno
			p := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: uintp(1234), Syscalls: []specs.LinuxSyscall{r}}
			if got := eval(t, p, call{name: "mkdir"}); got != tc.want {
				t.Errorf("rule: got %#x, want %#x", got, tc.want)
			}
			// As the default action.
			p = &specs.LinuxSeccomp{DefaultAction: tc.act, DefaultErrnoRet: tc.errno,
				Syscalls: []specs.LinuxSyscall{{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: uintp(4321)}}}
			if got := eval(t, p, call{name: "mkdir"}); got != tc.want {
				t.Errorf("default: got %#x, want %#x", got, tc.want)
			}
		})
	}
}

func TestCompileSemantics(t *testing.T) {
	const hi = 1 << 32
	type probe struct {
		c    call
		want uint32
	}
	for _, tc := range []struct {
		name   string
		p      specs.LinuxSeccomp
		probes []probe
	}{{
		name: "allowlist with ENOSYS above the newest named call",
		p: specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
			nameRule(specs.ActAllow, "read", "write", "openat", "no_such_syscall"),
		}},
		probes: []probe{
			{call{name: "read"}, retAllow},
			{call{name: "openat"}, retAllow},
			{call{name: "close"}, retEPERM},    // 3, below openat (257)
			{call{name: "mkdirat"}, retENOSYS}, // 258
			{call{name: "clone3"}, retENOSYS},  // 435
			{call{nr: 1000}, retENOSYS},        // not a system call at all
			{call{nr: x32Bit - 1}, retENOSYS},  // last x86_64 number
			{call{nr: x32Bit | 3}, retKill},    // x32 close: x32 not listed
			{call{nr: 0xffffffff}, retKill},    // nr -1 lies in x32's range
			{call{arch: specs.ArchX86, name: "read"}, retKill},
		},
	}, {
		name: "an allowing default gets no ENOSYS",
		p: specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			nameRule(specs.ActErrno, "mkdir"),
		}},
		probes: []probe{
			{call{name: "mkdir"}, retEPERM},
			{call{name: "clone3"}, retAllow},
			{call{nr: 1000}, retAllow},
		},
	}, {
		name: "defaultErrnoRet and rules skipped as the default still count as newest",
		p: specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: uintp(13), Syscalls: []specs.LinuxSyscall{
			nameRule(specs.ActAllow, "read"),
			{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: uintp(13)},
		}},
		probes: []probe{
			{call{name: "read"}, retAllow},
			{call{name: "clone3"}, unix.SECCOMP_RET_ERRNO | 13},
			{call{name: "mkdir"}, unix.SECCOMP_RET_ERRNO | 13},
			{call{nr: 436}, retENOSYS},
		},
	}, {
		name: "x86_64, x86 and x32 each with its own numbers",
		p: specs.LinuxSeccomp{DefaultAction: specs.ActErrno,
			Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
			Syscalls:      []specs.LinuxSyscall{nameRule(specs.ActAllow, "getpid", "ioctl", "socketcall", "set_thread_area")}},
		probes: []probe{
			{call{name: "getpid"}, retAllow},
			{call{arch: specs.ArchX86, name: "getpid"}, retAllow},
			{call{arch: specs.ArchX86, name: "socketcall"}, retAllow},
			{call{arch: specs.ArchX86, name: "set_thread_area"}, retAllow},
			{call{arch: specs.ArchX32, name: "getpid"}, retAllow},
			{call{arch: specs.ArchX32, name: "ioctl"}, retAllow},   // 0x40000000 + 514
			{call{arch: specs.ArchX32, nr: x32Bit | 16}, retEPERM}, // x86_64's ioctl number
			{call{arch: specs.ArchX32, nr: x32Bit | 1000}, retENOSYS},
			{call{arch: specs.ArchX86, nr: 20}, retAllow}, // 20 is x86's getpid
			{call{arch: specs.ArchX86, nr: 39}, retEPERM}, // 39 is x86_64's getpid, x86's mkdir
			{call{arch: specs.ArchAARCH64, name: "getpid"}, retKill},
		},
	}, {
		name: "only x32",
		p: specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX32},
			Syscalls: []specs.LinuxSyscall{nameRule(specs.ActErrno, "getpid")}},
		probes: []probe{
			{call{arch: specs.ArchX32, name: "getpid"}, retEPERM},
			{call{name: "getpid"}, retEPERM}, // native x86_64 is always in
			{call{arch: specs.ArchX32, name: "mkdir"}, retAllow},
		},
	}, {
		name: "64-bit argument comparisons",
		p: specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			ruleArgs(specs.ActErrno, "lseek", arg(1, specs.OpGreaterThan, 0xffffffff)),
			ruleArgs(specs.ActKillProcess, "read", arg(0, specs.OpEqualTo, hi+5)),
			ruleArgs(specs.ActTrap, "write", arg(2, specs.OpLessThan, hi)),
		}},
		probes: []probe{
			{call{name: "lseek", args: [6]uint64{3, 0xffffffff}}, retAllow},
			{call{name: "lseek", args: [6]uint64{3, hi}}, retEPERM},
			{call{name: "lseek", args: [6]uint64{3, 1<<63 | 1}}, retEPERM},
			{call{name: "read", args: [6]uint64{5}}, retAllow},
			{call{name: "read", args: [6]uint64{hi + 5}}, unix.SECCOMP_RET_KILL_PROCESS},
			{call{name: "read", args: [6]uint64{2*hi + 5}}, retAllow},
			{call{name: "write", args: [6]uint64{0, 0, hi - 1}}, unix.SECCOMP_RET_TRAP},
			{call{name: "write", args: [6]uint64{0, 0, hi}}, retAllow},
		},
	}, {
		name: "masked equality: arg & value == valueTwo",
		p: specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
			ruleArgs(specs.ActAllow, "clone", arg(0, specs.OpMaskedEqual, 0x7e020000)),
			ruleArgs(specs.ActAllow, "chmod", arg(1, specs.OpMaskedEqual, 0xff00000000000fff, 0x1200000000000644)),
		}},
		probes: []probe{
			{call{name: "clone", args: [6]uint64{uint64(unix.SIGCHLD) | unix.CLONE_VM}}, retAllow},
			{call{name: "clone", args: [6]uint64{unix.CLONE_NEWUSER}}, retEPERM},
			{call{name: "clone", args: [6]uint64{hi | unix.CLONE_FILES}}, retAllow},
			{call{name: "chmod", args: [6]uint64{0, 0x1234000000001644}}, retAllow},
			{call{name: "chmod", args: [6]uint64{0, 0x1300000000000644}}, retEPERM},
			{call{name: "chmod", args: [6]uint64{0, 0x1200000000000645}}, retEPERM},
		},
	}, {
		name: "conditions of a rule all hold; two on one argument make each its own rule (runc)",
		p: specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			ruleArgs(specs.ActErrno, "fchmodat", arg(0, specs.OpEqualTo, 3), arg(2, specs.OpEqualTo, 0o777)),
			ruleArgs(specs.ActErrno, "fchownat", arg(2, specs.OpEqualTo, 1), arg(2, specs.OpEqualTo, 2), arg(3, specs.OpEqualTo, 9)),
		}},
		probes: []probe{
			{call{name: "fchmodat", args: [6]uint64{3, 0, 0o777}}, retEPERM},
			{call{name: "fchmodat", args: [6]uint64{4, 0, 0o777}}, retAllow},
			{call{name: "fchmodat", args: [6]uint64{3, 0, 0o755}}, retAllow},
			{call{name: "fchownat", args: [6]uint64{0, 0, 1}}, retEPERM},
			{call{name: "fchownat", args: [6]uint64{0, 0, 2}}, retEPERM},
			{call{name: "fchownat", args: [6]uint64{0, 0, 5, 9}}, retEPERM},
			{call{name: "fchownat", args: [6]uint64{0, 0, 5, 8}}, retAllow},
		},
	}, {
		name: "the first unconditional rule decides (libseccomp)",
		p: specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			ruleArgs(specs.ActKillProcess, "mkdir", arg(1, specs.OpEqualTo, 0o700)),
			nameRule(specs.ActErrno, "mkdir"),
			nameRule(specs.ActTrap, "mkdir"),
			ruleArgs(specs.ActErrno, "rmdir", arg(0, specs.OpEqualTo, 1)),
			ruleArgs(specs.ActTrap, "rmdir", arg(0, specs.OpLessEqual, 1)),
		}},
		probes: []probe{
			{call{name: "mkdir", args: [6]uint64{0, 0o700}}, retEPERM},
			{call{name: "mkdir"}, retEPERM},
			{call{name: "rmdir", args: [6]uint64{1}}, retEPERM},
			{call{name: "rmdir", args: [6]uint64{0}}, unix.SECCOMP_RET_TRAP},
			{call{name: "rmdir", args: [6]uint64{2}}, retAllow},
		},
	}, {
		name: "32-bit ABIs compare the low word with the value truncated (libseccomp)",
		p: specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{specs.ArchX86},
			Syscalls: []specs.LinuxSyscall{ruleArgs(specs.ActAllow, "personality", arg(0, specs.OpEqualTo, hi|0xffffffff))}},
		probes: []probe{
			{call{arch: specs.ArchX86, name: "personality", args: [6]uint64{0xffffffff}}, retAllow},
			{call{arch: specs.ArchX86, name: "personality", args: [6]uint64{8}}, retEPERM},
			{call{name: "personality", args: [6]uint64{0xffffffff}}, retEPERM},
			{call{name: "personality", args: [6]uint64{hi | 0xffffffff}}, retAllow},
		},
	}, {
		name: "big-endian s390x: argument words and the multiplexer",
		p: specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{specs.ArchS390X},
			Syscalls: []specs.LinuxSyscall{ruleArgs(specs.ActAllow, "lseek", arg(1, specs.OpLessEqual, hi+1))}},
		probes: []probe{
			{call{arch: specs.ArchS390X, name: "lseek", args: [6]uint64{0, hi + 1}}, retAllow},
			{call{arch: specs.ArchS390X, name: "lseek", args: [6]uint64{0, hi + 2}}, retEPERM},
			{call{arch: specs.ArchS390X, nr: 0}, retENOSYS},
			{call{arch: specs.ArchS390X, nr: 1}, retEPERM},
		},
	}, {
		name: "ARM private calls do not count as newest",
		p: specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{specs.ArchARM},
			Syscalls: []specs.LinuxSyscall{nameRule(specs.ActAllow, "read", "cacheflush")}},
		probes: []probe{
			{call{arch: specs.ArchARM, name: "cacheflush"}, retAllow},
			{call{arch: specs.ArchARM, name: "read"}, retAllow},
			{call{arch: specs.ArchARM, name: "write"}, retENOSYS},
			{call{arch: specs.ArchARM, name: "set_tls"}, retENOSYS},
		},
	}, {
		name: "an architecture without a table is accepted and left out",
		p: specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchS390, specs.ArchMIPS64N32},
			Syscalls: []specs.LinuxSyscall{nameRule(specs.ActErrno, "mkdir")}},
		probes: []probe{
			{call{name: "mkdir"}, retEPERM},
			{call{arch: specs.ArchX86, name: "mkdir"}, retKill},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			for _, pr := range tc.probes {
				if got := eval(t, &tc.p, pr.c); got != pr.want {
					t.Errorf("%+v: got %#x, want %#x", pr.c, got, pr.want)
				}
				d, _ := pr.c.data(t)
				if got := newModel(&tc.p).eval(d); got != pr.want {
					t.Errorf("model disagrees with the test on %+v: %#x", pr.c, got)
				}
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	ok := func(mod func(p *specs.LinuxSeccomp)) *specs.LinuxSeccomp {
		p := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{nameRule(specs.ActAllow, "read")}}
		mod(p)
		return p
	}
	for name, p := range map[string]*specs.LinuxSeccomp{
		"nil profile":            nil,
		"unknown default action": ok(func(p *specs.LinuxSeccomp) { p.DefaultAction = "SCMP_ACT_NOPE" }),
		"no default action":      ok(func(p *specs.LinuxSeccomp) { p.DefaultAction = "" }),
		"default errno on allow": ok(func(p *specs.LinuxSeccomp) { p.DefaultAction, p.DefaultErrnoRet = specs.ActAllow, uintp(1) }),
		"errno out of range":     ok(func(p *specs.LinuxSeccomp) { p.DefaultErrnoRet = uintp(1 << 16) }),
		"unknown rule action":    ok(func(p *specs.LinuxSeccomp) { p.Syscalls[0].Action = "SCMP_ACT_MAYBE" }),
		"errnoRet on kill":       ok(func(p *specs.LinuxSeccomp) { p.Syscalls[0].Action, p.Syscalls[0].ErrnoRet = specs.ActKill, uintp(1) }),
		"no names":               ok(func(p *specs.LinuxSeccomp) { p.Syscalls[0].Names = nil }),
		"empty name":             ok(func(p *specs.LinuxSeccomp) { p.Syscalls[0].Names = []string{"read", ""} }),
		"unknown operator":       ok(func(p *specs.LinuxSeccomp) { p.Syscalls[0].Args = []specs.LinuxSeccompArg{{Op: "SCMP_CMP_XOR"}} }),
		"argument index 6":       ok(func(p *specs.LinuxSeccomp) { p.Syscalls[0].Args = []specs.LinuxSeccompArg{arg(6, specs.OpEqualTo, 0)} }),
		"unknown architecture":   ok(func(p *specs.LinuxSeccomp) { p.Architectures = []specs.Arch{"SCMP_ARCH_VAX"} }),
		"unknown flag":           ok(func(p *specs.LinuxSeccomp) { p.Flags = []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_FAST"} }),
		"skipped rule still bad": ok(func(p *specs.LinuxSeccomp) { p.Syscalls[0].Action, p.Syscalls[0].Names = specs.ActErrno, nil }),
		"bad condition on a skip": ok(func(p *specs.LinuxSeccomp) {
			p.Syscalls[0].Action, p.Syscalls[0].Args = specs.ActErrno, []specs.LinuxSeccompArg{{Op: "x"}}
		}),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Compile(p)
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("got %v, want an invalid-argument error", err)
			}
		})
	}
	// Unknown system call names are not errors.
	p := ok(func(p *specs.LinuxSeccomp) { p.Syscalls[0].Names = []string{"no_such_call", "read"} })
	if _, err := Compile(p); err != nil {
		t.Fatalf("unknown name: %v", err)
	}
}

// interesting returns argument values around those a profile compares with.
func interesting(p *specs.LinuxSeccomp, r *rand.Rand) []uint64 {
	vals := []uint64{0, 1, 0xffffffff, 1 << 32, 1<<32 + 1, 1 << 63, ^uint64(0), r.Uint64()}
	for _, s := range p.Syscalls {
		for _, a := range s.Args {
			for _, v := range []uint64{a.Value, a.ValueTwo, a.Value | a.ValueTwo} {
				vals = append(vals, v, v-1, v+1, v^1<<32, v|1<<40, uint64(uint32(v)))
			}
		}
	}
	return vals
}

// checkAgainstModel runs the compiled filter on many inputs and compares
// each outcome with the model.
func checkAgainstModel(t testing.TB, p *specs.LinuxSeccomp, prog []unix.SockFilter, n int, seed uint64) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	vals := interesting(p, r)
	m := newModel(p)
	abis := slices.Clone(arches)
	foreign := &arch{name: "foreign", audit: unix.AUDIT_ARCH_ARMEB, nrHi: nrMax}
	abis = append(abis, foreign)
	for i := 0; i < n; i++ {
		a := abis[r.IntN(len(abis))]
		var nr uint32
		switch r.IntN(4) {
		case 0: // a call the profile names
			if len(p.Syscalls) > 0 {
				s := p.Syscalls[r.IntN(len(p.Syscalls))]
				if len(s.Names) > 0 {
					if e := lookupSyscall(s.Names[r.IntN(len(s.Names))]); e != nil && a != foreign {
						nr = uint32(e.nr[a.table])
						break
					}
				}
			}
			nr = r.Uint32N(500)
		case 1:
			nr = a.nrLo + r.Uint32N(600)
		case 2:
			nr = r.Uint32()
		case 3:
			nr = []uint32{0, x32Bit - 1, x32Bit, x32Bit + 1, 0xffffffff, 0xf0002}[r.IntN(6)]
		}
		d := seccompData{nr: nr, arch: a.audit}
		for j := range d.args {
			d.args[j] = vals[r.IntN(len(vals))]
		}
		got, err := run(prog, d, a.bigEndian)
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		if want := m.eval(d); got != want {
			t.Fatalf("arch %s nr %#x args %#x: filter says %#x, model %#x", a.name, nr, d.args, got, want)
		}
	}
}

func TestCompileMatchesModel(t *testing.T) {
	profiles := map[string]*specs.LinuxSeccomp{
		"docker": dockerProfile(t),
		"conditions everywhere": {
			DefaultAction: specs.ActKillProcess,
			Architectures: []specs.Arch{specs.ArchX86, specs.ArchX32, specs.ArchAARCH64, specs.ArchS390X, specs.ArchARM, specs.ArchMIPSEL},
			Syscalls: []specs.LinuxSyscall{
				ruleArgs(specs.ActAllow, "read", arg(0, specs.OpLessThan, 3<<32|7), arg(1, specs.OpNotEqual, 0)),
				ruleArgs(specs.ActErrno, "read", arg(0, specs.OpGreaterEqual, 1<<40)),
				ruleArgs(specs.ActTrap, "write", arg(2, specs.OpMaskedEqual, 0xf0f0f0f0f0f0f0f0, 0x1010101010101010)),
				ruleArgs(specs.ActLog, "ioctl", arg(1, specs.OpEqualTo, 0x5401), arg(1, specs.OpEqualTo, 0x5402)),
				ruleArgs(specs.ActAllow, "mmap", arg(2, specs.OpLessEqual, 7), arg(3, specs.OpGreaterThan, 1)),
				nameRule(specs.ActAllow, "exit_group", "cacheflush", "socketcall"),
				{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: uintp(38)},
				nameRule(specs.ActKillProcess, "getpid"),
			},
		},
	}
	for name, p := range profiles {
		t.Run(name, func(t *testing.T) {
			prog, err := Compile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := checkProgram(prog); err != nil {
				t.Fatal(err)
			}
			checkAgainstModel(t, p, prog, 200000, 42)
		})
	}
}

// TestCompileLongJumps builds a profile whose program needs trampolines.
func TestCompileLongJumps(t *testing.T) {
	p := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{specs.ArchX86}}
	for i, e := range sysTable {
		if i%2 == 0 && e.nr[tblX86_64] >= 0 {
			p.Syscalls = append(p.Syscalls, ruleArgs(specs.ActAllow, e.name,
				arg(uint(i%6), specs.OpLessThan, uint64(i)<<30), arg(uint((i+1)%6), specs.OpNotEqual, uint64(i))))
		}
	}
	prog, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	far := 0
	for _, in := range prog {
		if in.Code == unix.BPF_JMP|unix.BPF_JA && in.K > 255 {
			far++
		}
	}
	t.Logf("%d rules: %d instructions, %d long jumps", len(p.Syscalls), len(prog), far)
	if far == 0 {
		t.Fatal("expected long jumps")
	}
	if err := checkProgram(prog); err != nil {
		t.Fatal(err)
	}
	checkAgainstModel(t, p, prog, 100000, 7)
}

func TestCompileTooLong(t *testing.T) {
	p := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}
	for i := 0; i < 1000; i++ {
		p.Syscalls = append(p.Syscalls, ruleArgs(specs.ActAllow, "ioctl", arg(1, specs.OpEqualTo, uint64(i)<<33)))
	}
	if _, err := Compile(p); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("got %v, want a too-long error", err)
	}
}

func TestFeatureLists(t *testing.T) {
	if got := Operators(); len(got) != 7 || !slices.Contains(got, "SCMP_CMP_MASKED_EQ") {
		t.Errorf("Operators() = %v", got)
	}
	archs := Archs()
	for _, a := range []string{"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"} {
		if !slices.Contains(archs, a) {
			t.Errorf("Archs() = %v lacks %s", archs, a)
		}
	}
	if !kernelAtLeast(t, "5.19") {
		t.Skip("older kernels lack some actions and flags")
	}
	// Linux 5.19 has every action and flag.
	if got := Actions(); len(got) != len(actionNames) {
		t.Errorf("Actions() = %v", got)
	}
	if got := Flags(); len(got) != 4 {
		t.Errorf("Flags() = %v", got)
	}
}

func TestSyscallTable(t *testing.T) {
	if !slices.IsSortedFunc(sysTable[:], func(a, b sysEntry) int {
		return map[bool]int{true: -1, false: 1}[a.name < b.name]
	}) {
		t.Fatal("sysTable is not sorted")
	}
	for _, tc := range []struct {
		a    specs.Arch
		name string
		nr   uint32
	}{
		{specs.ArchX86_64, "read", 0}, {specs.ArchX86_64, "clone3", 435},
		{specs.ArchX86, "socketcall", 102}, {specs.ArchX86, "_llseek", 140},
		{specs.ArchX32, "read", x32Bit}, {specs.ArchX32, "execve", x32Bit + 520},
		{specs.ArchAARCH64, "openat", 56}, {specs.ArchARM, "cacheflush", 0xf0002},
		{specs.ArchMIPSEL, "read", 4003}, {specs.ArchMIPSEL64, "read", 5000},
	} {
		if got := nrOf(t, tc.a, tc.name); got != tc.nr {
			t.Errorf("%s %s = %d, want %d", tc.a, tc.name, got, tc.nr)
		}
	}
	for _, name := range []string{"uselib", "set_thread_area"} {
		if e := lookupSyscall(name); e.nr[tblX32] != -1 {
			t.Errorf("x32 has %s", name)
		}
	}
}
