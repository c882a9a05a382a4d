package engine

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"
)

// What runs in a container (Top) and what it uses (Stats).

// Top lists the processes of a running container as `docker top` does:
// the host's ps(1) run with psArgs ("-ef" when empty), limited to the
// container's processes (ps -q<pids>, or every process filtered here
// when the arguments do not go with -q), in ps's own columns.
func (e *Engine) Top(ctx context.Context, ref string, psArgs string) (*container.TopResponse, error) {
	if psArgs == "" {
		psArgs = "-ef"
	}
	if err := validatePSArgs(psArgs); err != nil {
		return nil, err
	}
	c, err := e.Lookup(ctx, ref)
	if err != nil {
		return nil, err
	}
	st, err := e.state(c)
	if err != nil {
		return nil, err
	}
	switch st.Status {
	case "running", "paused":
	case "restarting":
		return nil, errorf(errdefs.ErrConflict, "Container %s is restarting, wait until the container is running", c.ID)
	default:
		return nil, errorf(errdefs.ErrConflict, "container %s is not running", c.ID)
	}
	rt, err := e.ociRuntime(c.HostConfig.Runtime)
	if err != nil {
		return nil, err
	}
	pids, err := rt.Pids(ctx, c.ID)
	if err != nil {
		return nil, fmt.Errorf("processes of container %s: %w", c.ID, err)
	}
	args := strings.Split(psArgs, " ")
	for _, a := range args {
		switch a {
		case "--no-header", "--no-headers", "--no-heading", "--no-headings",
			"--noheader", "--noheaders", "--noheading", "--noheadings":
			return nil, fmt.Errorf("option %s is not allowed", a)
		}
	}
	out, err := runPS(ctx, append(slices.Clone(args), psPidsArg(pids)))
	if err != nil {
		// Some ps options (BSD "f", say) do not go with -q: run ps on
		// every process and keep the container's.
		if out, err = runPS(ctx, args); err != nil {
			return nil, err
		}
	}
	top, err := parsePS(out, pids)
	if err != nil {
		return nil, err
	}
	e.containerEvent(ctx, c, "top", nil)
	return top, nil
}

func runPS(ctx context.Context, args []string) ([]byte, error) {
	out, err := exec.CommandContext(ctx, "ps", args...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			// ps's first line of complaint says why.
			if line, _, _ := bytes.Cut(ee.Stderr, []byte("\n")); len(line) > 0 {
				err = errors.New(string(line))
			}
		}
		return nil, fmt.Errorf("ps: %w", err)
	}
	return out, nil
}

// psRenamedPID finds a column renamed to PID... (ps -o user=PID), which
// would fool the search for the PID column.
var psRenamedPID = regexp.MustCompile(`\s+(\S*)=\s*(PID\S*)`)

// validatePSArgs refuses arguments that rename a column to PID, as
// Docker does.
func validatePSArgs(psArgs string) error {
	for _, m := range psRenamedPID.FindAllStringSubmatch(psArgs, -1) {
		if m[1] != "pid" {
			return errorf(errdefs.ErrInvalidArgument, "specifying \"%s=%s\" is not allowed", m[1], m[2])
		}
	}
	return nil
}

// psPidsArg is ps's process selection: -q1,2,3.
func psPidsArg(pids []int) string {
	s := make([]string, len(pids))
	for i, p := range pids {
		s[i] = strconv.Itoa(p)
	}
	return "-q" + strings.Join(s, ",")
}

// parsePS splits ps's output into its columns and keeps the rows of
// pids (and the thread rows, PID "-", that follow one of them: ps -m).
// Columns are cut where every line has a blank, so that a command with
// spaces in a column before the last stays one field; the last column
// takes the rest of the line.
func parsePS(out []byte, pids []int) (*container.TopResponse, error) {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	top := &container.TopResponse{Titles: strings.Fields(lines[0]), Processes: [][]string{}}
	pidIndex := slices.Index(top.Titles, "PID")
	if pidIndex < 0 {
		return nil, errors.New("Couldn't find PID field in ps output")
	}
	starts := columnStarts(lines)
	keep := false
	for _, line := range lines[1:] {
		if line == "" {
			continue
		}
		fields := make([]string, len(starts))
		for i, s := range starts {
			end := len(line)
			if i+1 < len(starts) && starts[i+1] < end {
				end = starts[i+1]
			}
			if s < end {
				fields[i] = strings.TrimSpace(line[s:end])
			}
		}
		if fields[pidIndex] == "-" {
			if keep {
				top.Processes = append(top.Processes, fields)
			}
			continue
		}
		p, err := strconv.Atoi(fields[pidIndex])
		if err != nil {
			return nil, fmt.Errorf("Unexpected pid '%s': %s", fields[pidIndex], err)
		}
		keep = slices.Contains(pids, p)
		if keep {
			top.Processes = append(top.Processes, fields)
		}
	}
	return top, nil
}

