package spec

import (
	"fmt"
	"maps"
	"os"
	"path"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultPath is the PATH a container gets when neither its image nor the
// request sets one.
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// defaultShmSize is Docker's /dev/shm size, 64 MiB.
const defaultShmSize = 64 << 20

// cfsPeriod is the CFS period --cpus is measured against, 100ms in µs.
const cfsPeriod = 100000

// MaskedPaths are the paths Docker hides from unprivileged containers.
func MaskedPaths() []string {
	return []string{
		"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
		"/sys/firmware", "/sys/devices/virtual/powercap",
	}
}

// ReadonlyPaths are the paths Docker makes read-only in unprivileged
// containers.
func ReadonlyPaths() []string {
	return []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
}

// defaultMounts are Docker's mounts, with /dev/shm of the given size.
func defaultMounts(shmSize int64, privileged bool) []specs.Mount {
	sys := "ro"
	if privileged {
		sys = "rw"
	}
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", sys}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", sys}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=" + strconv.FormatInt(shmSize, 10)}},
	}
}

// defaultDeviceRules deny every device but the ones a container needs:
// Docker's list, plus /dev/full, /dev/ptmx and /dev/pts/* (which runc adds
// on its own) and the tun device.
func defaultDeviceRules() []specs.LinuxDeviceCgroup {
	c := func(major, minor int64) specs.LinuxDeviceCgroup {
		r := specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: &major, Access: "rwm"}
		if minor >= 0 {
			r.Minor = &minor
		}
		return r
	}
	return []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		c(1, 5), c(1, 3), c(1, 9), c(1, 8), c(1, 7), c(5, 0), c(5, 1), c(5, 2), c(136, -1), c(10, 200),
	}
}

// Generate builds the OCI runtime spec of a container of an image with
// config img, as the user asked in req, with Docker's defaults for all the
// user did not ask. Invalid requests fail with errdefs.ErrInvalidArgument
// and Docker's message.
func Generate(img ocispec.ImageConfig, req Request) (*specs.Spec, error) {
	sec, err := parseSecurityOpt(req.SecurityOpt)
	if err != nil {
		return nil, err
	}
	if req.ShmSize < 0 {
		return nil, invalid("SHM size can not be less than 0")
	}
	shm := req.ShmSize
	if shm == 0 {
		shm = defaultShmSize
	}
	proc, err := process(img, req)
	if err != nil {
		return nil, err
	}
	s := &specs.Spec{
		Version:     specs.Version,
		Process:     proc,
		Root:        &specs.Root{Path: req.Rootfs, Readonly: req.ReadOnly},
		Hostname:    req.Hostname,
		Domainname:  req.Domainname,
		Annotations: annotations(img, req),
		Linux: &specs.Linux{
			CgroupsPath: req.CgroupsPath,
			Resources:   &specs.LinuxResources{Devices: defaultDeviceRules()},
		},
	}
	if proc.Capabilities.Bounding, err = capabilities(req.CapAdd, req.CapDrop, req.Privileged); err != nil {
		return nil, err
	}
	caps := proc.Capabilities.Bounding
	proc.Capabilities.Effective, proc.Capabilities.Permitted = caps, caps
	proc.NoNewPrivileges = sec.noNewPrivileges
	if !req.Privileged {
		s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = MaskedPaths(), ReadonlyPaths()
		if !sec.unconfined {
			raw := sec.profile
			if raw == nil {
				raw = defaultProfile
			}
			if s.Linux.Seccomp, err = convertSeccomp(raw, caps, thisHost()); err != nil {
				return nil, err
			}
		}
	}
	if s.Mounts, err = mounts(req, shm); err != nil {
		return nil, err
	}
	if s.Linux.Namespaces, err = namespaces(req.Network); err != nil {
		return nil, err
	}
	if err := resources(s.Linux.Resources, req); err != nil {
		return nil, err
	}
	if s.Linux.Sysctl, err = sysctls(req.Sysctls, req.Network == "host"); err != nil {
		return nil, err
	}
	if err := devices(s.Linux, req); err != nil {
		return nil, err
	}
	return s, nil
}

// invalid is an invalid-argument error with Docker's message.
func invalid(format string, args ...any) error {
	return &classed{msg: fmt.Sprintf(format, args...), class: errdefs.ErrInvalidArgument}
}

