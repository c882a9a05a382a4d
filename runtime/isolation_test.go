package runtime_test

// Isolation tests: every isolation item of the OCI runtime spec, checked
// from inside the container by what its process prints. Helpers shared by
// the isolation_*_test.go files live here, with the namespace tests.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-dev/berth/internal/testenv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// sh is the process of a container running script; its stderr goes to its
// stdout so that a test sees both.
func sh(script string) []string { return []string{"sh", "-c", "exec 2>&1; " + script} }

// isoCase is one container run and what it must print.
type isoCase struct {
	name    string
	edit    func(*specs.Spec)
	prep    func(t *testing.T, bundle string) // after the bundle is written, before run
	flags   []string                          // extra flags of `run`
	args    []string
	code    int      // expected exit status
	anyCode bool     // any exit status will do
	want    []string // regular expressions stdout must match
	notWant []string // regular expressions stdout must not match
	check   func(t *testing.T, res result)
}

// runIso runs one case in a fresh busybox bundle and state root.
func runIso(t *testing.T, tc isoCase) result {
	t.Helper()
	r := newRT(t)
	bundle := testenv.Bundle(t, tc.edit, tc.args...)
	if tc.prep != nil {
		tc.prep(t, bundle)
	}
	args := append([]string{"run"}, tc.flags...)
	return r.run(append(args, "--bundle", bundle, id(t))...)
}

// checkIso checks a result against its case.
func checkIso(t *testing.T, tc isoCase, res result) {
	t.Helper()
	if res.code != tc.code && !tc.anyCode {
		t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", res.code, tc.code, res.stdout, res.stderr)
	}
	for _, w := range tc.want {
		if !regexp.MustCompile(w).MatchString(res.stdout) {
			t.Errorf("stdout does not match %q\nstdout: %s\nstderr: %s", w, res.stdout, res.stderr)
		}
	}
	for _, w := range tc.notWant {
		if regexp.MustCompile(w).MatchString(res.stdout) {
			t.Errorf("stdout matches %q\nstdout: %s\nstderr: %s", w, res.stdout, res.stderr)
		}
	}
	if tc.check != nil {
		tc.check(t, res)
	}
}

// runIsoCases runs each case as a subtest.
func runIsoCases(t *testing.T, cases []isoCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkIso(t, tc, runIso(t, tc))
		})
	}
}

// withNS replaces the spec's namespaces of type typ by one at path (""
// for a new one).
func withNS(s *specs.Spec, typ specs.LinuxNamespaceType, path string) {
	withoutNS(s, typ)
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: typ, Path: path})
}

func withoutNS(s *specs.Spec, typ specs.LinuxNamespaceType) {
	var out []specs.LinuxNamespace
	for _, ns := range s.Linux.Namespaces {
		if ns.Type != typ {
			out = append(out, ns)
		}
	}
	s.Linux.Namespaces = out
}

