// Package seccomp compiles an OCI runtime-spec seccomp profile to a classic
// BPF program and installs it.
//
// There is no libseccomp underneath: Compile turns the profile into BPF
// itself, with system call numbers from tables generated out of
// golang.org/x/sys (see internal/gen). It follows what runc does with
// libseccomp, so that a profile means the same under berth as under runc:
//
//   - SCMP_ACT_KILL kills the thread, as SCMP_ACT_KILL_THREAD does.
//     SCMP_ACT_ERRNO and SCMP_ACT_TRACE return errnoRet (defaultErrnoRet for
//     the default action), EPERM when unset; errnoRet on any other action
//     is an error, as the runtime spec asks.
//   - The filter checks seccomp_data.arch against every listed architecture
//     plus the native one. A system call from any other architecture, and
//     an x32 call (number with bit 30 set) when only SCMP_ARCH_X86_64 is
//     listed, meets libseccomp's default bad-architecture action: kill the
//     thread.
//   - System call names a table does not know are skipped, as runc does, so
//     one profile serves many kernels and architectures.
//   - A rule whose action equals the default action is skipped (runc does
//     this to keep libseccomp from refusing it).
//   - Conditions of one rule must all hold. If two conditions of a rule test
//     the same argument, runc adds every condition of the rule as a rule of
//     its own, so that any one of them suffices; so do we.
//   - Arguments compare as unsigned 64-bit values, high word first. On
//     32-bit ABIs (x86, x32, arm, mips, ppc) only the low 32 bits are
//     compared and the value is truncated, as libseccomp does.
//     SCMP_CMP_MASKED_EQ holds when arg & value == valueTwo.
//   - Once a system call has a rule without conditions, that first such
//     rule decides it and its conditional rules are dropped (libseccomp
//     merges rules this way). Otherwise the conditional rules are tried in
//     profile order, the first that matches decides, and the default action
//     applies when none does.
//
// # The -ENOSYS rule
//
// A profile is written against some set of system calls; calls added to the
// kernel later fall to the default action, typically EPERM. That breaks
// programs that probe a new call and fall back on ENOSYS: glibc 2.34 tries
// clone3 and falls back to clone only on ENOSYS, so under a profile that
// does not know clone3 every thread creation fails. runc therefore patches
// libseccomp's program (libcontainer/seccomp/patchbpf) so that, per
// architecture, system calls numbered above the highest one the profile
// names return -ENOSYS. We do the same while compiling: unless the default
// action lets calls through anyway (ALLOW, LOG, TRACE, and NOTIFY, where an
// agent decides) or is already ERRNO(ENOSYS), every number above the
// highest the profile names for that architecture, and not itself named,
// returns ENOSYS. On ARM, the private calls at 0xf0000 do not count as
// "highest"; on s390x, number 0 (the multiplexer through which the kernel
// reports unknown large numbers) returns ENOSYS too.
//
// # The program
//
// The filter loads seccomp_data.arch and, per architecture (native first),
// loads the system call number and walks a binary search tree over the
// number ranges that share one outcome, so a call costs about log2 of the
// number of ranges; ranges of calls allowed outright are one leaf. Leaves
// return an action, or test a call's argument conditions. Conditional
// jumps that would reach farther than 255 instructions go through an
// unconditional jump, which has a 32-bit offset. Docker's default profile
// for x86_64, x86 and x32 takes about 650 instructions of the 4,096 the
// kernel allows.
package seccomp

import (
	"fmt"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/errdefs"
)

// Compile translates p into a BPF program for the architectures it names
// (the native arch is always included).
func Compile(p *specs.LinuxSeccomp) ([]unix.SockFilter, error) {
	c, err := compile(p)
	if err != nil {
		return nil, err
	}
	return c.prog, nil
}

// Actions returns the seccomp actions this package supports and the kernel
// offers, in the spec's order.
func Actions() []string {
	var out []string
	for _, a := range actionNames {
		if actionAvailable(actionValue(a, 0)) {
			out = append(out, string(a))
		}
	}
	return out
}

// Operators returns the argument comparison operators this package
// supports.
func Operators() []string {
	out := make([]string, len(operators))
	for i, op := range operators {
		out[i] = string(op)
	}
	return out
}

// Archs returns the SCMP_ARCH_* names this package has system call tables
// for. A profile may also name other runtime-spec architectures; they are
// left out of the filter.
func Archs() []string {
	out := make([]string, len(arches))
	for i, a := range arches {
		out[i] = string(a.name)
	}
	slices.Sort(out)
	return out
}

var actionNames = []specs.LinuxSeccompAction{
	specs.ActKill, specs.ActKillProcess, specs.ActKillThread, specs.ActTrap,
	specs.ActErrno, specs.ActTrace, specs.ActAllow, specs.ActLog, specs.ActNotify,
}

var operators = []specs.LinuxSeccompOperator{
	specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo,
	specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual,
}

// actionValue returns the SECCOMP_RET_* value of a with data in its low 16
// bits, or 0xffffffff for an unknown action.
func actionValue(a specs.LinuxSeccompAction, data uint16) uint32 {
	switch a {
	case specs.ActKill, specs.ActKillThread:
		return unix.SECCOMP_RET_KILL_THREAD
	case specs.ActKillProcess:
		return unix.SECCOMP_RET_KILL_PROCESS
	case specs.ActTrap:
		return unix.SECCOMP_RET_TRAP
	case specs.ActErrno:
		return unix.SECCOMP_RET_ERRNO | uint32(data)
	case specs.ActTrace:
		return unix.SECCOMP_RET_TRACE | uint32(data)
	case specs.ActAllow:
		return unix.SECCOMP_RET_ALLOW
	case specs.ActLog:
		return unix.SECCOMP_RET_LOG
	case specs.ActNotify:
		return unix.SECCOMP_RET_USER_NOTIF
	}
	return badAction
}

const badAction = 0xffffffff

// action validates a and its errnoRet and returns its SECCOMP_RET_* value.
func action(a specs.LinuxSeccompAction, errnoRet *uint) (uint32, error) {
	if actionValue(a, 0) == badAction {
		return 0, fmt.Errorf("unknown action %q: %w", a, errdefs.ErrInvalidArgument)
	}
	data := uint(unix.EPERM)
	if errnoRet != nil {
		if a != specs.ActErrno && a != specs.ActTrace {
			return 0, fmt.Errorf("action %s takes no errnoRet: %w", a, errdefs.ErrInvalidArgument)
		}
		if *errnoRet > unix.SECCOMP_RET_DATA {
			return 0, fmt.Errorf("errnoRet %d out of range: %w", *errnoRet, errdefs.ErrInvalidArgument)
		}
		data = *errnoRet
	}
	return actionValue(a, uint16(data)), nil
}

// actionName names a SECCOMP_RET_* value for error messages.
func actionName(v uint32) string {
	for _, a := range actionNames {
		if actionValue(a, 0) == v&unix.SECCOMP_RET_ACTION_FULL {
			return string(a)
		}
	}
	return fmt.Sprintf("%#x", v)
}

// checkCondition validates one argument condition.
func checkCondition(c specs.LinuxSeccompArg) error {
	if c.Index > 5 {
		return fmt.Errorf("argument index %d out of range 0..5: %w", c.Index, errdefs.ErrInvalidArgument)
	}
	if !slices.Contains(operators, c.Op) {
		return fmt.Errorf("unknown operator %q: %w", c.Op, errdefs.ErrInvalidArgument)
	}
	return nil
}
