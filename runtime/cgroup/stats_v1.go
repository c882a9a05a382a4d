package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/errdefs"
)

// clockTicks is USER_HZ, the unit of cpuacct.stat; it is 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// optUint reads a one-number file; a missing file is 0.
func optUint(dir, name string) (uint64, error) {
	v, err := readUint(dir, name)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	return v, err
}

// optKeyed reads a flat keyed file; a missing file is an empty map.
func optKeyed(dir, name string) (map[string]uint64, error) {
	m, err := readKeyed(dir, name)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]uint64{}, nil
	}
	return m, err
}

// optList reads a file of space-separated numbers (cpuacct.usage_percpu);
// a missing file is nil.
func optList(dir, name string) ([]uint64, error) {
	s, err := readFile(dir, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []uint64
	for _, f := range strings.Fields(s) {
		v, err := parseValue(f)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", filepath.Join(dir, name), err)
		}
		out = append(out, v)
	}
	return out, nil
}

// memoryEntry reads one v1 memory counter family: prefix.usage_in_bytes,
// prefix.max_usage_in_bytes, prefix.limit_in_bytes, prefix.failcnt.
func memoryEntry(dir, prefix string) (MemoryEntry, error) {
	var e MemoryEntry
	var err error
	for _, f := range []struct {
		name string
		dst  *uint64
	}{
		{"usage_in_bytes", &e.Usage}, {"max_usage_in_bytes", &e.Max},
		{"limit_in_bytes", &e.Limit}, {"failcnt", &e.Failcnt},
	} {
		if *f.dst, err = optUint(dir, prefix+"."+f.name); err != nil {
			return e, err
		}
	}
	return e, nil
}

// blkioEntries parses a v1 blkio file ("8:0 Read 4096" lines; the closing
// "Total N" line is skipped). A missing file gives nil.
func blkioEntries(dir, name string) ([]BlkioEntry, error) {
	s, err := readFile(dir, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []BlkioEntry
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 && len(f) != 2 {
			continue
		}
		majMin, op, val := f[0], "", f[len(f)-1]
		if len(f) == 3 {
			op = f[1]
		}
		maj, min, ok := parseDev(majMin)
		if !ok {
			continue // "Total N"
		}
		v, err := strconv.ParseUint(val, 10, 64)
		if err != nil {
			continue
		}
		out = append(out, BlkioEntry{Major: maj, Minor: min, Op: op, Value: v})
	}
	return out, nil
}

// parseDev parses "major:minor".
func parseDev(s string) (uint64, uint64, bool) {
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, false
	}
	maj, err1 := strconv.ParseUint(a, 10, 64)
	min, err2 := strconv.ParseUint(b, 10, 64)
	return maj, min, err1 == nil && err2 == nil
}