// nsLink is what /proc/<pid>/ns/<name> reads as, e.g. "net:[4026531840]".
func nsLink(t *testing.T, pid, name string) string {
	t.Helper()
	l, err := os.Readlink("/proc/" + pid + "/ns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// openUp makes the path to dir traversable by every user (a mapped root
// of a user namespace is nobody to the host's 0700 temporary directories).
func openUp(t *testing.T, dir string) {
	t.Helper()
	for d := dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, fi.Mode().Perm()|0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// chownTree gives dir and everything in it to uid:gid, and makes the path
// to it traversable: the rootfs of a container whose root is mapped.
func chownTree(t *testing.T, dir string, uid, gid int) {
	t.Helper()
	openUp(t, dir)
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		t.Fatal(err)
	}
}

var procNS = map[specs.LinuxNamespaceType]string{
	specs.PIDNamespace: "pid", specs.NetworkNamespace: "net", specs.IPCNamespace: "ipc",
	specs.UTSNamespace: "uts", specs.MountNamespace: "mnt", specs.CgroupNamespace: "cgroup",
	specs.UserNamespace: "user", specs.TimeNamespace: "time",
}

// TestIsolationNamespaceInodes checks that each namespace of the spec is a
// new one, and that one left out of the spec is the host's.
func TestIsolationNamespaceInodes(t *testing.T) {
	for _, typ := range []specs.LinuxNamespaceType{
		specs.PIDNamespace, specs.NetworkNamespace, specs.IPCNamespace,
		specs.UTSNamespace, specs.MountNamespace, specs.CgroupNamespace,
	} {
		name := procNS[typ]
		host := nsLink(t, "self", name)
		t.Run(name+"/new", func(t *testing.T) {
			checkIso(t, isoCase{}, runIso(t, isoCase{
				args:  []string{"readlink", "/proc/self/ns/" + name},
				check: func(t *testing.T, res result) { notEqualNS(t, res.stdout, host) },
			}))
		})
		t.Run(name+"/host", func(t *testing.T) {
			tc := isoCase{
				edit: func(s *specs.Spec) {
					withoutNS(s, typ)
					if typ == specs.UTSNamespace {
						s.Hostname = ""
					}
					if typ == specs.MountNamespace {
						// Nothing may be made read-only in the host's
						// mount namespace; the mounts go there too.
						s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
						s.Root.Readonly = false
						s.Mounts = []specs.Mount{{Destination: "/proc", Type: "proc", Source: "proc"}}
					}
				},
				args: []string{"readlink", "/proc/self/ns/" + name},
				want: []string{"^" + regexp.QuoteMeta(host) + "\n$"},
			}
			checkIso(t, tc, runIso(t, tc))
		})
	}
}

func notEqualNS(t *testing.T, out, host string) {
	t.Helper()
	got := strings.TrimSpace(out)
	if !regexp.MustCompile(`^[a-z_]+:\[\d+\]$`).MatchString(got) || got == host {
		t.Errorf("namespace inside = %q, want a new one (host %q)", got, host)
	}
}

func TestIsolationNamespaces(t *testing.T) {
	hostUptime := func() float64 {
		data, err := os.ReadFile("/proc/uptime")
		if err != nil {
			t.Fatal(err)
		}
		f, _ := strconv.ParseFloat(strings.Fields(string(data))[0], 64)
		return f
	}
	cases := []isoCase{
		{
			name: "pid",
			args: sh(`echo pid=$$; ls /proc | grep -E '^[0-9]+$' | wc -l`),
			// sh is pid 1; only sh, ls, grep, wc and whatever sh forks.
			want:  []string{`(?m)^pid=1$`},
			check: func(t *testing.T, res result) { fewProcs(t, res.stdout) },
		},
		{
			name: "pid/host",
			edit: func(s *specs.Spec) { withoutNS(s, specs.PIDNamespace) },
			args: sh(`echo pid=$$`), notWant: []string{`(?m)^pid=1$`},
		},
		{
			name: "uts",
			edit: func(s *specs.Spec) { s.Hostname, s.Domainname = "iso-host", "iso.example" },
			args: sh(`hostname; cat /proc/sys/kernel/hostname /proc/sys/kernel/domainname; uname -n`),
			want: []string{`^iso-host\niso-host\niso\.example\niso-host\n$`},
		},
		{
			name: "net",
			args: sh(`tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '`),
			want: []string{`^lo\n$`},
		},
		{
			name: "net/host",
			edit: func(s *specs.Spec) { withoutNS(s, specs.NetworkNamespace) },
			args: sh(`tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '`),
			want: []string{`(?m)^lo$`},
			check: func(t *testing.T, res result) {
				// The host has at least one interface besides lo.
				if n := len(strings.Fields(res.stdout)); n < 2 {
					t.Errorf("container on the host network sees %d interfaces: %q", n, res.stdout)
				}
			},
		},
		{
			name: "cgroup",
			args: sh(`cat /proc/self/cgroup`),
			// Every hierarchy's path is the namespace root.
			want:    []string{`(?m)^\d+:[^:]*:/$`},
			notWant: []string{`(?m)^\d+:[^:]*:/.+$`},
		},
		{
			name: "cgroup/host",
			edit: func(s *specs.Spec) { withoutNS(s, specs.CgroupNamespace) },
			args: sh(`cat /proc/self/cgroup`),
			// Without a cgroup namespace the container's own path shows.
			want: []string{`(?m)^\d+:[^:]*:/.+$`},
		},
		{
			name: "ipc",
			edit: func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"kernel.msgmax": "4321"} },
			args: sh(`cat /proc/sys/kernel/msgmax`),
			want: []string{`^4321\n$`},
			check: func(t *testing.T, res result) {
				if data, _ := os.ReadFile("/proc/sys/kernel/msgmax"); strings.TrimSpace(string(data)) == "4321" {
					t.Errorf("the host's kernel.msgmax changed to 4321")
				}
			},
		},
	}
	if _, err := os.Stat("/proc/self/ns/time"); err == nil {
		up := hostUptime()
		cases = append(cases, isoCase{
			name: "time",
			edit: func(s *specs.Spec) {
				withNS(s, specs.TimeNamespace, "")
				s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{
					"boottime":  {Secs: 1000000},
					"monotonic": {Secs: 2000000},
				}
			},
			args: sh(`cat /proc/uptime; cat /proc/self/timens_offsets`),
			check: func(t *testing.T, res result) {
				f := strings.Fields(res.stdout)
				if len(f) < 2 {
					t.Fatalf("output %q", res.stdout)
				}
				in, _ := strconv.ParseFloat(f[0], 64)
				if in < up+1000000 || in > up+1000000+120 {
					t.Errorf("uptime inside = %v, want host's (%v) + 1000000", in, up)
				}
				if !regexp.MustCompile(`(?m)^monotonic\s+2000000\s+0$`).MatchString(res.stdout) ||
					!regexp.MustCompile(`(?m)^boottime\s+1000000\s+0$`).MatchString(res.stdout) {
					t.Errorf("timens_offsets: %q", res.stdout)
				}
			},
		})
	}
	runIsoCases(t, cases)
}

