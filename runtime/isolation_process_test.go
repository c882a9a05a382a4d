package runtime_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// capMask is the /proc/<pid>/status bitmask of the named capabilities.
func capMask(t *testing.T, names []string) uint64 {
	t.Helper()
	known := map[string]capability.Cap{}
	for _, c := range capability.ListKnown() {
		known["CAP_"+strings.ToUpper(c.String())] = c
	}
	var m uint64
	for _, n := range names {
		c, ok := known[n]
		if !ok {
			t.Fatalf("unknown capability %s", n)
		}
		m |= 1 << uint(c)
	}
	return m
}

func TestIsolationCapabilities(t *testing.T) {
	type sets struct{ bnd, eff, prm, inh, amb []string }
	for _, tc := range []struct {
		name  string
		uid   uint32
		noNNP bool // no_new_privs off
		caps  sets
	}{
		{"root default", 0, false, sets{
			bnd: []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"},
			eff: []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"},
			prm: []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"},
		}},
		{"root inheritable", 0, false, sets{
			bnd: []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SETUID"},
			eff: []string{"CAP_CHOWN"},
			prm: []string{"CAP_CHOWN", "CAP_KILL"},
			inh: []string{"CAP_KILL", "CAP_NET_RAW"},
		}},
		{"root inheritable without no_new_privs", 0, true, sets{
			bnd: []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SETUID"},
			eff: []string{"CAP_CHOWN"},
			prm: []string{"CAP_CHOWN", "CAP_KILL"},
			inh: []string{"CAP_KILL", "CAP_NET_RAW"},
		}},
		{"root none", 0, false, sets{}},
		{"user ambient", 1000, false, sets{
			bnd: []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_KILL", "CAP_NET_RAW", "CAP_SETUID"},
			eff: []string{"CAP_CHOWN", "CAP_KILL"},
			prm: []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_DAC_OVERRIDE"},
			inh: []string{"CAP_KILL", "CAP_NET_RAW", "CAP_DAC_OVERRIDE"},
			amb: []string{"CAP_NET_RAW", "CAP_DAC_OVERRIDE"},
		}},
		{"user ambient without no_new_privs", 1000, true, sets{
			bnd: []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"},
			eff: []string{"CAP_KILL"},
			prm: []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"},
			inh: []string{"CAP_KILL", "CAP_NET_RAW"},
			amb: []string{"CAP_NET_RAW"},
		}},
		{"user no ambient", 1000, false, sets{
			bnd: []string{"CAP_CHOWN", "CAP_KILL"},
			eff: []string{"CAP_CHOWN", "CAP_KILL"},
			prm: []string{"CAP_CHOWN", "CAP_KILL"},
			inh: []string{"CAP_KILL"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bnd, inh, amb := capMask(t, tc.caps.bnd), capMask(t, tc.caps.inh), capMask(t, tc.caps.amb)
			// What execve makes of the sets the runtime set: root runs
			// a file as if it had every file capability (permitted =
			// inheritable | bounding, all effective, ambient cleared),
			// but under no_new_privs gains nothing it did not have in
			// its permitted set; anyone else keeps the ambient set as
			// permitted and effective. Inheritable and bounding pass
			// unchanged.
			var prm, eff uint64
			if tc.uid == 0 {
				prm, amb = inh|bnd, 0
				if !tc.noNNP {
					prm &= capMask(t, tc.caps.prm)
				}
				eff = prm
			} else {
				prm, eff = amb, amb
			}
			want := fmt.Sprintf("CapInh:\t%016x\nCapPrm:\t%016x\nCapEff:\t%016x\nCapBnd:\t%016x\nCapAmb:\t%016x\n", inh, prm, eff, bnd, amb)
			c := isoCase{
				edit: func(s *specs.Spec) {
					s.Process.User = specs.User{UID: tc.uid, GID: tc.uid}
					s.Process.NoNewPrivileges = !tc.noNNP
					s.Process.Capabilities = &specs.LinuxCapabilities{
						Bounding: tc.caps.bnd, Effective: tc.caps.eff, Permitted: tc.caps.prm,
						Inheritable: tc.caps.inh, Ambient: tc.caps.amb,
					}
				},
				args: []string{"grep", "^Cap", "/proc/self/status"},
				want: []string{"^" + regexp.QuoteMeta(want) + "$"},
			}
			checkIso(t, c, runIso(t, c))
		})
	}

	// What the sets do: an ambient CAP_DAC_OVERRIDE lets a non-root
	// user read a root-only file, and its absence does not.
	secret := func(t *testing.T, bundle string) {
		os.WriteFile(filepath.Join(bundle, "rootfs", "root", "secret"), []byte("for root only\n"), 0o600)
	}
	dac := []string{"CAP_DAC_OVERRIDE"}
	runIsoCases(t, []isoCase{
		{
			name: "ambient DAC_OVERRIDE works",
			edit: func(s *specs.Spec) {
				s.Process.User = specs.User{UID: 1000, GID: 1000}
				s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: dac, Effective: dac, Permitted: dac, Inheritable: dac, Ambient: dac}
			},
			prep: secret,
			args: sh(`cat /root/secret`),
			want: []string{`^for root only\n$`},
		},
		{
			name: "without ambient",
			edit: func(s *specs.Spec) {
				s.Process.User = specs.User{UID: 1000, GID: 1000}
				s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: dac, Effective: dac, Permitted: dac, Inheritable: dac}
			},
			prep: secret,
			args: sh(`cat /root/secret || echo refused`),
			want: []string{`Permission denied\nrefused\n$`},
		},
		{
			name: "bounding set limits root",
			edit: func(s *specs.Spec) { s.Root.Readonly = false },
			args: sh(`chown 1000 /tmp || echo refused`),
			want: []string{`Operation not permitted\nrefused\n$`},
		},
	})
}

