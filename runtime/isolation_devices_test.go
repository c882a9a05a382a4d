package runtime_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func addCaps(s *specs.Spec, caps ...string) {
	c := s.Process.Capabilities
	c.Bounding = append(c.Bounding, caps...)
	c.Effective = append(c.Effective, caps...)
	c.Permitted = append(c.Permitted, caps...)
}

func TestIsolationDevices(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	u32 := func(v uint32) *uint32 { return &v }
	mode := func(m os.FileMode) *os.FileMode { return &m }
	// The device cgroup is what stands between CAP_MKNOD and /dev/net/tun
	// (10:200), which opens without any capability: it refuses the mknod
	// ("m") or else the open.
	tun := `mknod /dev/tunx c 10 200 && echo made; head -c1 /dev/tunx; echo rc=$?`
	cases := []isoCase{
		{
			name: "default devices",
			args: sh(`for d in null zero full random urandom tty; do stat -c '%n %F %t:%T %a %u:%g' /dev/$d; done; ` +
				`head -c 3 /dev/zero | od -An -tx1; echo x > /dev/full || echo full refused; echo x > /dev/null && echo null ok`),
			want: []string{
				`(?m)^/dev/null character special file 1:3 666 0:0$`,
				`(?m)^/dev/zero character special file 1:5 666 0:0$`,
				`(?m)^/dev/full character special file 1:7 666 0:0$`,
				`(?m)^/dev/random character special file 1:8 666 0:0$`,
				`(?m)^/dev/urandom character special file 1:9 666 0:0$`,
				`(?m)^/dev/tty character special file 5:0 666 0:0$`,
				`(?m)^\s*00 00 00$`, `No space left on device\nfull refused\nnull ok\n$`,
			},
		},
		{
			name: "dev symlinks",
			args: sh(`for l in fd stdin stdout stderr ptmx; do echo "$l -> $(readlink /dev/$l)"; done; ls /dev/pts/ptmx; grep -E ' /dev/(pts|shm|mqueue) ' /proc/mounts | cut -d' ' -f2,3`),
			want: []string{`(?m)^fd -> /proc/self/fd\nstdin -> /proc/self/fd/0\nstdout -> /proc/self/fd/1\nstderr -> /proc/self/fd/2\nptmx -> pts/ptmx\n/dev/pts/ptmx\n/dev/pts devpts\n/dev/shm tmpfs\n/dev/mqueue mqueue\n$`},
		},
		{
			name: "linux.devices",
			edit: func(s *specs.Spec) {
				s.Linux.Devices = append(s.Linux.Devices,
					specs.LinuxDevice{Path: "/dev/mynull", Type: "c", Major: 1, Minor: 3, FileMode: mode(0o600), UID: u32(1000), GID: u32(100)},
					specs.LinuxDevice{Path: "/dev/sub/myzero", Type: "c", Major: 1, Minor: 5, FileMode: mode(0o640)},
				)
			},
			args: sh(`stat -c '%n %F %t:%T %a %u:%g' /dev/mynull /dev/sub/myzero; echo x > /dev/sub/myzero && echo write ok; head -c2 /dev/sub/myzero | od -An -tx1`),
			want: []string{
				`(?m)^/dev/mynull character special file 1:3 600 1000:100$`,
				`(?m)^/dev/sub/myzero character special file 1:5 640 0:0$`,
				`(?m)^write ok\n\s*00 00$`,
			},
		},
		{
			name: "linux.devices of other types",
			edit: func(s *specs.Spec) {
				s.Linux.Devices = append(s.Linux.Devices,
					specs.LinuxDevice{Path: "/dev/myfifo", Type: "p", FileMode: mode(0o620)},
					specs.LinuxDevice{Path: "/dev/myloop", Type: "b", Major: 7, Minor: 0, FileMode: mode(0o660)},
					specs.LinuxDevice{Path: "/dev/myrandom", Type: "u", Major: 1, Minor: 9},
				)
			},
			args: sh(`stat -c '%n %F %t:%T %a' /dev/myfifo /dev/myloop /dev/myrandom; head -c1 /dev/myrandom | wc -c`),
			want: []string{
				`(?m)^/dev/myfifo fifo 0:0 620$`,
				`(?m)^/dev/myloop block special file 7:0 660$`,
				`(?m)^/dev/myrandom character special file 1:9 666$`,
				`(?m)^1$`,
			},
		},
		{
			name: "device cgroup denies",
			edit: func(s *specs.Spec) { addCaps(s, "CAP_MKNOD") },
			args: sh(tun),
			want: []string{`Operation not permitted\n(.|\n)*rc=1\n$`},
		},
		{
			// The control: allowed, the same open gets past the cgroup.
			name: "device cgroup allows",
			edit: func(s *specs.Spec) {
				addCaps(s, "CAP_MKNOD")
				s.Linux.Resources.Devices = append(s.Linux.Resources.Devices,
					specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(10), Minor: i64(200), Access: "rwm"})
			},
			args:    sh(tun),
			want:    []string{`^made\n`},
			notWant: []string{`Operation not permitted`},
		},
		{
			name: "mknod without CAP_MKNOD",
			args: sh(`mknod /dev/nullx c 1 3 || echo refused`),
			want: []string{`Operation not permitted\nrefused\n$`},
		},
	}
	runIsoCases(t, cases)
}

