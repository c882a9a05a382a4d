package seccomp

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/errdefs"
)

// The assembler builds a classic BPF program whose jumps name labels; it
// resolves them into offsets at the end. A conditional jump reaches at most
// 255 instructions ahead, so a jump that ends up farther goes through a
// trampoline: an unconditional BPF_JA (32-bit offset) placed right after
// it. Every jump in a seccomp filter points forward, so inserting
// trampolines only ever lengthens other jumps and the fix-up loop ends.

// maxInsns is BPF_MAXINSNS, the kernel's limit on a filter's length.
const maxInsns = unix.BPF_MAXINSNS

// A label names the position of an instruction not yet emitted.
type label struct{ target *insn }

type insn struct {
	code   uint16
	k      uint32
	jt, jf *label // conditional jumps; BPF_JA uses jt; nil means the next instruction
	pos    int
}

func (in *insn) conditional() bool {
	return in.code&0x07 == unix.BPF_JMP && in.code&0xf0 != unix.BPF_JA
}

type assembler struct {
	prog    []*insn
	pending []*label // labels bound to the next instruction emitted
}

func (a *assembler) emit(in *insn) {
	for _, l := range a.pending {
		l.target = in
	}
	a.pending = a.pending[:0]
	a.prog = append(a.prog, in)
}

// bind makes l name the next instruction emitted.
func (a *assembler) bind(l *label) { a.pending = append(a.pending, l) }

// load loads the 32-bit word at off in seccomp_data into the accumulator.
func (a *assembler) load(off uint32) {
	a.emit(&insn{code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, k: off})
}

// and masks the accumulator with k.
func (a *assembler) and(k uint32) {
	a.emit(&insn{code: unix.BPF_ALU | unix.BPF_AND | unix.BPF_K, k: k})
}

// jump compares the accumulator with k (op is BPF_JEQ, BPF_JGT, BPF_JGE or
// BPF_JSET) and goes to jt if it holds, to jf if not; nil means next.
func (a *assembler) jump(op uint16, k uint32, jt, jf *label) {
	a.emit(&insn{code: unix.BPF_JMP | op | unix.BPF_K, k: k, jt: jt, jf: jf})
}

// goTo jumps unconditionally to l.
func (a *assembler) goTo(l *label) {
	a.emit(&insn{code: unix.BPF_JMP | unix.BPF_JA, jt: l})
}

// ret ends the program with the seccomp action k.
func (a *assembler) ret(k uint32) {
	a.emit(&insn{code: unix.BPF_RET | unix.BPF_K, k: k})
}

// assemble resolves labels and returns the program.
func (a *assembler) assemble() ([]unix.SockFilter, error) {
	if len(a.pending) > 0 {
		return nil, fmt.Errorf("assembling seccomp filter: label past the last instruction")
	}
	prog := a.prog
	// Make fall-through explicit so a trampoline cannot be mistaken for it.
	for i, in := range prog {
		if !in.conditional() {
			continue
		}
		if in.jt == nil || in.jf == nil {
			if i+1 == len(prog) {
				return nil, fmt.Errorf("assembling seccomp filter: jump past the last instruction")
			}
			if in.jt == nil {
				in.jt = &label{prog[i+1]}
			}
			if in.jf == nil {
				in.jf = &label{prog[i+1]}
			}
		}
	}
	for {
		for i, in := range prog {
			in.pos = i
		}
		far := func(in *insn, l *label) bool { return l.target.pos-in.pos-1 > 255 }
		n := 0
		for _, in := range prog {
			if in.conditional() && (far(in, in.jt) || far(in, in.jf)) {
				n++
			}
		}
		if n == 0 {
			break
		}
		if len(prog) > 4*maxInsns {
			return nil, fmt.Errorf("assembling seccomp filter: %d instructions: %w", len(prog), errdefs.ErrInvalidArgument)
		}
		out := make([]*insn, 0, len(prog)+2*n)
		for _, in := range prog {
			out = append(out, in)
			if !in.conditional() {
				continue
			}
			for _, l := range []**label{&in.jt, &in.jf} {
				if far(in, *l) {
					t := &insn{code: unix.BPF_JMP | unix.BPF_JA, jt: *l}
					*l = &label{t}
					out = append(out, t)
				}
			}
		}
		prog = out
	}
	if len(prog) > maxInsns {
		return nil, fmt.Errorf("compiling seccomp profile: filter has %d instructions, the kernel takes at most %d: %w",
			len(prog), maxInsns, errdefs.ErrInvalidArgument)
	}
	filter := make([]unix.SockFilter, len(prog))
	for i, in := range prog {
		f := unix.SockFilter{Code: in.code, K: in.k}
		switch {
		case in.conditional():
			f.Jt = uint8(in.jt.target.pos - i - 1)
			f.Jf = uint8(in.jf.target.pos - i - 1)
		case in.code == unix.BPF_JMP|unix.BPF_JA:
			f.K = uint32(in.jt.target.pos - i - 1)
		}
		filter[i] = f
	}
	return filter, nil
}
