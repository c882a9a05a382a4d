package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Status is a container's place in the OCI lifecycle.
type Status string

// The statuses of the OCI runtime spec, plus paused.
const (
	Creating Status = "creating"
	Created  Status = "created"
	Running  Status = "running"
	Paused   Status = "paused"
	Stopped  Status = "stopped"
)

// State is what the runtime records about one container in state.json.
type State struct {
	ID          string            `json:"id"`
	Pid         int               `json:"init_process_pid"`
	StartTime   uint64            `json:"init_process_start"` // clock ticks since boot, /proc/pid/stat field 22
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	CgroupPath  string            `json:"cgroup_path"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Config      *specs.Spec       `json:"config"`
	Owner       string            `json:"owner"`
}

// Report is the OCI state as `state` prints it, in runc's shape.
type Report struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      Status            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Owner       string            `json:"owner"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

var validID = regexp.MustCompile(`^[\w+\-.]+$`)

func checkID(id string) error {
	if id == "" || !validID.MatchString(id) || id == "." || id == ".." {
		return fmt.Errorf("invalid container id %q: %w", id, errdefs.ErrInvalidArgument)
	}
	return nil
}

func (r *Runtime) dir(id string) string { return filepath.Join(r.Root, id) }

// load reads the state of container id.
func (r *Runtime) load(id string) (*State, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	path := filepath.Join(r.dir(id), "state.json")
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("container %s does not exist: %w", id, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read state of %s: %w", id, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read state of %s: %w", id, err)
	}
	if st := r.memo.get(path, fi); st != nil {
		return st, nil
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read state of %s: %w", id, err)
	}
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("parse state of %s: %w", id, err)
	}
	r.memo.put(path, fi, &s)
	return &s, nil
}

// save writes st to state.json atomically (temp file, rename).
func (r *Runtime) save(st *State) error {
	path := filepath.Join(r.dir(st.ID), "state.json")
	if err := writeFileAtomic(path, st); err != nil {
		return err
	}
	if fi, err := os.Stat(path); err == nil {
		r.memo.put(path, fi, st)
	}
	return nil
}

// writeFileAtomic replaces path with v (JSON, or bytes as they are) by
// writing a temporary file beside it and renaming it over: a reader sees
// the old file or the new one, never a part. There is no fsync: this is
// runtime state, on /run, and meaningless after the reboot that losing
// unsynced data would take (runc does the same); on a disk-backed /run an
// fsync per container start cost milliseconds.
func writeFileAtomic(path string, v any) (err error) {
	var data []byte
	switch v := v.(type) {
	case []byte:
		data = v
	default:
		if data, err = json.Marshal(v); err != nil {
			return fmt.Errorf("encode %s: %w", path, err)
		}
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// status derives the container's status from the kernel, never from a
// cached field: the init process (checked by pid and start time, so a
// reused pid is not mistaken for it), the exec fifo and the freezer.
func (r *Runtime) status(st *State) Status {
	if st.Pid <= 0 || !alive(st.Pid, st.StartTime) {
		return Stopped
	}
	if _, err := os.Lstat(filepath.Join(r.dir(st.ID), "exec.fifo")); err == nil {
		return Created
	}
	if m, err := r.cgroup(st); err == nil {
		if frozen, err := m.Frozen(); err == nil && frozen {
			return Paused
		}
	}
	return Running
}

// State reports the OCI state of container id.
func (r *Runtime) State(id string) (*Report, error) {
	st, err := r.load(id)
	if err != nil {
		return nil, err
	}
	return r.report(st), nil
}

func (r *Runtime) report(st *State) *Report {
	status := r.status(st)
	pid := st.Pid
	if status == Stopped {
		pid = 0
	}
	return &Report{
		OCIVersion: specs.Version, ID: st.ID, Pid: pid, Status: status, Bundle: st.Bundle,
		Rootfs: st.Rootfs, Created: st.Created, Owner: st.Owner, Annotations: st.Annotations,
	}
}

// List reports every container under the state root, sorted by id.
func (r *Runtime) List() ([]*Report, error) {
	entries, err := os.ReadDir(r.Root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", r.Root, err)
	}
	var out []*Report
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		st, err := r.load(e.Name())
		if err != nil {
			continue // being created or removed right now
		}
		out = append(out, r.report(st))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// ociState is the state handed to hooks on stdin.
func (r *Runtime) ociState(st *State, status Status) specs.State {
	return specs.State{
		Version: specs.Version, ID: st.ID, Status: specs.ContainerState(status),
		Pid: st.Pid, Bundle: st.Bundle, Annotations: st.Annotations,
	}
}

// ProcessStartTime returns field 22 of /proc/pid/stat: the start time in
// clock ticks, which together with the pid names one process for good. A
// zombie counts as gone (fs.ErrNotExist).
func ProcessStartTime(pid int) (uint64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); the start time is field 22.
	if len(f) < 20 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	if f[0] == "Z" || f[0] == "X" {
		return 0, fmt.Errorf("process %d is a zombie: %w", pid, fs.ErrNotExist)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// alive reports whether pid still names the process that started at start.
func alive(pid int, start uint64) bool {
	got, err := ProcessStartTime(pid)
	return err == nil && got == start
}
