package runtime_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// hostDir makes a directory holding a file "f" with content "host-data".
func hostDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("host-data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// makeShared bind-mounts dir on itself as a shared mount, so that a
// container's copy of it can be its slave whatever the host's "/" is.
func makeShared(t *testing.T, dir string) {
	t.Helper()
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	if err := unix.Mount("", dir, "", unix.MS_SHARED, ""); err != nil {
		t.Fatal(err)
	}
}

func addMount(m specs.Mount) func(*specs.Spec) {
	return func(s *specs.Spec) { s.Mounts = append(s.Mounts, m) }
}

// mountinfoLine is a shell line printing the mountinfo entry of dir with
// a "MI " prefix.
func mountinfoLine(dir string) string {
	return `awk '$5 == "` + dir + `" {print "MI " $0}' /proc/self/mountinfo; `
}

func TestIsolationMounts(t *testing.T) {
	rw, ro, rbind, shared := hostDir(t), hostDir(t), hostDir(t), hostDir(t)
	makeShared(t, shared)
	// A submount that only a recursive bind carries along.
	sub := filepath.Join(rbind, "sub")
	os.Mkdir(sub, 0o755)
	if err := unix.Mount("tmpfs", sub, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(sub, unix.MNT_DETACH) })
	os.WriteFile(filepath.Join(sub, "inner"), []byte("submount\n"), 0o644)
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, []byte("a single file\n"), 0o644)

	cases := []isoCase{
		{
			name: "bind rw",
			edit: addMount(specs.Mount{Destination: "/data", Type: "bind", Source: rw, Options: []string{"bind", "rw"}}),
			args: sh(`cat /data/f && echo written > /data/w && echo ok`),
			want: []string{`^host-data\nok\n$`},
			check: func(t *testing.T, res result) {
				if data, err := os.ReadFile(filepath.Join(rw, "w")); err != nil || string(data) != "written\n" {
					t.Errorf("host sees %q, %v; want the container's write", data, err)
				}
			},
		},
		{
			name: "bind ro",
			edit: addMount(specs.Mount{Destination: "/data", Type: "bind", Source: ro, Options: []string{"bind", "ro"}}),
			args: sh(`cat /data/f; echo x > /data/w || echo denied`),
			want: []string{`^host-data\n.*Read-only file system\ndenied\n$`},
			check: func(t *testing.T, res result) {
				if _, err := os.Stat(filepath.Join(ro, "w")); err == nil {
					t.Errorf("the container wrote through a read-only bind")
				}
			},
		},
		{
			name: "bind is not recursive",
			edit: addMount(specs.Mount{Destination: "/data", Type: "bind", Source: rbind, Options: []string{"bind"}}),
			args: sh(`cat /data/f; ls /data/sub`),
			want: []string{`^host-data\n$`},
		},
		{
			name: "rbind",
			edit: addMount(specs.Mount{Destination: "/data", Type: "bind", Source: rbind, Options: []string{"rbind"}}),
			args: sh(`cat /data/f /data/sub/inner`),
			want: []string{`^host-data\nsubmount\n$`},
		},
		{
			name: "rbind ro is read-only at the top",
			edit: addMount(specs.Mount{Destination: "/data", Type: "bind", Source: rbind, Options: []string{"rbind", "ro"}}),
			args: sh(`touch /data/x || echo denied`),
			want: []string{`denied`},
		},
		{
			name: "file",
			edit: addMount(specs.Mount{Destination: "/etc/onefile", Type: "bind", Source: file, Options: []string{"bind", "ro"}}),
			args: sh(`cat /etc/onefile; test -f /etc/onefile && echo regular`),
			want: []string{`^a single file\nregular\n$`},
		},
		{
			name: "relative source",
			edit: addMount(specs.Mount{Destination: "/rel", Type: "bind", Source: "reldata", Options: []string{"bind"}}),
			prep: func(t *testing.T, bundle string) {
				os.Mkdir(filepath.Join(bundle, "reldata"), 0o755)
				os.WriteFile(filepath.Join(bundle, "reldata", "f"), []byte("relative to the bundle\n"), 0o644)
			},
			args: sh(`cat /rel/f`),
			want: []string{`^relative to the bundle\n$`},
		},
		{
			name: "tmpfs size and mode",
			edit: addMount(specs.Mount{Destination: "/scratch", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=2m", "mode=1730"}}),
			args: sh(`stat -c '%a %F' /scratch; df -k /scratch | tail -1 | awk '{print "size " $2}'; ` + mountinfoLine("/scratch")),
			want: []string{`(?m)^1730 directory$`, `(?m)^size 2048$`, `(?m)^MI .* - tmpfs tmpfs .*size=2048k.*mode=1730`},
		},
		{
			name: "nosuid nodev noexec",
			edit: addMount(specs.Mount{Destination: "/scratch", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "noexec"}}),
			args: sh(`grep ' /scratch ' /proc/mounts; cp /bin/busybox /scratch/true && /scratch/true || echo exec denied`),
			want: []string{`(?m)^tmpfs /scratch tmpfs \S*nosuid,nodev,noexec`, `(?m)Permission denied\nexec denied$`},
		},
		{
			name:    "suid dev exec",
			edit:    addMount(specs.Mount{Destination: "/scratch", Type: "tmpfs", Source: "tmpfs", Options: []string{"noexec", "exec"}}),
			args:    sh(`grep ' /scratch ' /proc/mounts; cp /bin/busybox /scratch/true && /scratch/true && echo exec ok`),
			want:    []string{`(?m)^exec ok$`},
			notWant: []string{`nosuid|nodev|noexec`},
		},
		{
			name: "propagation rshared",
			edit: addMount(specs.Mount{Destination: "/data", Type: "bind", Source: rw, Options: []string{"rbind", "rshared"}}),
			args: sh(mountinfoLine("/data")),
			want: []string{`(?m)^MI \S+ \S+ \S+ \S+ /data \S+ .*shared:\d+`},
		},
		{
			name:    "propagation rprivate",
			edit:    addMount(specs.Mount{Destination: "/data", Type: "bind", Source: rw, Options: []string{"rbind", "rprivate"}}),
			args:    sh(mountinfoLine("/data")),
			want:    []string{`(?m)^MI \S+ \S+ \S+ \S+ /data `},
			notWant: []string{`shared:|master:`},
		},
		{
			name:    "propagation rslave",
			edit:    addMount(specs.Mount{Destination: "/data", Type: "bind", Source: shared, Options: []string{"rbind", "rshared", "rslave"}}),
			args:    sh(mountinfoLine("/data")),
			want:    []string{`(?m)^MI \S+ \S+ \S+ \S+ /data \S+ .*master:\d+`},
			notWant: []string{`shared:`},
		},
		{
			name:    "rootfs propagation rprivate",
			edit:    func(s *specs.Spec) { s.Linux.RootfsPropagation = "rprivate" },
			args:    sh(mountinfoLine("/")),
			want:    []string{`(?m)^MI \S+ \S+ \S+ \S+ / `},
			notWant: []string{`shared:|master:`},
		},
		{
			name: "rootfs propagation rslave",
			edit: func(s *specs.Spec) { s.Linux.RootfsPropagation = "rslave" },
			prep: func(t *testing.T, bundle string) { makeShared(t, bundle) },
			args: sh(mountinfoLine("/")),
			want: []string{`(?m)^MI \S+ \S+ \S+ \S+ / \S+ .*master:\d+`},
		},
		{
			name: "rootfs propagation rshared",
			edit: func(s *specs.Spec) { s.Linux.RootfsPropagation = "rshared" },
			prep: func(t *testing.T, bundle string) { makeShared(t, bundle) },
			args: sh(mountinfoLine("/")),
			want: []string{`(?m)^MI \S+ \S+ \S+ \S+ / \S+ .*shared:\d+`},
		},
		{
			name: "root readonly",
			args: sh(`touch /x || echo denied; touch /dev/shm/x && echo tmpfs writable`),
			want: []string{`Read-only file system\ndenied\ntmpfs writable\n$`},
		},
		{
			name: "root writable",
			edit: func(s *specs.Spec) { s.Root.Readonly = false },
			args: sh(`touch /x && echo written`),
			want: []string{`^written\n$`},
		},
		{
			name:  "no-pivot",
			flags: []string{"--no-pivot"},
			args:  sh(`cat /etc/passwd | head -1; test -e /work || echo no host; ls /proc/self/root/ | wc -l; touch /x || echo denied`),
			want:  []string{`^root:x:0:0:root:/root:/bin/sh\nno host\n\d+\n.*Read-only file system\ndenied\n$`},
		},
	}
	runIsoCases(t, cases)
}

