package runtime

import (
	"sort"
	"strings"

	"github.com/berth-dev/berth/runtime/seccomp"
	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
)

// Features reports what this runtime supports, in the shape of the
// runtime spec's features document.
func Features() *features.Features {
	t := true
	f := &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks:         []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"},
		Linux: &features.Linux{
			Cgroup:   &features.Cgroup{V1: &t, V2: &t},
			Seccomp:  &features.Seccomp{Enabled: &t, Actions: seccomp.Actions(), Operators: seccomp.Operators(), Archs: seccomp.Archs(), KnownFlags: seccomp.Flags(), SupportedFlags: seccomp.Flags()},
			Apparmor: &features.Apparmor{Enabled: new(bool)},
			Selinux:  &features.Selinux{Enabled: new(bool)},
			IntelRdt: &features.IntelRdt{Enabled: new(bool)},
		},
		Annotations: map[string]string{"io.github.berth-dev.berth.version": "1.0.0"},
	}
	for name := range mountFlags {
		f.MountOptions = append(f.MountOptions, name)
	}
	for name := range propagationFlags {
		f.MountOptions = append(f.MountOptions, name)
	}
	f.MountOptions = append(f.MountOptions, "rro")
	sort.Strings(f.MountOptions)
	for t := range nsKinds {
		f.Linux.Namespaces = append(f.Linux.Namespaces, string(t))
	}
	sort.Strings(f.Linux.Namespaces)
	for _, c := range capability.ListKnown() {
		f.Linux.Capabilities = append(f.Linux.Capabilities, "CAP_"+strings.ToUpper(c.String()))
	}
	return f
}

// DefaultSpec is the configuration `spec` writes: runc's, a busybox-style
// "sh" in a fresh set of namespaces, optionally for a rootless user.
func DefaultSpec(rootless bool, uid, gid uint32) *specs.Spec {
	caps := []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	s := &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Terminal: true,
			Args:     []string{"sh"},
			Env:      []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"},
			Cwd:      "/",
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Effective: caps, Permitted: caps,
			},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
			NoNewPrivileges: true,
		},
		Root:     &specs.Root{Path: "rootfs", Readonly: true},
		Hostname: "berth",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
		},
		Linux: &specs.Linux{
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
			},
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.MountNamespace}, {Type: specs.CgroupNamespace},
			},
			MaskedPaths: []string{"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
				"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
	if rootless {
		s.Linux.Resources = nil
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: uid, Size: 1}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: gid, Size: 1}}
		for i, m := range s.Mounts {
			if m.Destination == "/sys" {
				s.Mounts[i] = specs.Mount{Destination: "/sys", Type: "none", Source: "/sys", Options: []string{"rbind", "nosuid", "noexec", "nodev", "ro"}}
			}
		}
	}
	return s
}
