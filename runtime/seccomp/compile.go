package seccomp

import (
	"cmp"
	"fmt"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/errdefs"
)

// badArchAction is libseccomp's default action for a system call from an
// architecture the filter does not list: SCMP_ACT_KILL, which kills the
// thread.
const badArchAction = unix.SECCOMP_RET_KILL_THREAD

// enosysAction answers system calls newer than the profile; see the package
// documentation.
const enosysAction = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)

// knownFlags are the filter flags a profile may ask for.
var knownFlags = []specs.LinuxSeccompFlag{
	flagTSync, specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow,
	specs.LinuxSeccompFlagWaitKillableRecv,
}

// flagTSync is accepted by runc although the runtime spec does not list it.
const flagTSync specs.LinuxSeccompFlag = "SECCOMP_FILTER_FLAG_TSYNC"

// compiled is a profile turned into a filter.
type compiled struct {
	prog    []unix.SockFilter
	actions []uint32 // every action the profile uses, for Load to check
	notify  bool     // the profile uses SCMP_ACT_NOTIFY
}

// A rule is one way a profile can decide a system call: when all of its
// conditions hold, action.
type rule struct {
	conds  []specs.LinuxSeccompArg
	action uint32
}

// An entry is one validated element of a profile's syscalls.
type entry struct {
	calls []*sysEntry // the names known to the tables
	rules []rule
	skip  bool // the action is the default action
}

// callRules is what a profile says about one system call number.
type callRules struct {
	nr      uint32
	decided bool   // an unconditional rule came first and decides alone
	action  uint32 // the decided action
	rules   []rule // otherwise, the first of these that matches decides
}

// add merges r as libseccomp does: the first unconditional rule wins over
// all others.
func (c *callRules) add(r rule) {
	switch {
	case c.decided:
	case len(r.conds) == 0:
		c.decided, c.action, c.rules = true, r.action, nil
	default:
		c.rules = append(c.rules, r)
	}
}

// A segment is a range of system call numbers with one outcome; it ends
// where the next segment starts.
type segment struct {
	start uint32
	ret   uint32     // the action, when calls is nil
	calls *callRules // a single number whose rules test arguments
	arch  *arch
}

type compiler struct {
	def     uint32
	enosys  bool
	archs   []*arch
	entries []entry
	names   int // known names in entries
	asm     assembler
}

func compile(p *specs.LinuxSeccomp) (*compiled, error) {
	if p == nil {
		return nil, fmt.Errorf("compiling seccomp profile: no profile: %w", errdefs.ErrInvalidArgument)
	}
	c, out, err := parse(p)
	if err != nil {
		return nil, fmt.Errorf("compiling seccomp profile: %w", err)
	}
	c.emit()
	if out.prog, err = c.asm.assemble(); err != nil {
		return nil, err
	}
	return out, nil
}

// parse validates p.
func parse(p *specs.LinuxSeccomp) (*compiler, *compiled, error) {
	c := &compiler{}
	out := &compiled{notify: p.DefaultAction == specs.ActNotify}
	var err error
	if c.def, err = action(p.DefaultAction, p.DefaultErrnoRet); err != nil {
		return nil, nil, fmt.Errorf("default action: %w", err)
	}
	out.actions = append(out.actions, c.def)
	switch p.DefaultAction {
	case specs.ActAllow, specs.ActLog, specs.ActTrace, specs.ActNotify:
	default:
		c.enosys = c.def != enosysAction
	}
	if c.archs, err = profileArches(p.Architectures); err != nil {
		return nil, nil, err
	}
	for _, f := range p.Flags {
		if !slices.Contains(knownFlags, f) {
			return nil, nil, fmt.Errorf("unknown flag %q: %w", f, errdefs.ErrInvalidArgument)
		}
	}
	for i, s := range p.Syscalls {
		e, err := parseEntry(s, c.def)
		if err != nil {
			return nil, nil, fmt.Errorf("syscalls[%d]: %w", i, err)
		}
		c.entries = append(c.entries, e)
		c.names += len(e.calls)
		if !e.skip {
			out.actions = append(out.actions, e.rules[0].action)
		}
		out.notify = out.notify || s.Action == specs.ActNotify
	}
	return c, out, nil
}

