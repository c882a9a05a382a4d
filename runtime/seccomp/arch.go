package seccomp

//go:generate go run internal/gen/main.go

import (
	"runtime"
	"sort"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// x32Bit is __X32_SYSCALL_BIT: x32 processes enter the kernel as
// AUDIT_ARCH_X86_64 with this bit set in the system call number.
const x32Bit = 0x40000000

// An arch is one system call ABI the filter can recognise.
type arch struct {
	name  specs.Arch
	audit uint32 // seccomp_data.arch, an AUDIT_ARCH_* value
	table int    // column of sysTable

	// nrLo and nrHi bound the system call numbers of the ABI within its
	// audit arch: x86_64 and x32 share AUDIT_ARCH_X86_64 and split the
	// number space at x32Bit.
	nrLo, nrHi uint32

	// bits32 marks 32-bit ABIs. As libseccomp does, their argument
	// comparisons look at the low 32 bits only, with the value truncated.
	bits32 bool
	// bigEndian says where the low word of a 64-bit seccomp_data argument
	// lies.
	bigEndian bool
	// privateBase, when set, starts a range of architecture-private calls
	// (ARM's 0xf0000) that does not count as "newest syscall" for the
	// -ENOSYS rule.
	privateBase uint32
	// multiplex0 marks s390(x), whose kernel reports unknown "large"
	// system calls as number 0.
	multiplex0 bool
}

const nrMax = 0xffffffff

// arches are the ABIs we have system call tables for.
var arches = []*arch{
	{name: specs.ArchX86_64, audit: unix.AUDIT_ARCH_X86_64, table: tblX86_64, nrHi: x32Bit - 1},
	{name: specs.ArchX86, audit: unix.AUDIT_ARCH_I386, table: tblX86, nrHi: nrMax, bits32: true},
	{name: specs.ArchX32, audit: unix.AUDIT_ARCH_X86_64, table: tblX32, nrLo: x32Bit, nrHi: nrMax, bits32: true},
	{name: specs.ArchARM, audit: unix.AUDIT_ARCH_ARM, table: tblARM, nrHi: nrMax, bits32: true, privateBase: 0xf0000},
	{name: specs.ArchAARCH64, audit: unix.AUDIT_ARCH_AARCH64, table: tblAARCH64, nrHi: nrMax},
	{name: specs.ArchLOONGARCH64, audit: unix.AUDIT_ARCH_LOONGARCH64, table: tblLOONGARCH64, nrHi: nrMax},
	{name: specs.ArchMIPS, audit: unix.AUDIT_ARCH_MIPS, table: tblMIPS, nrHi: nrMax, bits32: true, bigEndian: true},
	{name: specs.ArchMIPSEL, audit: unix.AUDIT_ARCH_MIPSEL, table: tblMIPS, nrHi: nrMax, bits32: true},
	{name: specs.ArchMIPS64, audit: unix.AUDIT_ARCH_MIPS64, table: tblMIPS64, nrHi: nrMax, bigEndian: true},
	{name: specs.ArchMIPSEL64, audit: unix.AUDIT_ARCH_MIPSEL64, table: tblMIPS64, nrHi: nrMax},
	{name: specs.ArchPPC, audit: unix.AUDIT_ARCH_PPC, table: tblPPC, nrHi: nrMax, bits32: true, bigEndian: true},
	{name: specs.ArchPPC64, audit: unix.AUDIT_ARCH_PPC64, table: tblPPC64, nrHi: nrMax, bigEndian: true},
	{name: specs.ArchPPC64LE, audit: unix.AUDIT_ARCH_PPC64LE, table: tblPPC64, nrHi: nrMax},
	{name: specs.ArchRISCV64, audit: unix.AUDIT_ARCH_RISCV64, table: tblRISCV64, nrHi: nrMax},
	{name: specs.ArchS390X, audit: unix.AUDIT_ARCH_S390X, table: tblS390X, nrHi: nrMax, bigEndian: true, multiplex0: true},
}

// tablelessArches are valid runtime-spec architectures we have no system
// call table for. A profile may name them; they are left out of the filter,
// so their system calls meet the bad-architecture action, as do those of
// any architecture a profile does not list.
var tablelessArches = map[specs.Arch]bool{
	specs.ArchMIPS64N32: true, specs.ArchMIPSEL64N32: true, specs.ArchS390: true,
	specs.ArchPARISC: true, specs.ArchPARISC64: true, specs.ArchM68K: true,
	specs.ArchSH: true, specs.ArchSHEB: true,
}

// goArches maps GOARCH to the ABI a process built for it uses.
var goArches = map[string]specs.Arch{
	"amd64": specs.ArchX86_64, "386": specs.ArchX86, "arm": specs.ArchARM,
	"arm64": specs.ArchAARCH64, "loong64": specs.ArchLOONGARCH64,
	"mips": specs.ArchMIPS, "mipsle": specs.ArchMIPSEL,
	"mips64": specs.ArchMIPS64, "mips64le": specs.ArchMIPSEL64,
	"ppc64": specs.ArchPPC64, "ppc64le": specs.ArchPPC64LE,
	"riscv64": specs.ArchRISCV64, "s390x": specs.ArchS390X,
}

// nativeArch is the ABI of this process, or nil on a GOARCH we have no
// table for.
var nativeArch = archByName(goArches[runtime.GOARCH])

func archByName(name specs.Arch) *arch {
	for _, a := range arches {
		if a.name == name {
			return a
		}
	}
	return nil
}

// argOffsets returns the offsets in seccomp_data of the low and high 32-bit
// words of argument i.
func (a *arch) argOffsets(i uint) (lo, hi uint32) {
	off := 16 + 8*uint32(i)
	if a.bigEndian {
		return off + 4, off
	}
	return off, off + 4
}

// A sysEntry is one row of sysTable.
type sysEntry struct {
	name string
	nr   [numTables]int32
}

// lookupSyscall returns the row of sysTable for name, or nil.
func lookupSyscall(name string) *sysEntry {
	i := sort.Search(len(sysTable), func(i int) bool { return sysTable[i].name >= name })
	if i < len(sysTable) && sysTable[i].name == name {
		return &sysTable[i]
	}
	return nil
}
