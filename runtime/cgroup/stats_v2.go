package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/errdefs"
)

// Stats reads the cgroup's v2 counters. Files of controllers that are not
// enabled are skipped. CPU times are converted from microseconds to
// nanoseconds; per-CPU usage does not exist on v2.
func (m *v2) Stats() (*Stats, error) {
	if _, err := os.Stat(m.dir); err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", m.path, errdefs.ErrNotFound)
	}
	st := &Stats{Hugetlb: map[string]Hugetlb{}}
	cpu, err := optKeyed(m.dir, "cpu.stat")
	if err != nil {
		return nil, err
	}
	st.CPU.Usage = CPUUsage{Total: cpu["usage_usec"] * 1000, User: cpu["user_usec"] * 1000, Kernel: cpu["system_usec"] * 1000}
	st.CPU.Throttling = Throttling{Periods: cpu["nr_periods"], ThrottledPeriods: cpu["nr_throttled"], ThrottledTime: cpu["throttled_usec"] * 1000}

	if exists(m.dir, "memory.current") {
		if err := m.memoryStats(&st.Memory); err != nil {
			return nil, err
		}
	}
	if st.Pids, err = readPidsStats(m.dir); err != nil {
		return nil, err
	}
	if err := m.ioStats(&st.Blkio); err != nil {
		return nil, err
	}
	sizes, err := hugePageSizes()
	if err != nil {
		return nil, err
	}
	for _, size := range sizes {
		if !exists(m.dir, "hugetlb."+size+".current") {
			continue
		}
		var h Hugetlb
		if h.Usage, err = optUint(m.dir, "hugetlb."+size+".current"); err != nil {
			return nil, err
		}
		ev, err := optKeyed(m.dir, "hugetlb."+size+".events")
		if err != nil {
			return nil, err
		}
		h.Failcnt = ev["max"]
		st.Hugetlb[size] = h
	}
	return st, nil
}

// memoryStats fills mem the way runc does on v2: cache is memory.stat's
// "file", and swap counts memory+swap so that it compares with v1's memsw.
func (m *v2) memoryStats(mem *Memory) error {
	var err error
	if mem.Raw, err = optKeyed(m.dir, "memory.stat"); err != nil {
		return err
	}
	mem.Cache = mem.Raw["file"]
	u := &mem.Usage
	if u.Usage, err = optUint(m.dir, "memory.current"); err != nil {
		return err
	}
	if u.Limit, err = optUint(m.dir, "memory.max"); err != nil {
		return err
	}
	if u.Max, err = optUint(m.dir, "memory.peak"); err != nil {
		return err
	}
	ev, err := optKeyed(m.dir, "memory.events")
	if err != nil {
		return err
	}
	u.Failcnt = ev["max"]
	if !exists(m.dir, "memory.swap.current") {
		return nil
	}
	s := &mem.Swap
	if s.Usage, err = optUint(m.dir, "memory.swap.current"); err != nil {
		return err
	}
	if s.Limit, err = optUint(m.dir, "memory.swap.max"); err != nil {
		return err
	}
	s.Usage += u.Usage
	if s.Limit != math.MaxUint64 && u.Limit != math.MaxUint64 {
		s.Limit += u.Limit
	} else {
		s.Limit = math.MaxUint64
	}
	sev, err := optKeyed(m.dir, "memory.swap.events")
	if err != nil {
		return err
	}
	s.Failcnt = sev["max"]
	return nil
}

// ioStats parses io.stat ("8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0
// dios=0" per device) into bytes and operations per device, as runc does.
func (m *v2) ioStats(b *Blkio) error {
	s, err := readFile(m.dir, "io.stat")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		maj, min, ok := parseDev(f[0])
		if !ok {
			continue
		}
		for _, kv := range f[1:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				continue
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				continue
			}
			e := BlkioEntry{Major: maj, Minor: min, Value: n}
			switch k {
			case "rbytes", "rios":
				e.Op = "Read"
			case "wbytes", "wios":
				e.Op = "Write"
			case "dbytes", "dios":
				e.Op = "Discard"
			default:
				continue
			}
			if strings.HasSuffix(k, "bytes") {
				b.IoServiceBytesRecursive = append(b.IoServiceBytesRecursive, e)
			} else {
				b.IoServicedRecursive = append(b.IoServicedRecursive, e)
			}
		}
	}
	return nil
}
