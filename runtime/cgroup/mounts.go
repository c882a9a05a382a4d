package cgroup

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/berth-dev/berth/errdefs"
)

// hierarchy is one mounted cgroup hierarchy.
type hierarchy struct {
	// controllers lists the v1 controllers bound to the hierarchy ("cpu",
	// "cpuacct", ...); empty for a named hierarchy and for cgroup2.
	controllers []string
	// name is the name of a named v1 hierarchy ("name=systemd").
	name string
	// v2 marks a cgroup2 mount.
	v2 bool
	// mountpoint is where the hierarchy is mounted; root is the cgroup
	// that the mount shows at its mountpoint (mountinfo field 4).
	mountpoint, root string
}

// dir returns the directory of the cgroup p in the hierarchy.
func (h *hierarchy) dir(p string) string {
	if h.root != "/" {
		if rest, ok := strings.CutPrefix(p, h.root); ok && (rest == "" || rest[0] == '/') {
			p = rest
		}
	}
	return filepath.Join(h.mountpoint, p)
}

// has reports whether the v1 hierarchy carries controller c.
func (h *hierarchy) has(c string) bool {
	for _, x := range h.controllers {
		if x == c {
			return true
		}
	}
	return false
}

// mountTable is what the host's cgroup mounts look like.
type mountTable struct {
	v1 []hierarchy // each v1 hierarchy once, in mountinfo order
	v2 *hierarchy  // the cgroup2 mount, if any
}

// unified reports whether cgroup2 is mounted and no v1 hierarchy carries a
// controller.
func (t *mountTable) unified() bool {
	if t.v2 == nil {
		return false
	}
	for _, h := range t.v1 {
		if len(h.controllers) > 0 {
			return false
		}
	}
	return true
}

// hostMounts reads /proc/self/mountinfo once per process: the mode of the
// host does not change while berth runs.
var hostMounts = sync.OnceValues(func() (*mountTable, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	defer f.Close()
	t, err := parseMountinfo(bufio.NewScanner(f), knownControllers())
	if err != nil {
		return nil, err
	}
	if t.v2 == nil && len(t.v1) == 0 {
		return nil, fmt.Errorf("no cgroup filesystem mounted: %w", errdefs.ErrUnavailable)
	}
	return t, nil
})

// knownControllers returns the v1 controller names the kernel knows, from
// /proc/cgroups, falling back to a fixed list.
func knownControllers() map[string]bool {
	known := map[string]bool{}
	if b, err := os.ReadFile("/proc/cgroups"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 0 && !strings.HasPrefix(f[0], "#") {
				known[f[0]] = true
			}
		}
	}
	if len(known) == 0 {
		for _, c := range []string{"cpuset", "cpu", "cpuacct", "blkio", "memory", "devices",
			"freezer", "net_cls", "perf_event", "net_prio", "hugetlb", "pids", "rdma", "misc"} {
			known[c] = true
		}
	}
	return known
}

// parseMountinfo collects the cgroup and cgroup2 mounts of a mountinfo file.
// A v1 hierarchy mounted twice (bind mounts) is kept once, by device number.
func parseMountinfo(sc *bufio.Scanner, known map[string]bool) (*mountTable, error) {
	t := &mountTable{}
	seen := map[string]bool{}
	for sc.Scan() {
		line := sc.Text()
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		pf, sf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(sf) < 3 {
			continue
		}
		h := hierarchy{root: unescape(pf[3]), mountpoint: unescape(pf[4])}
		switch sf[0] {
		case "cgroup2":
			h.v2 = true
			// Prefer the conventional mountpoint when cgroup2 shows up
			// more than once.
			if t.v2 == nil || h.mountpoint == "/sys/fs/cgroup" {
				t.v2 = &h
			}
		case "cgroup":
			if seen[pf[2]] {
				continue
			}
			seen[pf[2]] = true
			for _, o := range strings.Split(sf[2], ",") {
				switch {
				case strings.HasPrefix(o, "name="):
					h.name = o
				case known[o]:
					h.controllers = append(h.controllers, o)
				}
			}
			if h.name == "" && len(h.controllers) == 0 {
				continue
			}
			t.v1 = append(t.v1, h)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	return t, nil
}

// unescape undoes mountinfo's octal escapes (\040 for a space, ...).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ownCgroups parses /proc/self/cgroup: hierarchy key ("cpu,cpuacct",
// "name=systemd", "" for cgroup2) to the caller's cgroup path.
func ownCgroups() (map[string]string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("read own cgroup: %w", err)
	}
	return parseProcCgroup(string(b)), nil
}

// parseProcCgroup parses the contents of /proc/<pid>/cgroup.
func parseProcCgroup(s string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		m[parts[1]] = parts[2]
	}
	return m
}
