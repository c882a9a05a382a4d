package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// loadBundle reads and checks bundle/config.json. It returns the spec, the
// absolute bundle path and the absolute rootfs path.
func loadBundle(bundle string) (*specs.Spec, string, string, error) {
	if bundle == "" {
		bundle = "."
	}
	abs, err := filepath.Abs(bundle)
	if err != nil {
		return nil, "", "", err
	}
	data, err := os.ReadFile(filepath.Join(abs, "config.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", "", fmt.Errorf("JSON specification file config.json not found in bundle %s: %w", abs, errdefs.ErrInvalidArgument)
	}
	if err != nil {
		return nil, "", "", fmt.Errorf("read config.json: %w", err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, "", "", fmt.Errorf("parse config.json: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	if err := validate(&s); err != nil {
		return nil, "", "", fmt.Errorf("invalid config.json: %w", err)
	}
	rootfs := s.Root.Path
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(abs, rootfs)
	}
	if real, err := filepath.EvalSymlinks(rootfs); err == nil && real == "/" {
		return nil, "", "", fmt.Errorf("rootfs %s is the host's root: %w", rootfs, errdefs.ErrInvalidArgument)
	}
	fi, err := os.Stat(rootfs)
	if err != nil {
		return nil, "", "", fmt.Errorf("rootfs %s: %w: %w", rootfs, err, errdefs.ErrInvalidArgument)
	}
	if !fi.IsDir() {
		return nil, "", "", fmt.Errorf("rootfs %s is not a directory: %w", rootfs, errdefs.ErrInvalidArgument)
	}
	return &s, abs, rootfs, nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, errdefs.ErrInvalidArgument)...)
}

// validate rejects a spec the runtime cannot honour before anything is made.
func validate(s *specs.Spec) error {
	if s.Root == nil || s.Root.Path == "" {
		return invalid("root.path is empty")
	}
	if s.Process == nil {
		return invalid("process is missing")
	}
	if len(s.Process.Args) == 0 {
		return invalid("process.args must not be empty")
	}
	if s.Process.Cwd == "" || !filepath.IsAbs(s.Process.Cwd) {
		return invalid("process.cwd %q must be an absolute path", s.Process.Cwd)
	}
	if s.Linux == nil {
		return invalid("linux section is missing")
	}
	seen := map[specs.LinuxNamespaceType]bool{}
	for _, ns := range s.Linux.Namespaces {
		if _, ok := nsKinds[ns.Type]; !ok {
			return invalid("unknown namespace type %q", ns.Type)
		}
		if seen[ns.Type] {
			return invalid("namespace %q listed twice", ns.Type)
		}
		seen[ns.Type] = true
		if ns.Path != "" {
			if _, err := os.Stat(ns.Path); err != nil {
				return invalid("namespace %s path %s: %v", ns.Type, ns.Path, err)
			}
			if err := checkNSType(ns); err != nil {
				return err
			}
		}
	}
	if !seen[specs.MountNamespace] {
		// As runc: the container then shares the runtime's mount
		// namespace and gets a chroot; nothing may be made read-only
		// there, since that would change the host's mounts.
		if len(s.Linux.MaskedPaths) > 0 || len(s.Linux.ReadonlyPaths) > 0 {
			return invalid("unable to restrict sys entries without a private MNT namespace")
		}
		if s.Root.Readonly || s.Linux.RootfsPropagation != "" {
			return invalid("a read-only rootfs or rootfs propagation needs a private mount namespace")
		}
	}
	if seen[specs.UserNamespace] {
		if userNSPath(s) == "" && (len(s.Linux.UIDMappings) == 0 || len(s.Linux.GIDMappings) == 0) {
			return invalid("a new user namespace needs uidMappings and gidMappings")
		}
	} else if len(s.Linux.UIDMappings) > 0 || len(s.Linux.GIDMappings) > 0 {
		return invalid("uidMappings and gidMappings need a user namespace")
	}
	if s.Hostname != "" && !seen[specs.UTSNamespace] {
		return invalid("unable to set hostname without a private UTS namespace")
	}
	if s.Domainname != "" && !seen[specs.UTSNamespace] {
		return invalid("unable to set domainname without a private UTS namespace")
	}
	if len(s.Linux.TimeOffsets) > 0 && !seen[specs.TimeNamespace] {
		return invalid("timeOffsets need a time namespace")
	}
	for k := range s.Linux.Sysctl {
		if err := checkSysctl(k, seen); err != nil {
			return err
		}
	}
	for _, m := range s.Mounts {
		if !filepath.IsAbs(m.Destination) {
			return invalid("mount destination %q is not absolute", m.Destination)
		}
	}
	for _, d := range s.Linux.Devices {
		if !filepath.IsAbs(d.Path) {
			return invalid("device path %q is not absolute", d.Path)
		}
		switch d.Type {
		case "c", "b", "u", "p":
		default:
			return invalid("device %s has invalid type %q", d.Path, d.Type)
		}
	}
	if s.Process.ApparmorProfile != "" && !apparmorEnabled() {
		// Running unconfined when confinement was asked for is not an
		// option; runc fails the same way.
		return invalid("apparmor profile %q requested but AppArmor is not enabled on this host", s.Process.ApparmorProfile)
	}
	if p := s.Linux.Personality; p != nil && p.Domain != specs.PerLinux && p.Domain != specs.PerLinux32 {
		return invalid("unknown personality domain %q", p.Domain)
	}
	for _, rl := range s.Process.Rlimits {
		if _, ok := rlimits[rl.Type]; !ok {
			return invalid("unknown rlimit %q", rl.Type)
		}
		if rl.Soft > rl.Hard {
			return invalid("rlimit %s: soft %d exceeds hard %d", rl.Type, rl.Soft, rl.Hard)
		}
	}
	return nil
}