// columnStarts finds where each of the header's columns begins: for every
// title after the first, the blank nearest to its left (not before the
// previous title's end) at which no line has a character.
func columnStarts(lines []string) []int {
	idx := regexp.MustCompile(`\S+`).FindAllStringIndex(lines[0], -1)
	starts := make([]int, len(idx))
	for i := 1; i < len(idx); i++ {
		starts[i] = idx[i][0]
		for s := idx[i][0] - 1; s >= idx[i-1][1]; s-- {
			if blankAt(lines[1:], s) {
				starts[i] = s
				break
			}
		}
	}
	return starts
}

func blankAt(lines []string, i int) bool {
	for _, l := range lines {
		if len(l) > i && l[i] != ' ' && l[i] != '\t' {
			return false
		}
	}
	return true
}

// ContainerStats is one reading of a container's resource use, what
// `docker stats` shows. The CPU percentage takes two readings: the
// difference of CPUNanos over the time between them.
type ContainerStats struct {
	ID, Name string
	// Running is false for a stopped container: every figure is zero.
	Running bool
	Read    time.Time
	// CPUNanos is the CPU time the container has used in all.
	CPUNanos uint64
	// MemoryUsage leaves out the inactive page cache, as docker's CLI
	// does; MemoryLimit is the host's memory when the container has no
	// lower limit.
	MemoryUsage, MemoryLimit uint64
	// NetRx and NetTx are the bytes through the container's interfaces
	// but loopback.
	NetRx, NetTx          uint64
	BlockRead, BlockWrite uint64
	Pids                  uint64
}

// Stats reads a container's resource use from its cgroup (through the
// OCI runtime) and its network namespace (/proc/<init>/net/dev). A
// container that is not running reads as all zeros, as Docker reports
// it.
func (e *Engine) Stats(ctx context.Context, ref string) (ContainerStats, error) {
	c, err := e.Lookup(ctx, ref)
	if err != nil {
		return ContainerStats{}, err
	}
	s := ContainerStats{ID: c.ID, Name: c.Name, Read: time.Now()}
	st, err := e.state(c)
	if err != nil {
		return s, err
	}
	if st.Status != "running" && st.Status != "paused" {
		return s, nil
	}
	rt, err := e.ociRuntime(c.HostConfig.Runtime)
	if err != nil {
		return s, err
	}
	cs, err := rt.Stats(ctx, c.ID)
	if errdefs.IsNotFound(err) {
		return s, nil // it has just stopped
	}
	if err != nil {
		return s, fmt.Errorf("stats of container %s: %w", c.ID, err)
	}
	s.Running = true
	s.CPUNanos = cs.CPUNanos
	s.MemoryUsage, s.MemoryLimit = cs.MemoryUsage, cs.MemoryLimit
	if host := hostMemory(); host > 0 && (s.MemoryLimit == 0 || s.MemoryLimit > host) {
		s.MemoryLimit = host
	}
	s.BlockRead, s.BlockWrite = cs.BlockRead, cs.BlockWrite
	s.Pids = cs.PidsCurrent
	if !hostNetwork(c.HostConfig) && st.Pid > 0 {
		// The host's interfaces are not the container's: docker shows
		// no network for --network host.
		s.NetRx, s.NetTx = netDev(st.Pid)
	}
	return s, nil
}

// hostMemory is the host's total memory in bytes (MemTotal).
func hostMemory() uint64 {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) != nil {
		return 0
	}
	return uint64(si.Totalram) * uint64(si.Unit)
}

// netDev sums the received and sent bytes of the interfaces but lo in
// the network namespace of pid, from /proc/<pid>/net/dev:
//
//	Inter-|   Receive                            |  Transmit
//	 face |bytes    packets errs drop ... |bytes    packets ...
//	  eth0: 1296      16    0    0    ...   656       8  ...
func netDev(pid int) (rx, tx uint64) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/net/dev", pid))
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, counters, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(name) == "lo" {
			continue
		}
		fields := strings.Fields(counters)
		if len(fields) < 9 {
			continue
		}
		r, err1 := strconv.ParseUint(fields[0], 10, 64)
		t, err2 := strconv.ParseUint(fields[8], 10, 64)
		if err1 == nil && err2 == nil {
			rx += r
			tx += t
		}
	}
	return rx, tx
}
