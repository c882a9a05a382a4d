package runtime

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"github.com/berth-dev/berth/runtime/nsexec"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// nsKinds maps the spec's namespace types to clone flags and /proc names.
var nsKinds = map[specs.LinuxNamespaceType]struct {
	flag uint32
	proc string
}{
	specs.PIDNamespace:     {unix.CLONE_NEWPID, "pid"},
	specs.NetworkNamespace: {unix.CLONE_NEWNET, "net"},
	specs.MountNamespace:   {unix.CLONE_NEWNS, "mnt"},
	specs.IPCNamespace:     {unix.CLONE_NEWIPC, "ipc"},
	specs.UTSNamespace:     {unix.CLONE_NEWUTS, "uts"},
	specs.UserNamespace:    {unix.CLONE_NEWUSER, "user"},
	specs.CgroupNamespace:  {unix.CLONE_NEWCGROUP, "cgroup"},
	specs.TimeNamespace:    {unix.CLONE_NEWTIME, "time"},
}

// launch describes one start of the init binary.
type launch struct {
	flags    uint32   // namespaces to create
	joins    []string // "type:path" namespaces to join
	pidfdPid int      // join every namespace of this process at once, if non-zero
	fork     bool     // fork after the namespaces are set (pid and time namespaces)
	timens   string   // /proc/self/timens_offsets text
	uidMaps  []specs.LinuxIDMapping
	gidMaps  []specs.LinuxIDMapping
	files    []*os.File   // inherited by init from fd 3 on: preserved fds first
	cgroupFD *os.File     // cgroup v2 directory to clone into, or nil
	cgroup   placer       // where init belongs, if it is not cloned into it
	prepare  func() error // runs once init has its bootstrap, before its pid is known
	stdio    [3]*os.File
}

// placer moves a process into a cgroup (cgroup.Manager does).
type placer interface {
	Apply(pid int) error
}

// started is the parent's handle on an init that has reached Go.
type started struct {
	pid    int
	conn   conn
	cmd    *exec.Cmd
	placed <-chan error // the move into the cgroup, nil if born there
}

// placement says when init asks to be in its cgroup: "" when it was born
// there, else "early" (before anything: cgroup v2, where the namespace
// and the cgroup2 mount depend on it) or "late" (after the mounts: v1,
// whose cgroup mounts are binds of paths).
func (s *started) placement(unified bool) string {
	switch {
	case s.placed == nil:
		return ""
	case unified:
		return "early"
	}
	return "late"
}

// waitPlaced waits for the move into the cgroup.
func (s *started) waitPlaced() error {
	if s.placed == nil {
		return nil
	}
	if err := <-s.placed; err != nil {
		return fmt.Errorf("join cgroup: %w", err)
	}
	s.placed = nil
	return nil
}

func (l *launch) bootstrap() []byte {
	var b []byte
	rec := func(typ uint16, data []byte) {
		var hdr [8]byte
		binary.LittleEndian.PutUint16(hdr[0:], typ)
		binary.LittleEndian.PutUint32(hdr[4:], uint32(len(data)))
		b = append(b, hdr[:]...)
		b = append(b, data...)
	}
	u32 := func(vs ...uint32) []byte {
		out := make([]byte, 4*len(vs))
		for i, v := range vs {
			binary.LittleEndian.PutUint32(out[4*i:], v)
		}
		return out
	}
	rec(nsexec.RecFlags, u32(l.flags))
	if l.pidfdPid != 0 {
		var all uint32
		for _, j := range l.joins {
			kind, _, _ := strings.Cut(j, ":")
			all |= nsKinds[specs.LinuxNamespaceType(kind)].flag
		}
		rec(nsexec.RecPidfd, u32(uint32(l.pidfdPid), all))
	}
	for _, j := range l.joins {
		rec(nsexec.RecJoin, []byte(j))
	}
	if l.fork {
		rec(nsexec.RecFork, u32(1))
	}
	if l.timens != "" {
		rec(nsexec.RecTimens, []byte(l.timens))
	}
	out := binary.LittleEndian.AppendUint32(nil, uint32(len(b)))
	return append(out, b...)
}