// classed is an error worded exactly as Docker words it (no class name
// appended), of an errdefs class for errors.Is.
type classed struct {
	msg   string
	class error
}

func (e *classed) Error() string { return e.msg }
func (e *classed) Unwrap() error { return e.class }

// security is what --security-opt asked for.
type security struct {
	noNewPrivileges bool
	unconfined      bool
	profile         []byte
}

// parseSecurityOpt reads --security-opt values as moby's
// parseSecurityOpt does.
func parseSecurityOpt(opts []string) (security, error) {
	var sec security
	for _, opt := range opts {
		if opt == "no-new-privileges" {
			sec.noNewPrivileges = true
			continue
		}
		k, v, ok := strings.Cut(opt, "=")
		if !ok {
			if k, v, ok = strings.Cut(opt, ":"); !ok {
				return sec, invalid("invalid --security-opt 1: %q", opt)
			}
		}
		switch k {
		case "no-new-privileges":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return sec, invalid("invalid --security-opt 2: %q", opt)
			}
			sec.noNewPrivileges = b
		case "seccomp":
			switch {
			case v == "unconfined":
				sec.unconfined, sec.profile = true, nil
			case v == "builtin" || v == "":
				sec.unconfined, sec.profile = false, nil
			case strings.HasPrefix(strings.TrimSpace(v), "{"):
				sec.unconfined, sec.profile = false, []byte(v)
			default:
				b, err := os.ReadFile(v)
				if err != nil {
					return sec, invalid("opening seccomp profile (%s) failed: %v", v, err)
				}
				sec.unconfined, sec.profile = false, b
			}
		case "apparmor", "label":
			if v != "unconfined" && v != "disable" {
				return sec, fmt.Errorf("--security-opt %s: berth has no %s support: %w", opt, k, errdefs.ErrNotImplemented)
			}
		default:
			return sec, invalid("invalid --security-opt 2: %q", opt)
		}
	}
	return sec, nil
}

// process builds the container's process: command, environment, user,
// working directory and terminal.
func process(img ocispec.ImageConfig, req Request) (*specs.Process, error) {
	cmd := req.Cmd
	entrypoint := req.Entrypoint
	if entrypoint == nil {
		entrypoint = img.Entrypoint
		if len(cmd) == 0 {
			cmd = img.Cmd
		}
	}
	args := append(slices.Clone(entrypoint), cmd...)
	if len(args) == 0 {
		return nil, invalid("no command specified")
	}
	cwd := req.WorkingDir
	if cwd == "" {
		cwd = img.WorkingDir
	}
	if cwd == "" {
		cwd = "/"
	}
	if !path.IsAbs(cwd) {
		return nil, invalid("the working directory '%s' is invalid, it needs to be an absolute path", cwd)
	}
	userSpec := req.User
	if userSpec == "" {
		userSpec = img.User
	}
	user, home, err := resolveUser(userSpec, req.GroupAdd, req.Users)
	if err != nil {
		return nil, err
	}
	if req.OomScoreAdj < -1000 || req.OomScoreAdj > 1000 {
		return nil, invalid("Invalid value %d, range for oom score adj is [-1000, 1000]", req.OomScoreAdj)
	}
	// As moby's CreateDaemonEnvironment: PATH, HOSTNAME and TERM, then the
	// image's and the user's variables over them.
	env := []string{DefaultPath}
	if req.Hostname != "" {
		env = append(env, "HOSTNAME="+req.Hostname)
	}
	if req.Tty {
		env = append(env, "TERM=xterm")
	}
	env = mergeEnv(mergeEnv(env, img.Env), req.Env)
	if !slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, "HOME=") }) {
		env = append(env, "HOME="+home)
	}
	p := &specs.Process{
		Terminal:     req.Tty,
		User:         user,
		Args:         args,
		Env:          env,
		Cwd:          cwd,
		Capabilities: &specs.LinuxCapabilities{},
	}
	if req.OomScoreAdj != 0 {
		p.OOMScoreAdj = &req.OomScoreAdj
	}
	for _, u := range req.Ulimits {
		if !rlimits[u.Name] {
			return nil, invalid("invalid ulimit type: %s", u.Name)
		}
		if u.Soft > u.Hard {
			return nil, invalid("ulimit soft limit must be less than or equal to hard limit: %d > %d", u.Soft, u.Hard)
		}
		p.Rlimits = append(p.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_" + strings.ToUpper(u.Name), Soft: uint64(u.Soft), Hard: uint64(u.Hard)})
	}
	return p, nil
}

