package oci

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/runtime/cgroup"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// binary runs a runc-compatible runtime binary once per call:
//
//	<path> --root <root> --log <tmp> --log-format json <command> ...
//
// Create and Exec give the binary the container's stdio as its own (it
// passes them on to the container's process) and a pid file; every other
// command has its output captured. Errors are the "msg" of the last
// error line of the JSON log, else what the binary wrote to stderr.
//
// The binary is waited for by its pid. A caller that reaps every child
// (wait4(-1) in a subreaper) may take its exit status first; the log
// then tells whether it failed.
type binary struct {
	path, root string
}

// invocation is one run of the binary.
type invocation struct {
	args  []string
	stdio *[3]*os.File // the container's stdio (create, exec); nil: captured
	stdin io.Reader    // when stdio is nil
}

// run runs the binary and returns its stdout (when captured).
func (b *binary) run(ctx context.Context, inv invocation) ([]byte, error) {
	logf, err := os.CreateTemp("", "berth-oci-*.log")
	if err != nil {
		return nil, err
	}
	logf.Close()
	defer os.Remove(logf.Name())
	args := append([]string{"--root", b.root, "--log", logf.Name(), "--log-format", "json"}, inv.args...)
	cmd := exec.CommandContext(ctx, b.path, args...)
	var stdout, stderr bytes.Buffer
	if inv.stdio != nil {
		// Only *os.File: a pipe copied by a goroutine would keep Wait
		// waiting for the container, which inherits it.
		if f := inv.stdio[0]; f != nil {
			cmd.Stdin = f
		}
		if f := inv.stdio[1]; f != nil {
			cmd.Stdout = f
		}
		if f := inv.stdio[2]; f != nil {
			cmd.Stderr = f
		}
	} else {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = inv.stdin, &stdout, &stderr
	}
	err = cmd.Run()
	msg := lastLogError(logf.Name())
	if err == nil || (errors.Is(err, unix.ECHILD) && msg == "") {
		return stdout.Bytes(), nil
	}
	if msg == "" {
		msg = strings.TrimSpace(stderr.String())
	}
	if msg == "" {
		msg = err.Error()
	}
	name := filepath.Base(b.path) + " " + inv.args[0]
	if !strings.HasPrefix(msg, name) {
		msg = name + ": " + msg
	}
	return nil, classifyState(errors.New(msg))
}

// lastLogError returns the message of the last error in a JSON log
// (runc, crun and berth-runtime write {"level":"error","msg":...}).
func lastLogError(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var msg string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var l struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			continue
		}
		switch strings.ToLower(l.Level) {
		case "error", "fatal", "panic":
			msg = strings.TrimSpace(l.Msg)
		}
	}
	return msg
}

// classified is a runtime's error as it worded it, with its class.
type classified struct {
	err   error
	class error
}

func (e *classified) Error() string   { return e.err.Error() }
func (e *classified) Unwrap() []error { return []error{e.class, e.err} }

// classifyState gives a binary's error about a container's existence or
// status the errdefs class that berth's runtime would have given it.
func classifyState(err error) error {
	m := strings.ToLower(err.Error())
	var class error
	switch {
	case strings.Contains(m, "does not exist"), strings.Contains(m, "not exist"),
		// crun: error opening file `<root>/<id>/status`: No such file...
		strings.Contains(m, "/status`: no such file or directory"):
		class = errdefs.ErrNotFound
	case strings.Contains(m, "already exists"), strings.Contains(m, "with id exists"):
		class = errdefs.ErrAlreadyExists
	case strings.Contains(m, "not running"), strings.Contains(m, "not paused"),
		strings.Contains(m, "not stopped"), strings.Contains(m, "has stopped"),
		strings.Contains(m, "already running"), strings.Contains(m, "already paused"),
		strings.Contains(m, "is paused"):
		class = errdefs.ErrFailedPrecondition
	default:
		return err
	}
	return &classified{err: err, class: class}
}

func (b *binary) Create(ctx context.Context, id, bundle string, stdio [3]*os.File, consoleSocket *os.File) (pid int, err error) {
	dir, err := os.MkdirTemp("", "berth-oci-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	pidFile := filepath.Join(dir, "pid")
	args := []string{"create", "--bundle", bundle, "--pid-file", pidFile}
	var relay *consoleRelay
	if consoleSocket != nil {
		sock := filepath.Join(dir, "console.sock")
		if relay, err = startRelay(sock, consoleSocket); err != nil {
			return 0, err
		}
		defer relay.close()
		args = append(args, "--console-socket", sock)
	}
	args = append(args, id)
	defer func() {
		if err != nil && !errors.Is(err, errdefs.ErrAlreadyExists) {
			// The binary cleans up after a failed create; make sure.
			b.run(context.WithoutCancel(ctx), invocation{args: []string{"delete", "--force", id}})
		}
	}()
	if _, err := b.run(ctx, invocation{args: args, stdio: &stdio}); err != nil {
		return 0, classifyExec(err)
	}
	if relay != nil {
		if err := relay.wait(10 * time.Second); err != nil {
			return 0, err
		}
	}
	return readPidFile(pidFile)
}

func readPidFile(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pid file holds %q", data)
	}
	return pid, nil
}

