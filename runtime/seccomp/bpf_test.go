package seccomp

import (
	"encoding/binary"
	"fmt"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// This file holds the test oracles: a classic-BPF interpreter that runs a
// filter the way the kernel does, a checker for the kernel's static rules,
// and model, which says what a profile means without any BPF.

// seccompData is the kernel's struct seccomp_data.
type seccompData struct {
	nr   uint32
	arch uint32
	ip   uint64
	args [6]uint64
}

// bytes lays d out as a kernel of the given byte order would.
func (d seccompData) bytes(bigEndian bool) []byte {
	var bo binary.ByteOrder = binary.LittleEndian
	if bigEndian {
		bo = binary.BigEndian
	}
	b := make([]byte, 64)
	bo.PutUint32(b[0:], d.nr)
	bo.PutUint32(b[4:], d.arch)
	bo.PutUint64(b[8:], d.ip)
	for i, a := range d.args {
		bo.PutUint64(b[16+8*i:], a)
	}
	return b
}

// checkProgram applies the kernel's static checks (bpf_check_classic and
// seccomp_check_filter) for the instructions Compile emits.
func checkProgram(prog []unix.SockFilter) error {
	if len(prog) == 0 || len(prog) > maxInsns {
		return fmt.Errorf("program length %d", len(prog))
	}
	for i, in := range prog {
		next := i + 1
		switch in.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			if in.K%4 != 0 || in.K >= 64 {
				return fmt.Errorf("insn %d: load at %d", i, in.K)
			}
		case unix.BPF_ALU | unix.BPF_AND | unix.BPF_K, unix.BPF_RET | unix.BPF_K:
		case unix.BPF_JMP | unix.BPF_JA:
			if uint64(next)+uint64(in.K) >= uint64(len(prog)) {
				return fmt.Errorf("insn %d: ja %d out of range", i, in.K)
			}
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K,
			unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K, unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K:
			if next+int(in.Jt) >= len(prog) || next+int(in.Jf) >= len(prog) {
				return fmt.Errorf("insn %d: jump %d/%d out of range", i, in.Jt, in.Jf)
			}
		default:
			return fmt.Errorf("insn %d: unexpected opcode %#x", i, in.Code)
		}
	}
	if last := prog[len(prog)-1]; last.Code != unix.BPF_RET|unix.BPF_K {
		return fmt.Errorf("last instruction %#x is not a return", last.Code)
	}
	return nil
}

// run interprets prog on d, loading 32-bit words in the given byte order.
func run(prog []unix.SockFilter, d seccompData, bigEndian bool) (uint32, error) {
	var bo binary.ByteOrder = binary.LittleEndian
	if bigEndian {
		bo = binary.BigEndian
	}
	buf := d.bytes(bigEndian)
	var acc uint32
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		switch in.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			acc = bo.Uint32(buf[in.K:])
		case unix.BPF_ALU | unix.BPF_AND | unix.BPF_K:
			acc &= in.K
		case unix.BPF_RET | unix.BPF_K:
			return in.K, nil
		case unix.BPF_JMP | unix.BPF_JA:
			pc += int(in.K)
		default:
			var holds bool
			switch in.Code &^ (unix.BPF_JMP | unix.BPF_K) {
			case unix.BPF_JEQ:
				holds = acc == in.K
			case unix.BPF_JGT:
				holds = acc > in.K
			case unix.BPF_JGE:
				holds = acc >= in.K
			case unix.BPF_JSET:
				holds = acc&in.K != 0
			default:
				return 0, fmt.Errorf("pc %d: opcode %#x", pc, in.Code)
			}
			if holds {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		}
	}
	return 0, fmt.Errorf("fell off the end")
}

// A model says what a profile prescribes for a system call, computed
// straight from the profile without any BPF; the profile must be valid.
type model struct {
	p    *specs.LinuxSeccomp
	def  uint32
	acts []uint32      // per syscalls entry
	rows [][]*sysEntry // per syscalls entry, the names the tables know
}

func newModel(p *specs.LinuxSeccomp) *model {
	m := &model{p: p}
	m.def, _ = action(p.DefaultAction, p.DefaultErrnoRet)
	for _, s := range p.Syscalls {
		act, _ := action(s.Action, s.ErrnoRet)
		m.acts = append(m.acts, act)
		var rows []*sysEntry
		for _, name := range s.Names {
			if e := lookupSyscall(name); e != nil {
				rows = append(rows, e)
			}
		}
		m.rows = append(m.rows, rows)
	}
	return m
}

func (m *model) eval(d seccompData) uint32 {
	p := m.p
	var a *arch
	for _, x := range append([]*arch{nativeArch}, archesNamed(p.Architectures)...) {
		if x != nil && x.audit == d.arch && d.nr >= x.nrLo && d.nr <= x.nrHi {
			a = x
		}
	}
	if a == nil {
		return unix.SECCOMP_RET_KILL_THREAD
	}
	def := m.def
	var rules []rule
	var maxNr uint32
	haveMax := false
	for i, s := range p.Syscalls {
		act := m.acts[i]
		for _, e := range m.rows[i] {
			if e.nr[a.table] < 0 {
				continue
			}
			nr := uint32(e.nr[a.table])
			if a.privateBase == 0 || nr < a.privateBase {
				maxNr, haveMax = max(maxNr, nr), true
			}
			if nr != d.nr || act == def {
				continue
			}
			if sameIndexTwice(s.Args) {
				for _, c := range s.Args {
					rules = append(rules, rule{[]specs.LinuxSeccompArg{c}, act})
				}
			} else {
				rules = append(rules, rule{s.Args, act})
			}
		}
	}
	for _, r := range rules {
		if len(r.conds) == 0 {
			return r.action
		}
	}
	for _, r := range rules {
		if allHold(a, r.conds, d.args) {
			return r.action
		}
	}
	enosys := haveMax && def != enosysAction
	switch p.DefaultAction {
	case specs.ActAllow, specs.ActLog, specs.ActTrace, specs.ActNotify:
		enosys = false
	}
	if enosys && len(rules) == 0 && (d.nr > maxNr || a.multiplex0 && d.nr == 0) {
		return enosysAction
	}
	return def
}

func archesNamed(names []specs.Arch) []*arch {
	var out []*arch
	for _, n := range names {
		if a := archByName(n); a != nil {
			out = append(out, a)
		}
	}
	return out
}

func sameIndexTwice(args []specs.LinuxSeccompArg) bool {
	var seen []uint
	for _, c := range args {
		if slices.Contains(seen, c.Index) {
			return true
		}
		seen = append(seen, c.Index)
	}
	return false
}

func allHold(a *arch, conds []specs.LinuxSeccompArg, args [6]uint64) bool {
	for _, c := range conds {
		x, v, v2 := args[c.Index], c.Value, c.ValueTwo
		if a.bits32 {
			x, v, v2 = uint64(uint32(x)), uint64(uint32(v)), uint64(uint32(v2))
		}
		var ok bool
		switch c.Op {
		case specs.OpEqualTo:
			ok = x == v
		case specs.OpNotEqual:
			ok = x != v
		case specs.OpGreaterThan:
			ok = x > v
		case specs.OpGreaterEqual:
			ok = x >= v
		case specs.OpLessThan:
			ok = x < v
		case specs.OpLessEqual:
			ok = x <= v
		case specs.OpMaskedEqual:
			ok = x&v == v2
		}
		if !ok {
			return false
		}
	}
	return true
}