// rlimits are the --ulimit names Docker knows.
var rlimits = map[string]bool{
	"as": true, "core": true, "cpu": true, "data": true, "fsize": true, "locks": true,
	"memlock": true, "msgqueue": true, "nice": true, "nofile": true, "nproc": true,
	"rss": true, "rtprio": true, "rttime": true, "sigpending": true, "stack": true,
}

// mergeEnv replaces or appends each KEY=VALUE of over in base.
func mergeEnv(base, over []string) []string {
	out := slices.Clone(base)
	for _, e := range over {
		k, _, _ := strings.Cut(e, "=")
		i := slices.IndexFunc(out, func(o string) bool { ok, _, _ := strings.Cut(o, "="); return ok == k })
		if i >= 0 {
			out[i] = e
		} else {
			out = append(out, e)
		}
	}
	return out
}

// annotations are the image's labels, the request's over them, the stop
// signal and the init request.
func annotations(img ocispec.ImageConfig, req Request) map[string]string {
	a := map[string]string{}
	maps.Copy(a, img.Labels)
	maps.Copy(a, req.Labels)
	if sig := cmpOr(req.StopSignal, img.StopSignal); sig != "" {
		a[AnnotationStopSignal] = sig
	}
	if req.Init {
		a[AnnotationInit] = "true"
	}
	if len(a) == 0 {
		return nil
	}
	return a
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// mounts are Docker's defaults, less those a request mount replaces, then
// the request's tmpfs and mounts, parents before children.
func mounts(req Request, shm int64) ([]specs.Mount, error) {
	var user []specs.Mount
	for _, dst := range slices.Sorted(maps.Keys(req.Tmpfs)) {
		if !path.IsAbs(dst) {
			return nil, invalid("invalid mount path: '%s' mount path must be absolute", dst)
		}
		opts := []string{"noexec", "nosuid", "nodev"}
		if o := req.Tmpfs[dst]; o != "" {
			opts = append(opts, strings.Split(o, ",")...)
		}
		user = append(user, specs.Mount{Destination: dst, Type: "tmpfs", Source: "tmpfs", Options: opts})
	}
	user = append(user, req.Mounts...)
	taken := map[string]bool{}
	for _, m := range user {
		if !path.IsAbs(m.Destination) {
			return nil, invalid("invalid mount config: mount path must be absolute: %s", m.Destination)
		}
		m.Destination = path.Clean(m.Destination)
		if taken[m.Destination] {
			return nil, invalid("Duplicate mount point: %s", m.Destination)
		}
		taken[m.Destination] = true
	}
	var out []specs.Mount
	for _, m := range defaultMounts(shm, req.Privileged) {
		if !taken[m.Destination] {
			out = append(out, m)
		}
	}
	slices.SortStableFunc(user, func(a, b specs.Mount) int {
		return strings.Count(path.Clean(a.Destination), "/") - strings.Count(path.Clean(b.Destination), "/")
	})
	return append(out, user...), nil
}

// namespaces are Docker's: fresh pid, ipc, uts, mount and cgroup
// namespaces, and a network one unless the host's is asked for.
func namespaces(network string) ([]specs.LinuxNamespace, error) {
	ns := []specs.LinuxNamespace{
		{Type: specs.MountNamespace}, {Type: specs.UTSNamespace}, {Type: specs.PIDNamespace},
		{Type: specs.IPCNamespace}, {Type: specs.CgroupNamespace},
	}
	switch {
	case network == "host":
	case network == "" || network == "none":
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace})
	case path.IsAbs(network):
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: network})
	default:
		return nil, &classed{msg: fmt.Sprintf("network %s not found", network), class: errdefs.ErrNotFound}
	}
	return ns, nil
}