func TestIsolationNoNewPrivileges(t *testing.T) {
	for _, nnp := range []bool{true, false} {
		t.Run(strconv.FormatBool(nnp), func(t *testing.T) {
			want := "0"
			if nnp {
				want = "1"
			}
			c := isoCase{
				edit: func(s *specs.Spec) { s.Process.NoNewPrivileges = nnp },
				args: []string{"grep", "^NoNewPrivs", "/proc/self/status"},
				want: []string{`^NoNewPrivs:\s+` + want + `\n$`},
			}
			checkIso(t, c, runIso(t, c))
		})
	}
}

func TestIsolationUser(t *testing.T) {
	umask := uint32(0o077)
	runIsoCases(t, []isoCase{
		{
			name: "uid gid additionalGids",
			edit: func(s *specs.Spec) {
				s.Process.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{100, 2000}}
			},
			args: sh(`grep -E '^(Uid|Gid|Groups):' /proc/self/status; id`),
			want: []string{
				`(?m)^Uid:\s+1000\s+1000\s+1000\s+1000$`,
				`(?m)^Gid:\s+1000\s+1000\s+1000\s+1000$`,
				`(?m)^Groups:\s+100 2000\s*$`,
				`(?m)^uid=1000\(user\) gid=1000\(user\) groups=100\(users\),2000`,
			},
		},
		{
			name: "root has no supplementary groups",
			args: sh(`grep -E '^Groups:' /proc/self/status; id -u`),
			want: []string{`^Groups:\s*\n0\n$`},
		},
		{
			name: "umask",
			edit: func(s *specs.Spec) { s.Process.User.Umask = &umask },
			args: sh(`umask; touch /dev/shm/f; stat -c %a /dev/shm/f`),
			want: []string{`^0077\n600\n$`},
		},
		{
			name: "default umask",
			args: sh(`umask`),
			want: []string{`^0022\n$`},
		},
		{
			name: "cwd and env",
			edit: func(s *specs.Spec) {
				s.Process.Cwd = "/var"
				s.Process.Env = append(s.Process.Env, "FOO=bar baz", "EMPTY=")
			},
			args: sh(`pwd; echo "$FOO"; env | grep -c '^EMPTY=$'; echo $HOME`),
			want: []string{`^/var\nbar baz\n1\n`},
		},
		{
			name: "non-root cannot write root's dir",
			edit: func(s *specs.Spec) {
				s.Root.Readonly = false
				s.Process.User = specs.User{UID: 1000, GID: 1000}
			},
			args: sh(`touch /root/x || echo refused; touch /tmp/x && stat -c '%u:%g' /tmp/x`),
			want: []string{`Permission denied\nrefused\n1000:1000\n$`},
		},
	})
}