func fewProcs(t *testing.T, out string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	n, err := strconv.Atoi(lines[len(lines)-1])
	if err != nil || n > 6 {
		t.Errorf("container sees %q processes in /proc, want a handful", lines[len(lines)-1])
	}
}

// TestIsolationUserNamespace maps container root to host uid 100000 and
// checks the mapping from inside and from outside.
func TestIsolationUserNamespace(t *testing.T) {
	shared := t.TempDir()
	openUp(t, shared)
	os.Chmod(shared, 0o777)
	tc := isoCase{
		edit: func(s *specs.Spec) {
			withNS(s, specs.UserNamespace, "")
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}}
			s.Root.Readonly = false
			s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_CHOWN")
			s.Process.Capabilities.Effective = append(s.Process.Capabilities.Effective, "CAP_CHOWN")
			s.Process.Capabilities.Permitted = append(s.Process.Capabilities.Permitted, "CAP_CHOWN")
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/shared", Type: "bind", Source: shared, Options: []string{"rbind", "rw"}})
		},
		prep: func(t *testing.T, bundle string) { chownTree(t, filepath.Join(bundle, "rootfs"), 100000, 200000) },
		args: sh(`cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g; ` +
			`touch /shared/byroot && chown 1000:1000 /shared/byroot && touch /shared/mine && echo created; ` +
			`stat -c 'busybox %u %g' /bin/busybox; stat -c 'shared %u %g' /shared`),
		want: []string{
			`^\s*0\s+100000\s+65536\n\s*0\s+200000\s+65536\n0\n0\n`,
			`(?m)^created$`,
			`(?m)^busybox 0 0$`,
			`(?m)^shared 65534 65534$`, // the host's root is unmapped: the overflow ids
		},
		check: func(t *testing.T, res result) {
			for file, want := range map[string][2]uint32{"byroot": {101000, 201000}, "mine": {100000, 200000}} {
				fi, err := os.Stat(filepath.Join(shared, file))
				if err != nil {
					t.Errorf("host: %v", err)
					continue
				}
				st := fi.Sys().(*syscall.Stat_t)
				if st.Uid != want[0] || st.Gid != want[1] {
					t.Errorf("host sees %s owned by %d:%d, want %d:%d", file, st.Uid, st.Gid, want[0], want[1])
				}
			}
		},
	}
	checkIso(t, tc, runIso(t, tc))
}