func parseEntry(s specs.LinuxSyscall, def uint32) (entry, error) {
	e := entry{calls: make([]*sysEntry, 0, len(s.Names))}
	if len(s.Names) == 0 {
		return e, fmt.Errorf("no system call names: %w", errdefs.ErrInvalidArgument)
	}
	for _, name := range s.Names {
		if name == "" {
			return e, fmt.Errorf("empty system call name: %w", errdefs.ErrInvalidArgument)
		}
		if row := lookupSyscall(name); row != nil {
			e.calls = append(e.calls, row) // unknown names are skipped, as runc does
		}
	}
	act, err := action(s.Action, s.ErrnoRet)
	if err != nil {
		return e, err
	}
	var seen [6]bool
	split := false
	for _, a := range s.Args {
		if err := checkCondition(a); err != nil {
			return e, err
		}
		split = split || seen[a.Index]
		seen[a.Index] = true
	}
	e.skip = act == def
	switch {
	case split:
		// runc: two conditions on one argument make every condition a
		// rule of its own.
		for _, a := range s.Args {
			e.rules = append(e.rules, rule{conds: []specs.LinuxSeccompArg{a}, action: act})
		}
	default:
		e.rules = []rule{{conds: s.Args, action: act}}
	}
	return e, nil
}

// profileArches returns the ABIs to filter: the native one first, then
// those listed, without repeats.
func profileArches(names []specs.Arch) ([]*arch, error) {
	var out []*arch
	if nativeArch != nil {
		out = append(out, nativeArch)
	}
	for _, n := range names {
		a := archByName(n)
		switch {
		case a != nil:
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		case tablelessArches[n]:
		default:
			return nil, fmt.Errorf("unknown architecture %q: %w", n, errdefs.ErrInvalidArgument)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no architecture with a system call table: %w", errdefs.ErrNotImplemented)
	}
	return out, nil
}

// emit writes the program: per audit arch, a check and a search tree over
// the segments of its ABIs; then the bad-architecture action.
func (c *compiler) emit() {
	a := &c.asm
	a.load(4) // seccomp_data.arch
	var done []uint32
	for _, first := range c.archs {
		if slices.Contains(done, first.audit) {
			continue
		}
		done = append(done, first.audit)
		var group []*arch
		for _, x := range c.archs {
			if x.audit == first.audit {
				group = append(group, x)
			}
		}
		slices.SortFunc(group, func(x, y *arch) int { return cmp.Compare(x.nrLo, y.nrLo) })
		next := &label{}
		a.jump(unix.BPF_JEQ, first.audit, nil, next)
		a.load(0) // seccomp_data.nr
		c.tree(c.segments(group))
		a.bind(next)
	}
	a.ret(badArchAction)
}

// segments partitions the 32-bit number space of one audit arch.
func (c *compiler) segments(group []*arch) []segment {
	var segs []segment
	add := func(start uint32, ret uint32, calls *callRules, a *arch) {
		if n := len(segs); n > 0 && calls == nil && segs[n-1].calls == nil && segs[n-1].ret == ret {
			return
		}
		segs = append(segs, segment{start: start, ret: ret, calls: calls, arch: a})
	}
	var pos uint64 // the first number not yet covered
	for _, a := range group {
		if pos < uint64(a.nrLo) {
			add(uint32(pos), badArchAction, nil, nil)
		}
		calls, maxNr, haveMax := c.callsFor(a)
		enosys := c.enosys && haveMax
		gap := func(lo, hi uint64) {
			switch {
			case lo > hi:
			case !enosys || hi <= uint64(maxNr):
				add(uint32(lo), c.def, nil, a)
			case lo <= uint64(maxNr):
				add(uint32(lo), c.def, nil, a)
				add(maxNr+1, enosysAction, nil, a)
			default:
				add(uint32(lo), enosysAction, nil, a)
			}
		}
		if a.multiplex0 && enosys && (len(calls) == 0 || calls[0].nr != 0) {
			calls = slices.Insert(calls, 0, callRules{decided: true, action: enosysAction})
		}
		pos = uint64(a.nrLo)
		for i := range calls {
			cr := &calls[i]
			if uint64(cr.nr) > pos {
				gap(pos, uint64(cr.nr)-1)
			}
			if cr.decided {
				add(cr.nr, cr.action, nil, a)
			} else {
				add(cr.nr, c.def, cr, a)
			}
			pos = uint64(cr.nr) + 1
		}
		gap(pos, uint64(a.nrHi))
		pos = uint64(a.nrHi) + 1
	}
	if pos <= nrMax {
		add(uint32(pos), badArchAction, nil, nil)
	}
	return segs
}

// callsFor resolves the profile for one ABI: the rules per system call
// number, sorted by number, and the highest number the profile names (runc
// counts skipped rules too).
func (c *compiler) callsFor(a *arch) (calls []callRules, maxNr uint32, haveMax bool) {
	// A hit is a number in the high word and an entry index in the low
	// one, so sorting keeps the rules for one number in profile order.
	hits := make([]uint64, 0, c.names)
	for i := range c.entries {
		e := &c.entries[i]
		for _, row := range e.calls {
			if row.nr[a.table] < 0 {
				continue
			}
			nr := uint32(row.nr[a.table])
			if a.privateBase == 0 || nr < a.privateBase {
				maxNr, haveMax = max(maxNr, nr), true
			}
			if !e.skip {
				hits = append(hits, uint64(nr)<<32|uint64(i))
			}
		}
	}
	slices.Sort(hits)
	calls = make([]callRules, 0, len(hits)+1)
	for _, h := range hits {
		nr := uint32(h >> 32)
		if n := len(calls); n == 0 || calls[n-1].nr != nr {
			calls = append(calls, callRules{nr: nr})
		}
		for _, r := range c.entries[uint32(h)].rules {
			calls[len(calls)-1].add(r)
		}
	}
	return calls, maxNr, haveMax
}

// tree emits a binary search over segs on the system call number in the
// accumulator.
func (c *compiler) tree(segs []segment) {
	if len(segs) == 1 {
		c.leaf(segs[0])
		return
	}
	mid := len(segs) / 2
	right := &label{}
	c.asm.jump(unix.BPF_JGE, segs[mid].start, right, nil)
	c.tree(segs[:mid])
	c.asm.bind(right)
	c.tree(segs[mid:])
}

// leaf returns the segment's action or tests its rules in order.
func (c *compiler) leaf(s segment) {
	if s.calls == nil {
		c.asm.ret(s.ret)
		return
	}
	for _, r := range s.calls.rules {
		fail := &label{}
		for _, cond := range r.conds {
			c.condition(s.arch, cond, fail)
		}
		c.asm.ret(r.action)
		c.asm.bind(fail)
	}
	c.asm.ret(c.def)
}

// condition falls through when cond holds and jumps to fail otherwise.
func (c *compiler) condition(ar *arch, cond specs.LinuxSeccompArg, fail *label) {
	const (
		jeq = unix.BPF_JEQ
		jgt = unix.BPF_JGT
		jge = unix.BPF_JGE
	)
	a := &c.asm
	ok := &label{}
	defer a.bind(ok)
	lo, hi := ar.argOffsets(cond.Index)
	v, v2 := cond.Value, cond.ValueTwo
	vh, vl := uint32(v>>32), uint32(v)
	if ar.bits32 {
		a.load(lo)
		switch cond.Op {
		case specs.OpEqualTo:
			a.jump(jeq, vl, ok, fail)
		case specs.OpNotEqual:
			a.jump(jeq, vl, fail, ok)
		case specs.OpGreaterThan:
			a.jump(jgt, vl, ok, fail)
		case specs.OpGreaterEqual:
			a.jump(jge, vl, ok, fail)
		case specs.OpLessThan:
			a.jump(jge, vl, fail, ok)
		case specs.OpLessEqual:
			a.jump(jgt, vl, fail, ok)
		case specs.OpMaskedEqual:
			a.and(vl)
			a.jump(jeq, uint32(v2), ok, fail)
		}
		return
	}
	switch cond.Op {
	case specs.OpEqualTo:
		a.load(hi)
		a.jump(jeq, vh, nil, fail)
		a.load(lo)
		a.jump(jeq, vl, ok, fail)
	case specs.OpNotEqual:
		a.load(hi)
		a.jump(jeq, vh, nil, ok)
		a.load(lo)
		a.jump(jeq, vl, fail, ok)
	case specs.OpGreaterThan, specs.OpGreaterEqual:
		a.load(hi)
		a.jump(jgt, vh, ok, nil)
		a.jump(jeq, vh, nil, fail)
		a.load(lo)
		if cond.Op == specs.OpGreaterThan {
			a.jump(jgt, vl, ok, fail)
		} else {
			a.jump(jge, vl, ok, fail)
		}
	case specs.OpLessThan, specs.OpLessEqual:
		a.load(hi)
		a.jump(jgt, vh, fail, nil)
		a.jump(jeq, vh, nil, ok)
		a.load(lo)
		if cond.Op == specs.OpLessThan {
			a.jump(jge, vl, fail, ok)
		} else {
			a.jump(jgt, vl, fail, ok)
		}
	case specs.OpMaskedEqual:
		switch dh := uint32(v2 >> 32); {
		case vh != 0:
			a.load(hi)
			a.and(vh)
			a.jump(jeq, dh, nil, fail)
		case dh != 0:
			a.goTo(fail) // the high word of arg & value is 0
			return
		}
		a.load(lo)
		a.and(vl)
		a.jump(jeq, uint32(v2), ok, fail)
	}
}