// resources fills memory, CPU and pids limits, checked as moby's
// verifyPlatformContainerResources does.
func resources(r *specs.LinuxResources, req Request) error {
	if req.Memory != 0 && req.Memory < 6<<20 {
		return invalid("Minimum memory limit allowed is 6MB")
	}
	if req.MemorySwap != 0 && req.Memory == 0 {
		return invalid("You should always set the Memory limit when using Memoryswap limit, see usage")
	}
	if req.MemorySwap > 0 && req.MemorySwap < req.Memory {
		return invalid("Minimum memoryswap limit should be larger than memory limit, see usage")
	}
	if req.Memory > 0 {
		swap := req.MemorySwap
		if swap == 0 {
			swap = 2 * req.Memory
		}
		r.Memory = &specs.LinuxMemory{Limit: &req.Memory, Swap: &swap}
	}
	if req.MemoryReservation != 0 {
		if req.MemoryReservation < 6<<20 {
			return invalid("Minimum memory reservation allowed is 6MB")
		}
		if req.Memory > 0 && req.MemoryReservation > req.Memory {
			return invalid("Minimum memory limit can not be less than memory reservation limit, see usage")
		}
		if r.Memory == nil {
			r.Memory = &specs.LinuxMemory{}
		}
		r.Memory.Reservation = &req.MemoryReservation
	}
	if req.CPUs != 0 && (req.CPUPeriod != 0 || req.CPUQuota != 0) {
		return invalid("Conflicting options: Nano CPUs and CPU Period cannot both be set")
	}
	if req.CPUs != 0 || req.CPUShares != 0 || req.CpusetCpus != "" || req.CPUPeriod != 0 || req.CPUQuota != 0 {
		r.CPU = &specs.LinuxCPU{}
	}
	if req.CPUPeriod != 0 {
		if req.CPUPeriod < 1000 || req.CPUPeriod > 1000000 {
			return invalid("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
		}
		period := uint64(req.CPUPeriod)
		r.CPU.Period = &period
	}
	if req.CPUQuota != 0 {
		if req.CPUQuota > 0 && req.CPUQuota < 1000 {
			return invalid("CPU cfs quota can not be less than 1ms (i.e. 1000)")
		}
		quota := req.CPUQuota
		r.CPU.Quota = &quota
	}
	if req.CPUs != 0 {
		n := runtime.NumCPU()
		if req.CPUs < 0.01 || req.CPUs > float64(n) {
			return invalid("Range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", n, n)
		}
		period := uint64(cfsPeriod)
		quota := int64(req.CPUs*1e9) * cfsPeriod / 1e9
		r.CPU.Period, r.CPU.Quota = &period, &quota
	}
	if req.CPUShares != 0 {
		if req.CPUShares < 0 {
			return invalid("invalid CPU shares: %d", req.CPUShares)
		}
		// Docker clamps to the kernel's range of cpu.shares.
		shares := uint64(min(max(req.CPUShares, 2), 262144))
		r.CPU.Shares = &shares
	}
	if req.CpusetCpus != "" {
		if !validCpuset(req.CpusetCpus) {
			return invalid("Invalid value %s for cpuset cpus", req.CpusetCpus)
		}
		if err := cpusetAvailable(req.CpusetCpus); err != nil {
			return err
		}
		r.CPU.Cpus = req.CpusetCpus
	}
	if req.PidsLimit > 0 {
		r.Pids = &specs.LinuxPids{Limit: &req.PidsLimit}
	}
	return nil
}

// validCpuset reports whether s is a list of CPUs and ranges: "0-2,4".
func validCpuset(s string) bool {
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.ParseUint(lo, 10, 16)
		b, err2 := strconv.ParseUint(hi, 10, 16)
		if err1 != nil || isRange && (err2 != nil || b < a) {
			return false
		}
	}
	return true
}

// namespacedSysctls are the kernel.* sysctls Docker lets a container set;
// all of net.* (outside the host's network) and fs.mqueue.* are allowed too.
var namespacedSysctls = map[string]bool{
	"kernel.msgmax": true, "kernel.msgmnb": true, "kernel.msgmni": true, "kernel.sem": true,
	"kernel.shmall": true, "kernel.shmmax": true, "kernel.shmmni": true, "kernel.shm_rmid_forced": true,
	"kernel.domainname": true, "kernel.hostname": true,
}

// sysctls checks --sysctl against the namespaced ones, as moby does.
func sysctls(in map[string]string, hostNet bool) (map[string]string, error) {
	if len(in) == 0 {
		return nil, nil
	}
	for k := range in {
		switch {
		case strings.HasPrefix(k, "net."):
			if hostNet {
				return nil, invalid("sysctl %q not allowed in host network namespace", k)
			}
		case strings.HasPrefix(k, "fs.mqueue."), namespacedSysctls[k]:
		default:
			return nil, invalid("sysctl '%s' is not whitelisted", k)
		}
	}
	return maps.Clone(in), nil
}
