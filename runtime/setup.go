package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/runtime/seccomp"
	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var rlimits = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE,
	"RLIMIT_NICE": unix.RLIMIT_NICE, "RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC,
	"RLIMIT_RSS": unix.RLIMIT_RSS, "RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME,
	"RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING, "RLIMIT_STACK": unix.RLIMIT_STACK,
}

// setupKernel sets what the container's namespaces hold: hostname,
// domainname, sysctls and the execution domain.
func setupKernel(s *specs.Spec) error {
	if s.Hostname != "" {
		if err := unix.Sethostname([]byte(s.Hostname)); err != nil {
			return &os.SyscallError{Syscall: "sethostname", Err: err}
		}
	}
	if s.Domainname != "" {
		if err := unix.Setdomainname([]byte(s.Domainname)); err != nil {
			return &os.SyscallError{Syscall: "setdomainname", Err: err}
		}
	}
	for k, v := range s.Linux.Sysctl {
		if strings.Contains(k, "..") || strings.HasPrefix(k, "/") {
			return invalid("sysctl %q", k)
		}
		path := filepath.Join("/proc/sys", strings.ReplaceAll(k, ".", "/"))
		if err := os.WriteFile(path, []byte(v), 0); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", k, v, err)
		}
	}
	if p := s.Linux.Personality; p != nil {
		persona := 0 // PER_LINUX
		if p.Domain == specs.PerLinux32 {
			persona = 0x0008 // PER_LINUX32
		}
		if _, _, errno := unix.Syscall(unix.SYS_PERSONALITY, uintptr(persona), 0, 0); errno != 0 {
			return &os.SyscallError{Syscall: "personality", Err: errno}
		}
	}
	return nil
}

// setupProcess gives this process the spec's limits, privileges, identity
// and working directory, in runc's order (see Init).
func setupProcess(c conn, cfg *initConfig) error {
	p := cfg.Process
	if err := raiseRlimits(p.Rlimits); err != nil {
		return err
	}
	if err := applyApparmor(p.ApparmorProfile); err != nil {
		return err
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return &os.SyscallError{Syscall: "prctl(PR_SET_NO_NEW_PRIVS)", Err: err}
		}
	}
	// The cwd is checked to lie inside the container before any seccomp
	// filter is loaded, which might deny the getcwd the check needs.
	if err := enterCwd(p.Cwd); err != nil {
		return err
	}
	sc := cfg.Spec.Linux.Seccomp
	if sc != nil && !p.NoNewPrivileges {
		if err := loadSeccomp(c, sc); err != nil {
			return err
		}
	}
	caps, err := newCaps(p.Capabilities)
	if err != nil {
		return err
	}
	if err := caps.Apply(capability.BOUNDS); err != nil {
		return fmt.Errorf("drop bounding capabilities: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return &os.SyscallError{Syscall: "prctl(PR_SET_KEEPCAPS)", Err: err}
	}
	if err := setUser(p.User); err != nil {
		return err
	}
	unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0)
	if err := caps.Apply(capability.CAPS | capability.AMBS); err != nil {
		return fmt.Errorf("set capabilities: %w", err)
	}
	umask := 0o022
	if p.User.Umask != nil {
		umask = int(*p.User.Umask)
	}
	unix.Umask(umask)
	// Again as the process's user, for its permission to enter it.
	if err := unix.Chdir(p.Cwd); err != nil {
		return fmt.Errorf("chdir to cwd (%q) set in config.json failed: %w", p.Cwd, err)
	}
	if sc != nil && p.NoNewPrivileges {
		if err := loadSeccomp(c, sc); err != nil {
			return err
		}
	}
	return nil
}

// applyApparmor makes the kernel switch this thread to profile at
// execve ("changeonexec"); validate refused a profile without AppArmor.
func applyApparmor(profile string) error {
	if profile == "" {
		return nil
	}
	attr := "/proc/thread-self/attr/apparmor/exec"
	if _, err := os.Stat(attr); err != nil {
		attr = "/proc/thread-self/attr/exec" // kernels before 5.8
	}
	if err := os.WriteFile(attr, []byte("exec "+profile), 0); err != nil {
		return fmt.Errorf("set apparmor profile %q: %w", profile, err)
	}
	return nil
}

// raiseRlimits raises the hard limits the process will need, while init
// still holds its capabilities, so that a limit it cannot have is an
// error of create. It lowers nothing: a low RLIMIT_NPROC or RLIMIT_AS
// would starve the Go runtime of init itself, so the limits proper are
// set by setRlimits, the last thing before execve.
func raiseRlimits(rls []specs.POSIXRlimit) error {
	for _, rl := range rls {
		var cur unix.Rlimit
		res := rlimits[rl.Type]
		if err := unix.Getrlimit(res, &cur); err != nil {
			return fmt.Errorf("getrlimit %s: %w", rl.Type, err)
		}
		if rl.Hard <= cur.Max {
			continue
		}
		if err := unix.Setrlimit(res, &unix.Rlimit{Cur: cur.Cur, Max: rl.Hard}); err != nil {
			return fmt.Errorf("setrlimit %s soft %d hard %d: %w", rl.Type, rl.Soft, rl.Hard, err)
		}
	}
	return nil
}