// TestIsolationJoinNamespaces joins namespaces given by path: a named
// network namespace, and the user, network and UTS namespaces of a
// running process.
func TestIsolationJoinNamespaces(t *testing.T) {
	t.Run("netns", func(t *testing.T) {
		if _, err := exec.LookPath("ip"); err != nil {
			t.Skip("no ip(8)")
		}
		name := fmt.Sprintf("berth-test-%d", os.Getpid())
		if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
			t.Skipf("ip netns add: %v: %s", err, out)
		}
		t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
		path := "/var/run/netns/" + name
		for _, c := range [][]string{{"link", "set", "lo", "up"}, {"addr", "add", "10.123.45.67/32", "dev", "lo"}} {
			if out, err := exec.Command("ip", append([]string{"-n", name}, c...)...).CombinedOutput(); err != nil {
				t.Fatalf("ip %v: %v: %s", c, err, out)
			}
		}
		ino, err := exec.Command("stat", "-L", "-c", "%i", path).Output()
		if err != nil {
			t.Fatal(err)
		}
		tc := isoCase{
			edit: func(s *specs.Spec) { withNS(s, specs.NetworkNamespace, path) },
			args: sh(`readlink /proc/self/ns/net; ip -4 addr show dev lo`),
			want: []string{`^net:\[` + strings.TrimSpace(string(ino)) + `\]\n`, `inet 10\.123\.45\.67/32`},
		}
		checkIso(t, tc, runIso(t, tc))
	})

	t.Run("user+net+uts of a process", func(t *testing.T) {
		cmd := exec.Command(testenv.BusyboxPath, "sh", "-c", "hostname joined-uts && echo ready && exec sleep 1000")
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET | syscall.CLONE_NEWUTS,
			Credential:  &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true},
			UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 100000, Size: 65536}},
			GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 100000, Size: 65536}},
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Skipf("cannot start a process in new namespaces: %v", err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		buf := make([]byte, 6)
		if _, err := out.Read(buf); err != nil || string(buf) != "ready\n" {
			t.Fatalf("helper process: %q %v", buf, err)
		}
		pid := strconv.Itoa(cmd.Process.Pid)
		want := map[string]string{}
		for _, n := range []string{"user", "net", "uts"} {
			want[n] = nsLink(t, pid, n)
		}
		tc := isoCase{
			edit: func(s *specs.Spec) {
				for _, typ := range []specs.LinuxNamespaceType{specs.UserNamespace, specs.NetworkNamespace, specs.UTSNamespace} {
					withNS(s, typ, "/proc/"+pid+"/ns/"+procNS[typ])
				}
				s.Hostname = ""
				s.Root.Readonly = false
			},
			prep: func(t *testing.T, bundle string) { chownTree(t, filepath.Join(bundle, "rootfs"), 100000, 100000) },
			args: sh(`for n in user net uts pid; do readlink /proc/self/ns/$n; done; hostname; cat /proc/self/uid_map; id -u`),
			want: []string{
				"^" + regexp.QuoteMeta(want["user"]+"\n"+want["net"]+"\n"+want["uts"]+"\n"),
				`(?m)^joined-uts\n\s*0\s+100000\s+65536\n0\n$`,
			},
			check: func(t *testing.T, res result) {
				// The pid namespace is still a new one, owned by the joined user namespace.
				lines := strings.Split(res.stdout, "\n")
				if len(lines) > 3 {
					notEqualNS(t, lines[3], nsLink(t, "self", "pid"))
				}
			},
		}
		checkIso(t, tc, runIso(t, tc))
	})
}

// TestIsolationExec checks that a process exec'd into a running container
// lands in every namespace and the cgroup of its init, a user namespace
// included, with the container's mapping.
func TestIsolationExec(t *testing.T) {
	for _, userns := range []bool{false, true} {
		t.Run(fmt.Sprintf("userns=%v", userns), func(t *testing.T) {
			r := newRT(t)
			names := []string{"pid", "net", "ipc", "uts", "mnt", "cgroup"}
			bundle := testenv.Bundle(t, func(s *specs.Spec) {
				if userns {
					withNS(s, specs.UserNamespace, "")
					s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
					s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
				}
			}, "sleep", "1000")
			if userns {
				chownTree(t, filepath.Join(bundle, "rootfs"), 100000, 100000)
			}
			cid := id(t)
			r.create(bundle, cid)
			r.must("start", cid)
			if userns {
				names = append(names, "user")
			}
			pid := strconv.Itoa(r.state(cid).Pid)
			var script, want strings.Builder
			for _, n := range names {
				fmt.Fprintf(&script, "readlink /proc/self/ns/%s; ", n)
				fmt.Fprintln(&want, nsLink(t, pid, n))
			}
			script.WriteString("cat /proc/self/uid_map; id -u; cat /proc/self/cgroup")
			res := r.run("exec", cid, "sh", "-c", script.String())
			if res.code != 0 {
				t.Fatalf("exec: exit %d: %s %s", res.code, res.stdout, res.stderr)
			}
			if !strings.HasPrefix(res.stdout, want.String()) {
				t.Errorf("exec'd process namespaces:\n%s\nwant (init's):\n%s", res.stdout, want.String())
			}
			mapping := `0\s+0\s+4294967295`
			if userns {
				mapping = `0\s+100000\s+65536`
			}
			if !regexp.MustCompile(`(?m)^\s*` + mapping + `\n0\n`).MatchString(res.stdout) {
				t.Errorf("uid_map and id -u in the exec'd process:\n%s", res.stdout)
			}
			if !regexp.MustCompile(`(?m)^\d+:[^:]*:/$`).MatchString(res.stdout) || regexp.MustCompile(`(?m)^\d+:[^:]*:/.+$`).MatchString(res.stdout) {
				t.Errorf("exec'd process is not at the root of the container's cgroup namespace:\n%s", res.stdout)
			}
			r.must("delete", "-f", cid)
		})
	}
}