// checkNSType rejects a namespace path that names a namespace of
// another type, which setns would only report as EINVAL.
func checkNSType(ns specs.LinuxNamespace) error {
	f, err := os.Open(ns.Path)
	if err != nil {
		return invalid("namespace %s path %s: %v", ns.Type, ns.Path, err)
	}
	defer f.Close()
	t, err := unix.IoctlRetInt(int(f.Fd()), unix.NS_GET_NSTYPE)
	if err != nil {
		return invalid("namespace %s path %s is not a namespace: %v", ns.Type, ns.Path, err)
	}
	if uint32(t) != nsKinds[ns.Type].flag {
		return invalid("namespace %s path %s is not a %s namespace", ns.Type, ns.Path, ns.Type)
	}
	return nil
}

// ipcSysctls are the sysctls an IPC namespace holds, besides fs.mqueue.*.
var ipcSysctls = map[string]bool{
	"kernel.msgmax": true, "kernel.msgmnb": true, "kernel.msgmni": true, "kernel.sem": true,
	"kernel.shmall": true, "kernel.shmmax": true, "kernel.shmmni": true, "kernel.shm_rmid_forced": true,
}

// checkSysctl refuses, as runc does, a sysctl that no namespace of the
// container holds: writing it would change the host.
func checkSysctl(key string, seen map[specs.LinuxNamespaceType]bool) error {
	k := strings.ReplaceAll(key, "/", ".")
	switch {
	case ipcSysctls[k] || strings.HasPrefix(k, "fs.mqueue."):
		if !seen[specs.IPCNamespace] {
			return invalid("sysctl %q is not allowed as it conflicts with the host's IPC namespace", key)
		}
	case strings.HasPrefix(k, "net."):
		if !seen[specs.NetworkNamespace] {
			return invalid("sysctl %q is not allowed in the host's network namespace", key)
		}
	case k == "kernel.hostname" || k == "kernel.domainname":
		if !seen[specs.UTSNamespace] {
			return invalid("sysctl %q is not allowed in the host's UTS namespace", key)
		}
	default:
		return invalid("sysctl %q is not in a separate kernel namespace", key)
	}
	return nil
}

func userNSPath(s *specs.Spec) string {
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.UserNamespace {
			return ns.Path
		}
	}
	return ""
}

func hasNS(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	if s.Linux == nil {
		return false
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == t {
			return true
		}
	}
	return false
}

// apparmorEnabled reports whether the kernel has AppArmor switched on.
func apparmorEnabled() bool {
	data, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	return err == nil && len(data) > 0 && data[0] == 'Y'
}