// setRlimits sets the process's limits; raiseRlimits made them possible.
func setRlimits(rls []specs.POSIXRlimit) error {
	for _, rl := range rls {
		if err := unix.Setrlimit(rlimits[rl.Type], &unix.Rlimit{Cur: rl.Soft, Max: rl.Hard}); err != nil {
			return fmt.Errorf("setrlimit %s soft %d hard %d: %w", rl.Type, rl.Soft, rl.Hard, err)
		}
	}
	return nil
}

// loadSeccomp installs the filter; a listener fd goes to the parent, which
// passes it on to the profile's listenerPath.
func loadSeccomp(c conn, sc *specs.LinuxSeccomp) error {
	fd, err := seccomp.Load(sc)
	if err != nil {
		return fmt.Errorf("load seccomp profile: %w", err)
	}
	if fd < 0 {
		return nil
	}
	defer unix.Close(fd)
	return ask(c, message{Type: "seccomp"}, fd)
}

// newCaps builds the five capability sets; names the kernel does not know
// are skipped, as runc does, so a profile may list newer capabilities.
func newCaps(pc *specs.LinuxCapabilities) (capability.Capabilities, error) {
	caps, err := capability.NewPid2(0)
	if err != nil {
		return nil, fmt.Errorf("capabilities: %w", err)
	}
	caps.Clear(capability.CAPS | capability.BOUNDS | capability.AMBS)
	if pc == nil {
		return caps, nil
	}
	last, _ := capability.LastCap()
	known := map[string]capability.Cap{}
	for _, c := range capability.ListKnown() {
		if c <= last {
			known["CAP_"+strings.ToUpper(c.String())] = c
		}
	}
	for _, set := range []struct {
		which capability.CapType
		names []string
	}{
		{capability.BOUNDING, pc.Bounding}, {capability.EFFECTIVE, pc.Effective},
		{capability.PERMITTED, pc.Permitted}, {capability.INHERITABLE, pc.Inheritable},
		{capability.AMBIENT, pc.Ambient},
	} {
		for _, n := range set.names {
			if c, ok := known[strings.ToUpper(n)]; ok {
				caps.Set(set.which, c)
			}
		}
	}
	return caps, nil
}

// setUser switches to the process's user: groups, then gid, then uid.
func setUser(u specs.User) error {
	groups := make([]int, 0, len(u.AdditionalGids))
	for _, g := range u.AdditionalGids {
		groups = append(groups, int(g))
	}
	if err := unix.Setgroups(groups); err != nil {
		// A user namespace whose setgroups is "deny" keeps its groups.
		if data, rerr := os.ReadFile("/proc/self/setgroups"); rerr != nil || strings.TrimSpace(string(data)) != "deny" || len(groups) > 0 {
			return fmt.Errorf("setgroups %v: %w", groups, idErr(err))
		}
	}
	if err := unix.Setresgid(int(u.GID), int(u.GID), int(u.GID)); err != nil {
		return fmt.Errorf("setgid %d: %w", u.GID, idErr(err))
	}
	if err := unix.Setresuid(int(u.UID), int(u.UID), int(u.UID)); err != nil {
		return fmt.Errorf("setuid %d: %w", u.UID, idErr(err))
	}
	return nil
}

func idErr(err error) error {
	if errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("id is not mapped in the user namespace: %w", err)
	}
	return err
}

// enterCwd changes to the process's cwd and checks that the result lies
// inside the container: a cwd reached through an fd leaked from the host
// (/proc/self/fd/N) resolves outside the root, which getcwd reports as
// "(unreachable)" or ENOENT (CVE-2024-21626).
func enterCwd(cwd string) error {
	if err := unix.Chdir(cwd); err != nil {
		return fmt.Errorf("chdir to cwd (%q) set in config.json failed: %w", cwd, err)
	}
	buf := make([]byte, 4096)
	n, err := unix.Getcwd(buf)
	if err != nil {
		return fmt.Errorf("current working directory is outside of container mount namespace root -- possible container breakout detected: %w", err)
	}
	if n == 0 || buf[0] != '/' {
		return errors.New("current working directory is outside of container mount namespace root -- possible container breakout detected")
	}
	return nil
}

// lookPath finds name in the PATH of the container's environment.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		if err := executable(name); err != nil {
			return "", fmt.Errorf("exec: %q: %w", name, err)
		}
		return name, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if executable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH", name)
}

func executable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return errors.New("is a directory")
	}
	if fi.Mode()&0o111 == 0 {
		return errors.New("permission denied")
	}
	return nil
}
