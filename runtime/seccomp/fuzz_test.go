package seccomp

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/fnv"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/errdefs"
)

// checkCompiled is what every fuzz input must satisfy: Compile returns a
// classified error or a program the kernel would take that means what the
// model says.
func checkCompiled(t *testing.T, p *specs.LinuxSeccomp, seed uint64) {
	prog, err := Compile(p)
	if err != nil {
		if !errors.Is(err, errdefs.ErrInvalidArgument) && !errors.Is(err, errdefs.ErrNotImplemented) {
			t.Fatalf("unclassified error: %v", err)
		}
		return
	}
	if err := checkProgram(prog); err != nil {
		t.Fatalf("invalid program: %v", err)
	}
	checkAgainstModel(t, p, prog, 300, seed)
}

// FuzzCompile feeds JSON profiles to Compile.
func FuzzCompile(f *testing.F) {
	docker, err := json.Marshal(dockerProfile(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(docker)
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86","SCMP_ARCH_X32"],
		"syscalls":[{"names":["mkdir","ioctl"],"action":"SCMP_ACT_ERRNO","errnoRet":5,
		"args":[{"index":1,"value":21505,"op":"SCMP_CMP_EQ"},{"index":1,"value":4294967296,"valueTwo":1,"op":"SCMP_CMP_MASKED_EQ"}]}]}`))
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_KILL_PROCESS","architectures":["SCMP_ARCH_S390X","SCMP_ARCH_ARM"],
		"syscalls":[{"names":["read","cacheflush"],"action":"SCMP_ACT_ALLOW","args":[{"index":5,"value":9,"op":"SCMP_CMP_GE"}]},
		{"names":["read"],"action":"SCMP_ACT_TRAP"}]}`))
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,"flags":["SECCOMP_FILTER_FLAG_LOG"]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var p specs.LinuxSeccomp
		if json.Unmarshal(data, &p) != nil {
			return
		}
		h := fnv.New64a()
		h.Write(data)
		checkCompiled(t, &p, h.Sum64())
	})
}

// FuzzCompileRules builds profiles from raw bytes, which reaches rule
// combinations that mutating JSON seldom finds.
func FuzzCompileRules(f *testing.F) {
	f.Add([]byte("\x01\x07\x10\x00\x02\x01\x00\x03\x05\x00\x00\x00\x01\x00\x00\x00\x00"))
	f.Add([]byte("\x04\xff\x01\x20\x03\x02\x15\x01\x06\x7e\x02\x00\x00\x00\x00\x00\x00\x80"))
	f.Fuzz(runRules)
}

// runRules decodes a profile from data and checks it.
func runRules(t *testing.T, data []byte) {
	r := byteReader(data)
	p := &specs.LinuxSeccomp{DefaultAction: actionNames[int(r.byte())%len(actionNames)]}
	if d := r.byte(); d&1 != 0 && (p.DefaultAction == specs.ActErrno || p.DefaultAction == specs.ActTrace) {
		v := uint(d >> 1)
		p.DefaultErrnoRet = &v
	}
	mask := r.uint16()
	for i, a := range arches {
		if mask>>i&1 != 0 {
			p.Architectures = append(p.Architectures, a.name)
		}
	}
	for n := int(r.byte() % 48); n > 0 && len(r) > 0; n-- {
		s := specs.LinuxSyscall{Action: actionNames[int(r.byte())%len(actionNames)]}
		for k := int(r.byte()%3) + 1; k > 0; k-- {
			s.Names = append(s.Names, sysTable[int(r.uint16())%len(sysTable)].name)
		}
		if e := r.byte(); e&1 != 0 && (s.Action == specs.ActErrno || s.Action == specs.ActTrace) {
			v := uint(e >> 1)
			s.ErrnoRet = &v
		}
		for k := int(r.byte() % 4); k > 0; k-- {
			b := r.byte()
			s.Args = append(s.Args, specs.LinuxSeccompArg{
				Index: uint(b % 6), Op: operators[int(b>>3)%len(operators)],
				Value: r.value(), ValueTwo: r.value(),
			})
		}
		p.Syscalls = append(p.Syscalls, s)
	}
	h := fnv.New64a()
	h.Write(data)
	checkCompiled(t, p, h.Sum64())
}

// byteReader hands out fuzz bytes, zeros once they run out.
type byteReader []byte

func (r *byteReader) byte() byte {
	if len(*r) == 0 {
		return 0
	}
	b := (*r)[0]
	*r = (*r)[1:]
	return b
}

func (r *byteReader) uint16() uint16 { return uint16(r.byte())<<8 | uint16(r.byte()) }

// value returns a 64-bit argument value, often a small one.
func (r *byteReader) value() uint64 {
	switch k := r.byte(); k % 4 {
	case 0:
		return uint64(k >> 2)
	case 1:
		return uint64(r.uint16()) << 32
	default:
		var b [8]byte
		for i := range b {
			b[i] = r.byte()
		}
		return binary.LittleEndian.Uint64(b[:])
	}
}