// start runs the sealed binary as "init", drives the nsexec handshake and
// returns once the process that becomes the container's init has reached
// Go, with its host pid.
func (l *launch) start() (s *started, err error) {
	exe, err := sealedExe()
	if err != nil {
		return nil, err
	}
	defer func() { go exe.Close() }() // see sealedExe
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("init socketpair: %w", err)
	}
	parent, child := conn{pair[0]}, os.NewFile(uintptr(pair[1]), "init-socket")
	defer child.Close()
	defer func() {
		if err != nil {
			parent.close()
		}
	}()

	files := append(append([]*os.File{}, l.files...), child, exe)
	sockFD := 3 + len(files) - 2
	exeFD := 3 + len(files) - 1
	cmd := &exec.Cmd{
		// The path names the child's fd: the sealed copy rides in
		// ExtraFiles so the fd shuffle in fork cannot clobber it.
		Path: "/proc/self/fd/" + strconv.Itoa(exeFD),
		Args: []string{"berth", "init"},
		// Init runs on one locked thread and lives too briefly to need a
		// collection. The container's environment goes to execve, not here.
		Env:        []string{nsexec.EnvInit + "=" + strconv.Itoa(sockFD), "GOMAXPROCS=1", "GOGC=off"},
		Stdin:      l.stdio[0],
		Stdout:     l.stdio[1],
		Stderr:     l.stdio[2],
		ExtraFiles: files,
	}
	placed := false
	if l.cgroupFD != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(l.cgroupFD.Fd())}
		if err := cmd.Start(); err == nil {
			placed = true
		} else {
			// An exec.Cmd starts once: clone it and retry without
			// CLONE_INTO_CGROUP (old kernel, seccomp on clone3).
			c := *cmd
			c.SysProcAttr, c.Process, c.ProcessState = nil, nil, nil
			cmd = &c
		}
	}
	if !placed {
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start init: %w", err)
		}
	}
	s = &started{conn: parent, cmd: cmd}
	defer func() {
		if err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			if s.pid > 0 && s.pid != cmd.Process.Pid {
				unix.Kill(s.pid, unix.SIGKILL)
			}
		}
	}()
	child.Close()
	if err := parent.writeAll(l.bootstrap()); err != nil {
		return s, err
	}
	if l.prepare != nil {
		if err := l.prepare(); err != nil {
			return s, err
		}
	}
	for s.pid == 0 {
		var hdr [5]byte
		if _, err := parent.readFull(hdr[:]); err != nil {
			return s, fmt.Errorf("container init: %w", waitErr(cmd, err))
		}
		v := binary.LittleEndian.Uint32(hdr[1:])
		switch hdr[0] {
		case nsexec.MsgUsermap:
			if err := writeIDMaps(int(v), l.uidMaps, l.gidMaps); err != nil {
				return s, err
			}
			if err := parent.writeAll([]byte{nsexec.MsgAck}); err != nil {
				return s, err
			}
		case nsexec.MsgPid:
			s.pid = int(v)
		case nsexec.MsgError:
			msg := make([]byte, min(v, 4096))
			parent.readFull(msg)
			cmd.Wait()
			return s, fmt.Errorf("container init: %s", msg)
		default:
			return s, fmt.Errorf("container init: unexpected message %q", hdr[0])
		}
	}
	if !placed {
		// Moving a process between v1 cgroups waits for an RCU grace
		// period: let it run while init works, until it asks (placement).
		done := make(chan error, 1)
		s.placed = done
		go func() { done <- l.cgroup.Apply(s.pid) }()
	}
	if l.fork {
		// The intermediate process exits once it has reported its child.
		if err := cmd.Wait(); err != nil {
			return s, fmt.Errorf("container init: intermediate process: %w", err)
		}
	} else {
		cmd.Process.Release()
	}
	return s, nil
}

func waitErr(cmd *exec.Cmd, err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		if werr := cmd.Wait(); werr != nil {
			return fmt.Errorf("exited before reporting: %w", werr)
		}
		return errors.New("exited before reporting")
	}
	return err
}

func writeIDMaps(pid int, uids, gids []specs.LinuxIDMapping) error {
	write := func(file string, maps []specs.LinuxIDMapping) error {
		var b strings.Builder
		for _, m := range maps {
			fmt.Fprintf(&b, "%d %d %d\n", m.ContainerID, m.HostID, m.Size)
		}
		path := "/proc/" + strconv.Itoa(pid) + "/" + file
		if err := os.WriteFile(path, []byte(b.String()), 0); err != nil {
			return fmt.Errorf("write %s: %w", file, err)
		}
		return nil
	}
	if err := write("uid_map", uids); err != nil {
		return err
	}
	return write("gid_map", gids)
}