// Stats reads the counters of the cgroup's v1 hierarchies.
func (m *v1) Stats() (*Stats, error) {
	if _, err := os.Stat(m.pidsDir()); err != nil {
		return nil, m.notFound()
	}
	st := &Stats{Hugetlb: map[string]Hugetlb{}}
	var err error
	if dir, ok := m.dir("cpuacct"); ok {
		u := &st.CPU.Usage
		if u.Total, err = optUint(dir, "cpuacct.usage"); err != nil {
			return nil, err
		}
		for _, l := range []struct {
			name string
			dst  *[]uint64
		}{
			{"cpuacct.usage_percpu", &u.Percpu}, {"cpuacct.usage_percpu_sys", &u.PercpuKernel},
			{"cpuacct.usage_percpu_user", &u.PercpuUser},
		} {
			if *l.dst, err = optList(dir, l.name); err != nil {
				return nil, err
			}
		}
		if exists(dir, "cpuacct.usage_user") {
			if u.User, err = optUint(dir, "cpuacct.usage_user"); err != nil {
				return nil, err
			}
			if u.Kernel, err = optUint(dir, "cpuacct.usage_sys"); err != nil {
				return nil, err
			}
		} else {
			ticks, err := optKeyed(dir, "cpuacct.stat")
			if err != nil {
				return nil, err
			}
			u.User = ticks["user"] * (1e9 / clockTicks)
			u.Kernel = ticks["system"] * (1e9 / clockTicks)
		}
	}
	if dir, ok := m.dir("cpu"); ok {
		s, err := optKeyed(dir, "cpu.stat")
		if err != nil {
			return nil, err
		}
		st.CPU.Throttling = Throttling{Periods: s["nr_periods"], ThrottledPeriods: s["nr_throttled"], ThrottledTime: s["throttled_time"]}
	}
	if dir, ok := m.dir("memory"); ok {
		mem := &st.Memory
		if mem.Raw, err = optKeyed(dir, "memory.stat"); err != nil {
			return nil, err
		}
		mem.Cache = mem.Raw["cache"]
		for _, e := range []struct {
			prefix string
			dst    *MemoryEntry
		}{
			{"memory", &mem.Usage}, {"memory.memsw", &mem.Swap},
			{"memory.kmem", &mem.Kernel}, {"memory.kmem.tcp", &mem.KernelTCP},
		} {
			if *e.dst, err = memoryEntry(dir, e.prefix); err != nil {
				return nil, err
			}
		}
	}
	if dir, ok := m.dir("pids"); ok {
		if st.Pids, err = readPidsStats(dir); err != nil {
			return nil, err
		}
	}
	if dir, ok := m.dir("blkio"); ok {
		if err := readBlkioV1(dir, &st.Blkio); err != nil {
			return nil, err
		}
	}
	if dir, ok := m.dir("hugetlb"); ok {
		sizes, err := hugePageSizes()
		if err != nil {
			return nil, err
		}
		for _, size := range sizes {
			e, err := memoryEntry(dir, "hugetlb."+size)
			if err != nil {
				return nil, err
			}
			st.Hugetlb[size] = Hugetlb{Usage: e.Usage, Max: e.Max, Failcnt: e.Failcnt}
		}
	}
	return st, nil
}

// notFound is the error for a cgroup that does not exist.
func (m *v1) notFound() error {
	return fmt.Errorf("cgroup %s: %w", m.path, errdefs.ErrNotFound)
}

// readBlkioV1 reads the recursive blkio counters: CFQ's when the kernel
// has them, else BFQ's, else the throttling layer's (which every kernel has).
func readBlkioV1(dir string, b *Blkio) error {
	prefix := "blkio."
	switch {
	case exists(dir, "blkio.io_service_bytes_recursive"):
	case exists(dir, "blkio.bfq.io_service_bytes_recursive"):
		prefix = "blkio.bfq."
	default:
		prefix = "blkio.throttle."
	}
	files := []struct {
		name string
		dst  *[]BlkioEntry
	}{
		{"io_service_bytes_recursive", &b.IoServiceBytesRecursive},
		{"io_serviced_recursive", &b.IoServicedRecursive},
	}
	if prefix != "blkio.throttle." {
		files = append(files, []struct {
			name string
			dst  *[]BlkioEntry
		}{
			{"io_queued_recursive", &b.IoQueuedRecursive},
			{"io_service_time_recursive", &b.IoServiceTimeRecursive},
			{"io_wait_time_recursive", &b.IoWaitTimeRecursive},
			{"io_merged_recursive", &b.IoMergedRecursive},
			{"time_recursive", &b.IoTimeRecursive},
			{"sectors_recursive", &b.SectorsRecursive},
		}...)
	}
	for _, f := range files {
		var err error
		if *f.dst, err = blkioEntries(dir, prefix+f.name); err != nil {
			return err
		}
	}
	return nil
}

// readPidsStats reads pids.current and pids.max ("max" is reported as 0,
// no limit, as runc does).
func readPidsStats(dir string) (Pids, error) {
	var p Pids
	var err error
	if p.Current, err = optUint(dir, "pids.current"); err != nil {
		return p, err
	}
	s, err := readFile(dir, "pids.max")
	if errors.Is(err, fs.ErrNotExist) {
		return p, nil
	}
	if err != nil {
		return p, err
	}
	if s != "max" {
		if p.Limit, err = parseValue(s); err != nil {
			return p, err
		}
	}
	return p, nil
}