func (b *binary) Start(ctx context.Context, id string) error {
	_, err := b.run(ctx, invocation{args: []string{"start", id}})
	return err
}

func (b *binary) Kill(ctx context.Context, id string, sig unix.Signal, all bool) error {
	args := []string{"kill"}
	if all {
		args = append(args, "--all")
	}
	_, err := b.run(ctx, invocation{args: append(args, id, strconv.Itoa(int(sig)))})
	return err
}

func (b *binary) Delete(ctx context.Context, id string, force bool) error {
	args := []string{"delete"}
	if force {
		args = append(args, "--force")
	}
	_, err := b.run(ctx, invocation{args: append(args, id)})
	return err
}

func (b *binary) Pause(ctx context.Context, id string) error {
	_, err := b.run(ctx, invocation{args: []string{"pause", id}})
	return err
}

func (b *binary) Resume(ctx context.Context, id string) error {
	_, err := b.run(ctx, invocation{args: []string{"resume", id}})
	return err
}

func (b *binary) Exec(ctx context.Context, id string, p *specs.Process, stdio [3]*os.File, consoleSocket *os.File) (int, error) {
	dir, err := os.MkdirTemp("", "berth-oci-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	cp := *p
	if cp.Cwd == "" {
		cp.Cwd = "/"
	}
	data, err := json.Marshal(&cp)
	if err != nil {
		return 0, err
	}
	procFile, pidFile := filepath.Join(dir, "process.json"), filepath.Join(dir, "pid")
	if err := os.WriteFile(procFile, data, 0o600); err != nil {
		return 0, err
	}
	args := []string{"exec", "--process", procFile, "--detach", "--pid-file", pidFile}
	var relay *consoleRelay
	if consoleSocket != nil {
		sock := filepath.Join(dir, "console.sock")
		if relay, err = startRelay(sock, consoleSocket); err != nil {
			return 0, err
		}
		defer relay.close()
		args = append(args, "--console-socket", sock)
	}
	if _, err := b.run(ctx, invocation{args: append(args, id), stdio: &stdio}); err != nil {
		return 0, classifyExec(err)
	}
	pid, err := readPidFile(pidFile)
	if err != nil {
		return 0, err
	}
	if relay != nil {
		if err := relay.wait(10 * time.Second); err != nil {
			unix.Kill(pid, unix.SIGKILL)
			return 0, err
		}
	}
	return pid, nil
}

// binaryState is `state`'s output (runc's shape, which crun and
// berth-runtime share).
type binaryState struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

func (b *binary) State(ctx context.Context, id string) (*specs.State, error) {
	out, err := b.run(ctx, invocation{args: []string{"state", id}})
	if err != nil {
		return nil, err
	}
	var st binaryState
	if err := json.Unmarshal(out, &st); err != nil {
		return nil, fmt.Errorf("%s state: %w", filepath.Base(b.path), err)
	}
	pid := st.Pid
	if st.Status == "stopped" {
		pid = 0
	}
	return &specs.State{
		Version: st.OCIVersion, ID: st.ID, Status: specs.ContainerState(st.Status),
		Pid: pid, Bundle: st.Bundle, Annotations: st.Annotations,
	}, nil
}

func (b *binary) Pids(ctx context.Context, id string) ([]int, error) {
	out, err := b.run(ctx, invocation{args: []string{"ps", "--format", "json", id}})
	if err != nil {
		return nil, err
	}
	var pids []int
	if err := json.Unmarshal(out, &pids); err != nil {
		return nil, fmt.Errorf("%s ps: %w", filepath.Base(b.path), err)
	}
	return pids, nil
}

func (b *binary) Stats(ctx context.Context, id string) (*Stats, error) {
	out, err := b.run(ctx, invocation{args: []string{"events", "--stats", id}})
	if err != nil && strings.Contains(err.Error(), "unknown command") {
		return b.cgroupStats(ctx, id) // crun has no `events`
	}
	if err != nil {
		return nil, err
	}
	var ev struct {
		Type string        `json:"type"`
		Data *cgroup.Stats `json:"data"`
	}
	if err := json.NewDecoder(bytes.NewReader(out)).Decode(&ev); err != nil {
		return nil, fmt.Errorf("%s events --stats: %w", filepath.Base(b.path), err)
	}
	if ev.Data == nil {
		return nil, fmt.Errorf("%s events --stats: no data in %q", filepath.Base(b.path), out)
	}
	return fromCgroup(ev.Data), nil
}

// OOMKills reads the container's cgroup: `events --stats` has no OOM
// kill count. The cgroup is init's while it runs, else the bundle's
// linux.cgroupsPath (the binary removes the cgroup only at delete).
// cgroupStats reads the container's cgroup directly, for runtimes
// without `events --stats`.
func (b *binary) cgroupStats(ctx context.Context, id string) (*Stats, error) {
	p, err := b.cgroupPath(ctx, id)
	if err != nil {
		return nil, err
	}
	m, err := cgroup.New(p)
	if err != nil {
		return nil, err
	}
	st, err := m.Stats()
	if err != nil {
		return nil, err
	}
	return fromCgroup(st), nil
}

func (b *binary) OOMKills(ctx context.Context, id string) (uint64, error) {
	p, err := b.cgroupPath(ctx, id)
	if err != nil {
		return 0, err
	}
	m, err := cgroup.New(p)
	if err != nil {
		return 0, err
	}
	return m.OOMKills()
}

func (b *binary) cgroupPath(ctx context.Context, id string) (string, error) {
	st, err := b.State(ctx, id)
	if err != nil {
		return "", err
	}
	if st.Pid > 0 {
		if p, err := procCgroup(st.Pid); err == nil {
			return p, nil
		}
	}
	data, err := os.ReadFile(filepath.Join(st.Bundle, "config.json"))
	if err != nil {
		return "", fmt.Errorf("container %s: %w", id, err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return "", fmt.Errorf("container %s: config.json: %w", id, err)
	}
	var cp string
	if spec.Linux != nil {
		cp = spec.Linux.CgroupsPath
	}
	if path.IsAbs(cp) {
		return path.Clean(cp), nil
	}
	// Where a binary puts a relative or empty path is its own affair;
	// berth's runtime follows runc for relative ones.
	return cgroup.Resolve(cp, id, false)
}

// procCgroup returns the cgroup of pid that holds its memory: the unified
// one on a v2 host, else the memory hierarchy's.
func procCgroup(pid int) (string, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return "", err
	}
	unified := cgroup.Unified()
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if unified && parts[0] == "0" && parts[1] == "" {
			return parts[2], nil
		}
		for _, c := range strings.Split(parts[1], ",") {
			if !unified && c == "memory" {
				return parts[2], nil
			}
		}
	}
	return "", fmt.Errorf("process %d has no memory cgroup", pid)
}

