package spec

import (
	"errors"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// files is a Users over fixed passwd and group text.
type files struct{ passwd, group string }

func (f files) Passwd() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(f.passwd)), nil }
func (f files) Group() (io.ReadCloser, error)  { return io.NopCloser(strings.NewReader(f.group)), nil }

var testUsers = files{
	passwd: "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n",
	group:  "root:x:0:\nusers:x:100:user\nuser:x:1000:\nwheel:x:10:root,user\n",
}

func i64(v int64) *int64 { return &v }

func TestGenerate(t *testing.T) {
	img := ocispec.ImageConfig{
		Env: []string{"PATH=/img/bin", "A=img"}, Entrypoint: []string{"/ep"}, Cmd: []string{"c1"},
		WorkingDir: "/w", Labels: map[string]string{"l": "img"}, StopSignal: "SIGQUIT",
	}
	bare := ocispec.ImageConfig{Cmd: []string{"sh"}}
	tests := []struct {
		name  string
		img   ocispec.ImageConfig
		req   Request
		check func(*specs.Spec) any // returns the field compared with want
		want  any
	}{
		{"image command", img, Request{}, func(s *specs.Spec) any { return s.Process.Args }, []string{"/ep", "c1"}},
		{"cmd override", img, Request{Cmd: []string{"x"}}, func(s *specs.Spec) any { return s.Process.Args }, []string{"/ep", "x"}},
		{"entrypoint drops image cmd", img, Request{Entrypoint: []string{"/e2"}}, func(s *specs.Spec) any { return s.Process.Args }, []string{"/e2"}},
		{"entrypoint cleared", img, Request{Entrypoint: []string{}, Cmd: []string{"ls"}}, func(s *specs.Spec) any { return s.Process.Args }, []string{"ls"}},
		{"env merged", img, Request{Env: []string{"A=req", "B=b"}, Hostname: "h", Tty: true}, func(s *specs.Spec) any { return s.Process.Env },
			[]string{"PATH=/img/bin", "HOSTNAME=h", "TERM=xterm", "A=req", "B=b", "HOME=/"}},
		{"default PATH", bare, Request{Users: testUsers}, func(s *specs.Spec) any { return s.Process.Env }, []string{DefaultPath, "HOME=/root"}},
		{"workdir image", img, Request{}, func(s *specs.Spec) any { return s.Process.Cwd }, "/w"},
		{"workdir request", img, Request{WorkingDir: "/r"}, func(s *specs.Spec) any { return s.Process.Cwd }, "/r"},
		{"workdir default", bare, Request{}, func(s *specs.Spec) any { return s.Process.Cwd }, "/"},
		{"user by name", bare, Request{User: "user", Users: testUsers}, func(s *specs.Spec) any { return s.Process.User },
			specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{100, 10}}},
		{"user name:group", bare, Request{User: "user:wheel", Users: testUsers}, func(s *specs.Spec) any { return s.Process.User }, specs.User{UID: 1000, GID: 10}},
		{"user uid only", bare, Request{User: "1000", Users: testUsers}, func(s *specs.Spec) any { return s.Process.User },
			specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{100, 10}}},
		{"user uid:gid unlisted", bare, Request{User: "42:43"}, func(s *specs.Spec) any { return s.Process.User }, specs.User{UID: 42, GID: 43}},
		{"group-add", bare, Request{User: "0:0", GroupAdd: []string{"users", "77"}, Users: testUsers}, func(s *specs.Spec) any { return s.Process.User },
			specs.User{AdditionalGids: []uint32{100, 77}}},
		{"home from passwd", bare, Request{User: "user", Users: testUsers}, func(s *specs.Spec) any { return s.Process.Env[len(s.Process.Env)-1] }, "HOME=/home/user"},
		{"hostname", bare, Request{Hostname: "h", Domainname: "d"}, func(s *specs.Spec) any { return s.Hostname + "." + s.Domainname }, "h.d"},
		{"tty", bare, Request{Tty: true}, func(s *specs.Spec) any { return s.Process.Terminal }, true},
		{"read-only", bare, Request{ReadOnly: true, Rootfs: "/r"}, func(s *specs.Spec) any { return *s.Root }, specs.Root{Path: "/r", Readonly: true}},
		{"default caps", bare, Request{}, func(s *specs.Spec) any { return s.Process.Capabilities.Effective }, DefaultCapabilities()},
		{"no inheritable", bare, Request{}, func(s *specs.Spec) any { return s.Process.Capabilities.Inheritable }, []string(nil)},
		{"cap-add/drop", bare, Request{CapAdd: []string{"sys_admin"}, CapDrop: []string{"cap_chown", "Net_Raw", "MKNOD", "FSETID", "FOWNER", "DAC_OVERRIDE", "SETGID", "SETUID", "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL"}},
			func(s *specs.Spec) any { return s.Process.Capabilities.Bounding }, []string{"CAP_AUDIT_WRITE", "CAP_SYS_ADMIN"}},
		{"cap-drop ALL", bare, Request{CapDrop: []string{"all"}, CapAdd: []string{"KILL"}}, func(s *specs.Spec) any { return s.Process.Capabilities.Permitted }, []string{"CAP_KILL"}},
		{"cap-add ALL", bare, Request{CapAdd: []string{"ALL"}, CapDrop: []string{"KILL"}}, func(s *specs.Spec) any {
			return slices.Contains(s.Process.Capabilities.Bounding, "CAP_SYS_ADMIN") && !slices.Contains(s.Process.Capabilities.Bounding, "CAP_KILL")
		}, true},
		{"nnp off by default", bare, Request{}, func(s *specs.Spec) any { return s.Process.NoNewPrivileges }, false},
		{"nnp", bare, Request{SecurityOpt: []string{"no-new-privileges"}}, func(s *specs.Spec) any { return s.Process.NoNewPrivileges }, true},
		{"nnp=true", bare, Request{SecurityOpt: []string{"no-new-privileges=true"}}, func(s *specs.Spec) any { return s.Process.NoNewPrivileges }, true},
		{"seccomp default", bare, Request{}, func(s *specs.Spec) any { return s.Linux.Seccomp.DefaultAction }, specs.ActErrno},
		{"seccomp unconfined", bare, Request{SecurityOpt: []string{"seccomp=unconfined"}}, func(s *specs.Spec) any { return s.Linux.Seccomp }, (*specs.LinuxSeccomp)(nil)},
		{"seccomp inline", bare, Request{SecurityOpt: []string{`seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[]}`}}, func(s *specs.Spec) any { return *s.Linux.Seccomp },
			specs.LinuxSeccomp{DefaultAction: specs.ActAllow}},
		{"masked", bare, Request{}, func(s *specs.Spec) any { return s.Linux.MaskedPaths }, MaskedPaths()},
		{"readonly paths", bare, Request{}, func(s *specs.Spec) any { return s.Linux.ReadonlyPaths }, ReadonlyPaths()},
		{"privileged", bare, Request{Privileged: true}, func(s *specs.Spec) any {
			return []any{s.Linux.Seccomp == nil, s.Linux.MaskedPaths, s.Linux.ReadonlyPaths, s.Mounts[3].Options[3], s.Linux.Resources.Devices,
				slices.Contains(s.Process.Capabilities.Effective, "CAP_SYS_ADMIN")}
		}, []any{true, []string(nil), []string(nil), "rw", []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}, true}},
		{"memory", bare, Request{Memory: 64 << 20}, func(s *specs.Spec) any { return *s.Linux.Resources.Memory },
			specs.LinuxMemory{Limit: i64(64 << 20), Swap: i64(128 << 20)}},
		{"memory-swap", bare, Request{Memory: 64 << 20, MemorySwap: -1}, func(s *specs.Spec) any { return *s.Linux.Resources.Memory.Swap }, int64(-1)},
		{"cpus", bare, Request{CPUs: 0.5}, func(s *specs.Spec) any { return []any{*s.Linux.Resources.CPU.Quota, *s.Linux.Resources.CPU.Period} }, []any{int64(50000), uint64(100000)}},
		{"cpu-shares", bare, Request{CPUShares: 512, CpusetCpus: "0"}, func(s *specs.Spec) any { return []any{*s.Linux.Resources.CPU.Shares, s.Linux.Resources.CPU.Cpus} }, []any{uint64(512), "0"}},
		{"pids", bare, Request{PidsLimit: 10}, func(s *specs.Spec) any { return *s.Linux.Resources.Pids.Limit }, int64(10)},
		{"pids unlimited", bare, Request{PidsLimit: -1}, func(s *specs.Spec) any { return s.Linux.Resources.Pids }, (*specs.LinuxPids)(nil)},
		{"ulimit", bare, Request{Ulimits: []Ulimit{{"nofile", 10, 20}}}, func(s *specs.Spec) any { return s.Process.Rlimits },
			[]specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 10, Hard: 20}}},
		{"no rlimits", bare, Request{}, func(s *specs.Spec) any { return s.Process.Rlimits }, []specs.POSIXRlimit(nil)},
		{"sysctl", bare, Request{Sysctls: map[string]string{"net.ipv4.ip_forward": "1"}}, func(s *specs.Spec) any { return s.Linux.Sysctl }, map[string]string{"net.ipv4.ip_forward": "1"}},
		{"devices", bare, Request{Devices: []Device{{Host: "/dev/null", Container: "/dev/n2", Access: "r"}}}, func(s *specs.Spec) any {
			r := s.Linux.Resources.Devices[len(s.Linux.Resources.Devices)-1]
			d := s.Linux.Devices[0]
			return []any{d.Path, d.Type, d.Major, d.Minor, r.Allow, *r.Major, *r.Minor, r.Access}
		}, []any{"/dev/n2", "c", int64(1), int64(3), true, int64(1), int64(3), "r"}},
		{"shm default", bare, Request{}, func(s *specs.Spec) any { return s.Mounts[6].Options[4] }, "size=67108864"},
		{"shm-size", bare, Request{ShmSize: 1 << 20}, func(s *specs.Spec) any { return s.Mounts[6].Options[4] }, "size=1048576"},
		{"oom-score-adj", bare, Request{OomScoreAdj: 500}, func(s *specs.Spec) any { return *s.Process.OOMScoreAdj }, 500},
		{"mounts", bare, Request{Mounts: []specs.Mount{{Destination: "/a/b", Type: "bind", Source: "/x"}, {Destination: "/dev/shm", Type: "bind", Source: "/s"}, {Destination: "/etc/hosts", Type: "bind", Source: "/h"}},
			Tmpfs: map[string]string{"/run": "size=1m"}}, func(s *specs.Spec) any {
			var d []string
			for _, m := range s.Mounts {
				d = append(d, m.Destination+":"+m.Type+":"+strings.Join(m.Options, ","))
			}
			return d
		}, []string{"/proc:proc:nosuid,noexec,nodev", "/dev:tmpfs:nosuid,strictatime,mode=755,size=65536k",
			"/dev/pts:devpts:nosuid,noexec,newinstance,ptmxmode=0666,mode=0620,gid=5", "/sys:sysfs:nosuid,noexec,nodev,ro",
			"/sys/fs/cgroup:cgroup:nosuid,noexec,nodev,relatime,ro", "/dev/mqueue:mqueue:nosuid,noexec,nodev",
			"/run:tmpfs:noexec,nosuid,nodev,size=1m", "/a/b:bind:", "/dev/shm:bind:", "/etc/hosts:bind:"}},
		{"stop signal and init", img, Request{Init: true, Labels: map[string]string{"l": "req", "m": "x"}}, func(s *specs.Spec) any { return s.Annotations },
			map[string]string{"l": "req", "m": "x", AnnotationStopSignal: "SIGQUIT", AnnotationInit: "true"}},
		{"namespaces", bare, Request{}, func(s *specs.Spec) any { return s.Linux.Namespaces }, []specs.LinuxNamespace{
			{Type: "mount"}, {Type: "uts"}, {Type: "pid"}, {Type: "ipc"}, {Type: "cgroup"}, {Type: "network"}}},
		{"host network", bare, Request{Network: "host"}, func(s *specs.Spec) any { return len(s.Linux.Namespaces) }, 5},
		{"netns path", bare, Request{Network: "/run/netns/x"}, func(s *specs.Spec) any { return s.Linux.Namespaces[5] }, specs.LinuxNamespace{Type: "network", Path: "/run/netns/x"}},
		{"cgroups path", bare, Request{CgroupsPath: "/berth/x"}, func(s *specs.Spec) any { return s.Linux.CgroupsPath }, "/berth/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Generate(tt.img, tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if got := tt.check(s); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestGenerateInvalid(t *testing.T) {
	bare := ocispec.ImageConfig{Cmd: []string{"sh"}}
	tests := []struct {
		req  Request
		msg  string
		kind error
	}{
		{Request{User: "nobody", Users: testUsers}, "unable to find user nobody: no matching entries in passwd file", errdefs.ErrInvalidArgument},
		{Request{User: "user:nogroup", Users: testUsers}, "unable to find group nogroup: no matching entries in group file", errdefs.ErrInvalidArgument},
		{Request{CapAdd: []string{"FOO"}}, `unknown capability: "CAP_FOO"`, errdefs.ErrInvalidArgument},
		{Request{CPUs: 100000}, "Range of CPUs is from 0.01 to", errdefs.ErrInvalidArgument},
		{Request{CPUs: -1}, "Range of CPUs is from 0.01 to", errdefs.ErrInvalidArgument},
		{Request{Memory: 1}, "Minimum memory limit allowed is 6MB", errdefs.ErrInvalidArgument},
		{Request{MemorySwap: 10 << 20}, "You should always set the Memory limit when using Memoryswap limit, see usage", errdefs.ErrInvalidArgument},
		{Request{Memory: 64 << 20, MemorySwap: 10 << 20}, "Minimum memoryswap limit should be larger than memory limit, see usage", errdefs.ErrInvalidArgument},
		{Request{SecurityOpt: []string{"foo"}}, `invalid --security-opt 1: "foo"`, errdefs.ErrInvalidArgument},
		{Request{SecurityOpt: []string{"no-new-privileges=maybe"}}, `invalid --security-opt 2: "no-new-privileges=maybe"`, errdefs.ErrInvalidArgument},
		{Request{SecurityOpt: []string{"seccomp=/nonexistent"}}, "opening seccomp profile (/nonexistent) failed", errdefs.ErrInvalidArgument},
		{Request{SecurityOpt: []string{"seccomp={bad"}}, "decoding seccomp profile failed", errdefs.ErrInvalidArgument},
		{Request{WorkingDir: "rel"}, "the working directory 'rel' is invalid, it needs to be an absolute path", errdefs.ErrInvalidArgument},
		{Request{Entrypoint: []string{}}, "no command specified", errdefs.ErrInvalidArgument},
		{Request{OomScoreAdj: 1001}, "Invalid value 1001, range for oom score adj is [-1000, 1000]", errdefs.ErrInvalidArgument},
		{Request{Ulimits: []Ulimit{{"bogus", 1, 1}}}, "invalid ulimit type: bogus", errdefs.ErrInvalidArgument},
		{Request{Ulimits: []Ulimit{{"nofile", 2, 1}}}, "ulimit soft limit must be less than or equal to hard limit: 2 > 1", errdefs.ErrInvalidArgument},
		{Request{Sysctls: map[string]string{"kernel.pid_max": "1"}}, "sysctl 'kernel.pid_max' is not whitelisted", errdefs.ErrInvalidArgument},
		{Request{Network: "host", Sysctls: map[string]string{"net.core.somaxconn": "1"}}, `sysctl "net.core.somaxconn" not allowed in host network namespace`, errdefs.ErrInvalidArgument},
		{Request{Devices: []Device{{Host: "/dev/nope"}}}, `error gathering device information while adding custom device "/dev/nope": no such file or directory`, errdefs.ErrInvalidArgument},
		{Request{CpusetCpus: "0-x"}, "Invalid value 0-x for cpuset cpus", errdefs.ErrInvalidArgument},
		{Request{ShmSize: -1}, "SHM size can not be less than 0", errdefs.ErrInvalidArgument},
		{Request{Mounts: []specs.Mount{{Destination: "/a"}, {Destination: "/a/"}}}, "Duplicate mount point: /a", errdefs.ErrInvalidArgument},
		{Request{Network: "bridge"}, "network bridge not found", errdefs.ErrNotFound},
	}
	for _, tt := range tests {
		_, err := Generate(bare, tt.req)
		if err == nil || !strings.HasPrefix(err.Error(), tt.msg) || !errors.Is(err, tt.kind) {
			t.Errorf("%+v: got %v, want %q (%v)", tt.req, err, tt.msg, tt.kind)
		}
	}
}

func TestCPUPeriodQuotaReservation(t *testing.T) {
	s, err := Generate(ocispec.ImageConfig{Cmd: []string{"true"}}, Request{CPUPeriod: 50000, CPUQuota: 25000, MemoryReservation: 32 << 20})
	if err != nil {
		t.Fatal(err)
	}
	c, m := s.Linux.Resources.CPU, s.Linux.Resources.Memory
	if c == nil || *c.Period != 50000 || *c.Quota != 25000 || m == nil || *m.Reservation != 32<<20 || m.Limit != nil {
		t.Fatalf("resources: %+v %+v", c, m)
	}
	for _, req := range []Request{
		{CPUs: 1, CPUPeriod: 50000},
		{CPUPeriod: 10},
		{CPUQuota: 10},
		{MemoryReservation: 1 << 20},
		{Memory: 16 << 20, MemoryReservation: 32 << 20},
	} {
		if _, err := Generate(ocispec.ImageConfig{Cmd: []string{"true"}}, req); err == nil {
			t.Errorf("%+v: no error", req)
		}
	}
}
