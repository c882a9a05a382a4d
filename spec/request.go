// Package spec builds the OCI runtime configuration of a container from its
// image and the user's request, with Docker's defaults.
//
// Generate is a function of its inputs: an image's config, a Request (the
// flags of `berth run`, already parsed) and, through Request.Users, the
// rootfs's /etc/passwd and /etc/group. It reads the host only where Docker
// does: the kernel version (for the seccomp profile), the CPU count (for
// --cpus) and /dev (for --device and --privileged).
package spec

import (
	"io"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Request is what the user asked of one container: the flags of `berth run`
// and `berth create`, parsed, with volumes already resolved into Mounts.
// The zero value asks for Docker's defaults.
type Request struct {
	// Rootfs is the path of the container's root filesystem (root.path).
	Rootfs string
	// CgroupsPath is linux.cgroupsPath.
	CgroupsPath string

	// Entrypoint replaces the image's entrypoint when it is not nil; an
	// empty non-nil slice is `--entrypoint ""`, which clears it. As in
	// Docker, a given entrypoint also drops the image's Cmd.
	Entrypoint []string
	// Cmd replaces the image's Cmd when it is not empty.
	Cmd []string
	// Env holds KEY=VALUE entries, merged over the image's.
	Env []string
	// User is "uid", "uid:gid", "name" or "name:group"; empty takes the
	// image's, and root when the image has none.
	User string
	// Users reads the rootfs's account files to resolve User and GroupAdd.
	// It may be nil when neither names a user or group.
	Users Users
	// GroupAdd lists supplementary groups, by name or number.
	GroupAdd []string
	// WorkingDir replaces the image's working directory; "/" when neither
	// has one.
	WorkingDir string

	Hostname   string
	Domainname string
	Tty        bool
	// OpenStdin is -i. It changes nothing in the spec: the shim holds stdin.
	OpenStdin bool
	// ReadOnly makes the root filesystem read-only.
	ReadOnly   bool
	Privileged bool
	// CapAdd and CapDrop name capabilities with or without "CAP_", in any
	// case, or "ALL".
	CapAdd, CapDrop []string
	// SecurityOpt holds --security-opt values: "seccomp=PATH",
	// "seccomp=unconfined", "seccomp=<profile JSON>" (what the Docker CLI
	// sends), "no-new-privileges[=BOOL]", "apparmor=unconfined" and
	// "label=disable" (accepted: berth has neither LSM).
	SecurityOpt []string

	// Memory is the limit in bytes; 0 is none.
	Memory int64
	// MemorySwap is memory plus swap in bytes; -1 is unlimited, and 0 with
	// Memory set means twice Memory, as in Docker.
	MemorySwap int64
	// MemoryReservation is the soft limit in bytes; 0 is none.
	MemoryReservation int64
	// CPUs is --cpus, turned into a CFS quota over a 100ms period.
	CPUs float64
	// CPUPeriod and CPUQuota are --cpu-period and --cpu-quota, in µs;
	// 0 leaves each unset. They conflict with CPUs.
	CPUPeriod, CPUQuota int64
	CPUShares           int64
	CpusetCpus          string
	// PidsLimit limits the number of tasks; 0 and -1 are unlimited.
	PidsLimit int64
	Ulimits   []Ulimit
	Sysctls   map[string]string
	Devices   []Device
	// ShmSize is the size of /dev/shm in bytes; 0 means 64 MiB.
	ShmSize     int64
	OomScoreAdj int

	// Mounts are appended after the default mounts; one whose destination
	// is a default mount's (say /dev/shm) replaces it. The engine puts
	// /etc/hosts, /etc/hostname and /etc/resolv.conf here.
	Mounts []specs.Mount
	// Tmpfs maps a container path to tmpfs options ("size=64m,mode=1777").
	Tmpfs map[string]string

	// StopSignal replaces the image's; recorded as an annotation.
	StopSignal string
	// Init asks for an init process. Generate records it (annotation
	// AnnotationInit); the engine mounts berth as /sbin/docker-init and
	// puts it in front of the command.
	Init bool
	// Labels are merged over the image's and become annotations.
	Labels map[string]string
	// Network is "" or "none" for a new network namespace, "host" for the
	// host's, or the path of a namespace to join.
	Network string
}

// Ulimit is one --ulimit: an RLIMIT_ name in lower case without the prefix
// ("nofile") and its limits.
type Ulimit struct {
	Name       string
	Soft, Hard int64
}

// Device is one --device: a host device node (or a directory of them) made
// available at Container (Host's path when empty) with cgroup access
// Access ("rwm" when empty).
type Device struct {
	Host, Container, Access string
}

// Users gives the account files of a container's root filesystem.
type Users interface {
	// Passwd opens the rootfs's /etc/passwd.
	Passwd() (io.ReadCloser, error)
	// Group opens the rootfs's /etc/group.
	Group() (io.ReadCloser, error)
}

// RootfsUsers reads the account files of the root filesystem at dir,
// without following links out of it.
type RootfsUsers string

// Passwd opens dir/etc/passwd.
func (r RootfsUsers) Passwd() (io.ReadCloser, error) {
	return os.OpenInRoot(string(r), "etc/passwd")
}

// Group opens dir/etc/group.
func (r RootfsUsers) Group() (io.ReadCloser, error) {
	return os.OpenInRoot(string(r), "etc/group")
}

var _ Users = RootfsUsers("")

// Annotations Generate writes besides the labels.
const (
	// AnnotationStopSignal holds the signal that stops the container.
	AnnotationStopSignal = "org.opencontainers.image.stopSignal"
	// AnnotationInit is "true" when the request asked for --init.
	AnnotationInit = "io.github.berth-dev.berth.init"
)