func TestIsolationLimits(t *testing.T) {
	// The runtime keeps its own hard limit unless asked to lower it:
	// root here may lack CAP_SYS_RESOURCE, so stay under the host's.
	var cur unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_NOFILE, &cur)
	hard := min(cur.Max, 512)
	adj := 500
	cur5 := readInt(t, "/proc/self/oom_score_adj")
	if cur5 > adj {
		adj = cur5
	}
	hostArch := uname(t)
	runIsoCases(t, []isoCase{
		{
			name: "rlimits",
			edit: func(s *specs.Spec) {
				s.Process.Rlimits = []specs.POSIXRlimit{
					{Type: "RLIMIT_NOFILE", Soft: 100, Hard: hard},
					{Type: "RLIMIT_CORE", Soft: 0, Hard: 0},
					{Type: "RLIMIT_NPROC", Soft: 77, Hard: 88},
				}
			},
			args: sh(`ulimit -n; ulimit -Hn; ulimit -c; ulimit -u; ulimit -Hu`),
			want: []string{fmt.Sprintf("^100\n%d\n0\n77\n88\n$", hard)},
		},
		{
			name: "oom_score_adj",
			edit: func(s *specs.Spec) { s.Process.OOMScoreAdj = &adj },
			args: sh(`cat /proc/self/oom_score_adj`),
			want: []string{fmt.Sprintf("^%d\n$", adj)},
		},
		{
			name: "personality LINUX32",
			edit: func(s *specs.Spec) { s.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux32} },
			args: sh(`uname -m; cat /proc/self/personality`),
			check: func(t *testing.T, res result) {
				f := strings.Fields(res.stdout)
				if len(f) != 2 || f[0] == hostArch || f[1] != "00000008" {
					t.Errorf("uname -m, personality = %q; want a 32-bit machine (host %s) and 00000008", res.stdout, hostArch)
				}
			},
		},
		{
			name: "personality LINUX",
			edit: func(s *specs.Spec) { s.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux} },
			args: sh(`uname -m`),
			want: []string{"^" + regexp.QuoteMeta(hostArch) + "\n$"},
		},
	})
}

func readInt(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func uname(t *testing.T) string {
	t.Helper()
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	return unix.ByteSliceToString(u.Machine[:])
}

// TestIsolationRlimitRaiseInUserNamespace raises a hard limit above the
// runtime's for a container in a user namespace: init there no longer has
// CAP_SYS_RESOURCE over the host's limits, so the runtime must set them
// from outside, as runc does.
func TestIsolationRlimitRaiseInUserNamespace(t *testing.T) {
	data, _ := os.ReadFile("/proc/self/status")
	m := regexp.MustCompile(`(?m)^CapEff:\s+([0-9a-f]+)$`).FindSubmatch(data)
	if m == nil {
		t.Fatal("no CapEff in /proc/self/status")
	}
	eff, _ := strconv.ParseUint(string(m[1]), 16, 64)
	if eff&(1<<unix.CAP_SYS_RESOURCE) == 0 {
		t.Skip("the test lacks CAP_SYS_RESOURCE, so cannot raise a hard limit")
	}
	var cur unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_NOFILE, &cur)
	hard := cur.Max + 16
	c := isoCase{
		edit: func(s *specs.Spec) {
			withNS(s, specs.UserNamespace, "")
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 100, Hard: hard}}
		},
		prep: func(t *testing.T, bundle string) { chownTree(t, filepath.Join(bundle, "rootfs"), 100000, 100000) },
		args: sh(`ulimit -n; ulimit -Hn`),
		want: []string{fmt.Sprintf("^100\n%d\n$", hard)},
	}
	checkIso(t, c, runIso(t, c))
}