func (b *binary) Update(ctx context.Context, id string, r *specs.LinuxResources) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = b.run(ctx, invocation{args: []string{"update", "--resources", "-", id}, stdin: bytes.NewReader(data)})
	return err
}

// consoleRelay listens where the binary sends the pty master
// (--console-socket) and passes it on over the caller's socket.
type consoleRelay struct {
	l    *net.UnixListener
	done chan error
	mu   sync.Mutex
	conn *net.UnixConn
}

func startRelay(path string, to *os.File) (*consoleRelay, error) {
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("console socket: %w", err)
	}
	r := &consoleRelay{l: l, done: make(chan error, 1)}
	go func() { r.done <- r.serve(to) }()
	return r, nil
}

func (r *consoleRelay) serve(to *os.File) error {
	c, err := r.l.AcceptUnix()
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.conn = c
	r.mu.Unlock()
	defer c.Close()
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return fmt.Errorf("receive pty master: %w", err)
	}
	var fds []int
	msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
	for _, m := range msgs {
		if got, err := unix.ParseUnixRights(&m); err == nil {
			fds = append(fds, got...)
		}
	}
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	if len(fds) != 1 {
		return fmt.Errorf("receive pty master: got %d fds", len(fds))
	}
	rc, err := to.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Write(func(fd uintptr) bool {
		serr = unix.Sendmsg(int(fd), buf[:n], unix.UnixRights(fds[0]), nil, 0)
		return !errors.Is(serr, unix.EAGAIN)
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("send pty master to console socket: %w", serr)
	}
	return nil
}

// wait waits for the master to have been passed on.
func (r *consoleRelay) wait(d time.Duration) error {
	select {
	case err := <-r.done:
		r.done <- err // for close
		return err
	case <-time.After(d):
		return errors.New("no pty master on the console socket")
	}
}

// close stops the relay and waits for it.
func (r *consoleRelay) close() {
	r.l.Close()
	r.mu.Lock()
	if r.conn != nil {
		r.conn.Close()
	}
	r.mu.Unlock()
	<-r.done
}