// TestIsolationMountPropagatesFromHost checks that with the default rslave
// rootfs propagation a mount the host makes under a bind mount later shows
// up inside, and that nothing the container mounts reaches the host.
func TestIsolationMountPropagatesFromHost(t *testing.T) {
	dir := t.TempDir()
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	if err := unix.Mount("", dir, "", unix.MS_SHARED, ""); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(dir, "later"), 0o755)
	r := newRT(t)
	cid, _ := r.startNew(func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: dir, Options: []string{"rbind"}})
		s.Linux.RootfsPropagation = "rslave"
	}, "sh", "-c", "mount -t tmpfs tmpfs /tmp; sleep 100")
	later := filepath.Join(dir, "later")
	if err := unix.Mount("tmpfs", later, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(later, unix.MNT_DETACH) })
	os.WriteFile(filepath.Join(later, "seen"), []byte("from the host\n"), 0o644)
	res := r.run("exec", cid, "cat", "/data/later/seen")
	if res.code != 0 || res.stdout != "from the host\n" {
		t.Errorf("a host mount made after start: exit %d, %q %q; want it seen inside", res.code, res.stdout, res.stderr)
	}
	var mounts []string
	eachHostMount(t, func(mp string) { mounts = append(mounts, mp) })
	for _, mp := range mounts {
		if strings.Contains(mp, "/rootfs/tmp") {
			t.Errorf("the container's mount of /tmp reached the host: %s", mp)
		}
	}
	r.must("delete", "-f", cid)
}

func eachHostMount(t *testing.T, fn func(mountPoint string)) {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) > 4 {
			fn(f[4])
		}
	}
}
