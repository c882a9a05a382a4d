package spec

import (
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// allowed reports whether the converted profile allows syscall name
// unconditionally, and the argument conditions of its conditional rules.
func allowed(p *specs.LinuxSeccomp, name string) (bool, [][]specs.LinuxSeccompArg) {
	var plain bool
	var conds [][]specs.LinuxSeccompArg
	for _, s := range p.Syscalls {
		if s.Action == specs.ActAllow && slices.Contains(s.Names, name) {
			if len(s.Args) == 0 {
				plain = true
			} else {
				conds = append(conds, s.Args)
			}
		}
	}
	return plain, conds
}

func TestSeccompConversion(t *testing.T) {
	h := host{arch: "amd64", kernel: [2]int{6, 1}}
	def, err := convertSeccomp(defaultProfile, DefaultCapabilities(), h)
	if err != nil {
		t.Fatal(err)
	}
	if want := []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}; !slices.Equal(def.Architectures, want) {
		t.Errorf("architectures %v, want %v", def.Architectures, want)
	}
	if def.DefaultAction != specs.ActErrno || def.DefaultErrnoRet == nil || *def.DefaultErrnoRet != 1 {
		t.Errorf("default action %v %v", def.DefaultAction, def.DefaultErrnoRet)
	}
	for _, name := range []string{"read", "execve", "chown", "setuid", "clone3"} {
		if ok, _ := allowed(def, name); !ok && name != "clone3" {
			t.Errorf("%s not allowed by default", name)
		}
	}
	for _, name := range []string{"mount", "umount2", "unshare", "bpf", "reboot", "init_module"} {
		if ok, c := allowed(def, name); ok || len(c) > 0 {
			t.Errorf("%s allowed with Docker's default capabilities", name)
		}
	}
	// clone: allowed only without namespace flags (moby's mask 0x7E020000).
	if ok, conds := allowed(def, "clone"); ok || len(conds) != 1 || conds[0][0].Op != specs.OpMaskedEqual || conds[0][0].Value != 0x7E020000 {
		t.Errorf("clone: plain %v, conditions %+v", ok, conds)
	}
	// clone3 fails with ENOSYS so that libc falls back to clone.
	var clone3 *specs.LinuxSyscall
	for i, s := range def.Syscalls {
		if slices.Contains(s.Names, "clone3") {
			clone3 = &def.Syscalls[i]
		}
	}
	if clone3 == nil || clone3.Action != specs.ActErrno || clone3.ErrnoRet == nil || *clone3.ErrnoRet != 38 {
		t.Errorf("clone3 rule %+v, want ENOSYS", clone3)
	}

	admin, err := convertSeccomp(defaultProfile, append(DefaultCapabilities(), "CAP_SYS_ADMIN"), h)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"mount", "umount2", "unshare", "setns", "clone3"} {
		if ok, _ := allowed(admin, name); !ok {
			t.Errorf("%s not allowed with CAP_SYS_ADMIN", name)
		}
	}
	if _, conds := allowed(admin, "clone"); len(conds) != 0 {
		t.Errorf("clone keeps its argument condition with CAP_SYS_ADMIN: %+v", conds)
	}
	if ok, _ := allowed(admin, "clone"); !ok {
		t.Error("clone not allowed with CAP_SYS_ADMIN")
	}

	// Per-architecture rules: arm64 gets its own arch map entry and none of
	// amd64's arch_prctl.
	arm, err := convertSeccomp(defaultProfile, DefaultCapabilities(), host{arch: "arm64", kernel: [2]int{6, 1}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(arm.Architectures, []specs.Arch{specs.ArchAARCH64, specs.ArchARM}) {
		t.Errorf("arm64 architectures %v", arm.Architectures)
	}
	if ok, _ := allowed(def, "arch_prctl"); !ok {
		t.Error("arch_prctl not allowed on amd64")
	}
	if ok, _ := allowed(arm, "arch_prctl"); ok {
		t.Error("arch_prctl allowed on arm64")
	}
}

func TestSeccompMinKernel(t *testing.T) {
	raw := []byte(`{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
		{"names":["new"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"5.8"}},
		{"names":["old"],"action":"SCMP_ACT_ALLOW","excludes":{"minKernel":"5.8"}}]}`)
	for _, tt := range []struct {
		kernel [2]int
		want   string
	}{{[2]int{5, 4}, "old"}, {[2]int{5, 8}, "new"}, {[2]int{6, 0}, "new"}} {
		p, err := convertSeccomp(raw, nil, host{arch: "amd64", kernel: tt.kernel})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Syscalls) != 1 || p.Syscalls[0].Names[0] != tt.want {
			t.Errorf("kernel %v: %+v, want only %s", tt.kernel, p.Syscalls, tt.want)
		}
	}
	if _, err := convertSeccomp([]byte(`{"architectures":["SCMP_ARCH_X86_64"],"archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}`), nil, host{}); err == nil {
		t.Error("architectures and archMap together accepted")
	}
}