func TestIsolationMaskedReadonlyPaths(t *testing.T) {
	secret := func(t *testing.T, bundle string) {
		d := filepath.Join(bundle, "rootfs", "secret")
		os.Mkdir(d, 0o755)
		os.WriteFile(filepath.Join(d, "key"), []byte("hidden\n"), 0o644)
		os.WriteFile(filepath.Join(bundle, "rootfs", "secret.txt"), []byte("hidden\n"), 0o644)
		os.Mkdir(filepath.Join(bundle, "rootfs", "data"), 0o777)
	}
	cases := []isoCase{
		{
			name: "proc files masked",
			edit: func(s *specs.Spec) { s.Linux.MaskedPaths = append(s.Linux.MaskedPaths, "/proc/loadavg") },
			args: sh(`for f in /proc/kcore /proc/keys /proc/timer_list /proc/loadavg; do ` +
				`test -e $f || continue; echo "$f $(stat -c '%F %t:%T' $f) $(cat $f | wc -c)"; done`),
			want:    []string{`(?m)^/proc/loadavg character special file 1:3 0$`},
			notWant: []string{`(?m)^/proc/\S+ (regular|.* [1-9]\d*$)`},
		},
		{
			name: "proc files unmasked",
			edit: func(s *specs.Spec) { s.Linux.MaskedPaths = nil },
			args: sh(`stat -c '%F' /proc/loadavg; cat /proc/loadavg | wc -c`),
			want: []string{`^regular( empty)? file\n[1-9]\d*\n$`},
		},
		{
			name: "masked dir and file",
			edit: func(s *specs.Spec) {
				s.Linux.MaskedPaths = append(s.Linux.MaskedPaths, "/secret", "/secret.txt", "/does/not/exist")
			},
			prep: secret,
			args: sh(`ls -A /secret | wc -l; cat /secret.txt | wc -c; grep ' /secret ' /proc/mounts | cut -d' ' -f3,4; touch /secret/x || echo ro`),
			want: []string{`^0\n0\ntmpfs ro[,\s]`, `\nro\n$`},
		},
		{
			name: "readonly proc paths",
			edit: func(s *specs.Spec) { addCaps(s, "CAP_SYS_ADMIN", "CAP_NET_ADMIN") },
			args: sh(`echo 1 > /proc/sys/net/ipv4/ip_forward || echo sysctl refused; ` +
				`if test -e /proc/sysrq-trigger; then echo h > /proc/sysrq-trigger || echo sysrq refused; else echo no sysrq refused; fi; ` +
				`grep -E ' /proc/(sys|bus|fs|irq) ' /proc/mounts | cut -d' ' -f2,4 | cut -d, -f1`),
			want: []string{`^.*Read-only file system\nsysctl refused\n(.*Read-only file system\n|no )sysrq refused\n`,
				`(?m)^/proc/sys ro$`, `(?m)^/proc/bus ro$`, `(?m)^/proc/fs ro$`},
		},
		{
			// The control: without readonlyPaths the same write works in
			// the container's own network namespace.
			name: "proc sys writable without readonlyPaths",
			edit: func(s *specs.Spec) { s.Linux.ReadonlyPaths = nil; addCaps(s, "CAP_NET_ADMIN", "CAP_SYS_ADMIN") },
			args: sh(`echo 1 > /proc/sys/net/ipv4/ip_forward && cat /proc/sys/net/ipv4/ip_forward`),
			want: []string{`^1\n$`},
		},
		{
			name: "readonly dir",
			edit: func(s *specs.Spec) {
				s.Root.Readonly = false
				s.Linux.ReadonlyPaths = append(s.Linux.ReadonlyPaths, "/data")
			},
			prep: secret,
			args: sh(`touch /data/x || echo refused; touch /x && echo root writable`),
			want: []string{`Read-only file system\nrefused\nroot writable\n$`},
		},
	}
	runIsoCases(t, cases)
}

func TestIsolationSysctl(t *testing.T) {
	cases := []isoCase{
		{
			name: "net and ipc",
			edit: func(s *specs.Spec) {
				s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1", "kernel.shmmax": "123456789", "kernel.msgmax": "5432"}
			},
			args: sh(`cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax /proc/sys/kernel/msgmax`),
			want: []string{`^1\n123456789\n5432\n$`},
			check: func(t *testing.T, res result) {
				data, _ := os.ReadFile("/proc/sys/kernel/shmmax")
				if strings.TrimSpace(string(data)) == "123456789" {
					t.Errorf("the host's kernel.shmmax changed")
				}
			},
		},
		{
			name: "slashes",
			edit: func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"net/ipv4/ip_forward": "1"} },
			args: sh(`cat /proc/sys/net/ipv4/ip_forward`),
			want: []string{`^1\n$`},
		},
	}
	// Sysctls outside the container's namespaces must be refused, not
	// written to the host: each case writes the host's current value, so
	// that a runtime that gets it wrong changes nothing.
	for _, c := range []struct {
		key string
		ns  specs.LinuxNamespaceType
	}{
		{"net.ipv4.ip_forward", specs.NetworkNamespace},
		{"kernel.msgmax", specs.IPCNamespace},
		{"vm.overcommit_memory", ""},
	} {
		cur, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(c.key, ".", "/"))
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, isoCase{
			name: "refused " + c.key,
			edit: func(s *specs.Spec) {
				if c.ns != "" {
					withoutNS(s, c.ns)
				}
				s.Linux.Sysctl = map[string]string{c.key: strings.TrimSpace(string(cur))}
			},
			args: []string{"true"},
			code: 1,
		})
	}
	runIsoCases(t, cases)
}
