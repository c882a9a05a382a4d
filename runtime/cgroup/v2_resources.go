package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// validateV2 checks r before anything is written, so that a bad spec
// leaves no half-configured cgroup behind.
func validateV2(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if c := r.CPU; c != nil && ((c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0) ||
		(c.RealtimePeriod != nil && *c.RealtimePeriod != 0)) {
		return notImplemented("cpu realtime runtime/period on cgroup v2 (the kernel has no RT group scheduling there)")
	}
	if _, err := parseDeviceRules(r.Devices); err != nil {
		return err
	}
	for k := range r.Unified {
		if err := checkUnifiedKey(k); err != nil {
			return err
		}
	}
	if m := r.Memory; m != nil && m.Swap != nil && m.Limit != nil {
		if _, err := swapToV2(*m.Swap, *m.Limit); err != nil {
			return err
		}
	}
	return nil
}

// Set writes r's resources, cpuset first and the raw unified map last (so
// that it can override any conversion). Fields that v2 has no file for are
// ignored, as runc ignores them: memory kernel, kernelTCP, swappiness,
// disableOOMKiller, blockIO leafWeight and network classID/priorities.
func (m *v2) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if err := validateV2(r); err != nil {
		return err
	}
	if _, err := os.Stat(m.dir); err != nil {
		return fmt.Errorf("cgroup %s: %w", m.path, errdefs.ErrNotFound)
	}
	for _, set := range []func(*specs.LinuxResources) error{
		m.setCPUSet, m.setMemory, m.setCPU, m.setIO, m.setPids, m.setHugetlb, m.setRdma,
	} {
		if err := set(r); err != nil {
			return err
		}
	}
	if len(r.Devices) > 0 {
		rules, _ := parseDeviceRules(r.Devices)
		if err := setDevicesV2(m.dir, rules); err != nil {
			return err
		}
	}
	keys := make([]string, 0, len(r.Unified))
	for k := range r.Unified {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := writeFile(m.dir, k, r.Unified[k]); err != nil {
			return err
		}
	}
	return nil
}

func (m *v2) setCPUSet(r *specs.LinuxResources) error {
	if r.CPU == nil {
		return nil
	}
	if r.CPU.Cpus != "" {
		if err := writeFile(m.dir, "cpuset.cpus", r.CPU.Cpus); err != nil {
			return err
		}
	}
	if r.CPU.Mems != "" {
		return writeFile(m.dir, "cpuset.mems", r.CPU.Mems)
	}
	return nil
}

func (m *v2) setMemory(r *specs.LinuxResources) error {
	mem := r.Memory
	if mem == nil {
		return nil
	}
	var limit int64
	if mem.Limit != nil {
		limit = *mem.Limit
	}
	if mem.CheckBeforeUpdate != nil && *mem.CheckBeforeUpdate && limit > 0 {
		if err := checkUsage(m.dir, "memory.current", limit); err != nil {
			return err
		}
	}
	if mem.Swap != nil || limit == -1 {
		var swap int64
		if mem.Swap != nil {
			swap = *mem.Swap
		}
		swapLimit := limit
		if mem.Limit == nil && swap > 0 {
			// An update of the swap alone: convert against the
			// current memory limit, as runc update does.
			cur, err := readUint(m.dir, "memory.max")
			if err != nil {
				return err
			}
			swapLimit = -1
			if cur != math.MaxUint64 {
				swapLimit = int64(cur)
			}
		}
		v, err := swapToV2(swap, swapLimit)
		if err != nil {
			return err
		}
		switch {
		case !exists(m.dir, "memory.swap.max"):
			// No swap accounting in this kernel: nothing to limit.
		case v != 0 || (mem.Swap != nil && *mem.Swap > 0):
			// 0 from a real conversion (swap == limit) means "no swap".
			if err := writeFile(m.dir, "memory.swap.max", limitString(v)); err != nil {
				return err
			}
		}
	}
	if mem.Limit != nil && limit != 0 {
		if err := writeFile(m.dir, "memory.max", limitString(limit)); err != nil {
			return err
		}
	}
	if mem.Reservation != nil && *mem.Reservation != 0 {
		if err := writeFile(m.dir, "memory.low", limitString(*mem.Reservation)); err != nil {
			return err
		}
	}
	return nil
}

// checkUsage refuses a memory limit below the current usage (the spec's
// checkBeforeUpdate).
func checkUsage(dir, file string, limit int64) error {
	usage, err := readUint(dir, file)
	if err != nil {
		return err
	}
	if usage >= uint64(limit) {
		return fmt.Errorf("memory limit %d is below the current usage %d: %w", limit, usage, errdefs.ErrFailedPrecondition)
	}
	return nil
}

func (m *v2) setCPU(r *specs.LinuxResources) error {
	c := r.CPU
	if c == nil {
		return nil
	}
	idle := c.Idle != nil && *c.Idle != 0
	if c.Idle != nil {
		if err := writeFile(m.dir, "cpu.idle", strconv.FormatInt(*c.Idle, 10)); err != nil {
			return err
		}
	}
	if c.Shares != nil && *c.Shares != 0 && !idle {
		w := sharesToWeight(*c.Shares)
		if err := writeFile(m.dir, "cpu.weight", strconv.FormatUint(w, 10)); err != nil {
			return err
		}
	}
	if (c.Quota != nil && *c.Quota != 0) || (c.Period != nil && *c.Period != 0) {
		v := "max"
		if c.Quota != nil && *c.Quota > 0 {
			v = strconv.FormatInt(*c.Quota, 10)
		}
		if c.Period != nil && *c.Period != 0 {
			v += " " + strconv.FormatUint(*c.Period, 10)
		}
		err := writeFile(m.dir, "cpu.max", v)
		if err != nil && c.Burst != nil {
			// A lower quota may be refused while the old burst exceeds
			// it: set the burst first and retry.
			if writeFile(m.dir, "cpu.max.burst", strconv.FormatUint(*c.Burst, 10)) == nil {
				err = writeFile(m.dir, "cpu.max", v)
			}
		}
		if err != nil {
			return err
		}
	}
	if c.Burst != nil {
		return writeFile(m.dir, "cpu.max.burst", strconv.FormatUint(*c.Burst, 10))
	}
	return nil
}

// setIO writes the block I/O weight to io.bfq.weight when the BFQ scheduler
// offers it (it takes v1's 1..1000 range as is), otherwise converts it for
// io.weight; per-device weights go the same way; throttles go to io.max.
func (m *v2) setIO(r *specs.LinuxResources) error {
	b := r.BlockIO
	if b == nil {
		return nil
	}
	bfq := exists(m.dir, "io.bfq.weight")
	if b.Weight != nil && *b.Weight != 0 {
		var err error
		if bfq {
			err = writeFile(m.dir, "io.bfq.weight", strconv.FormatUint(uint64(*b.Weight), 10))
		} else {
			err = writeFile(m.dir, "io.weight", strconv.FormatUint(blkioToIOWeight(*b.Weight), 10))
		}
		if err != nil {
			return err
		}
	}
	for _, d := range b.WeightDevice {
		if d.Weight == nil || *d.Weight == 0 {
			continue
		}
		dev := fmt.Sprintf("%d:%d ", d.Major, d.Minor)
		var err error
		if bfq {
			err = writeFile(m.dir, "io.bfq.weight", dev+strconv.FormatUint(uint64(*d.Weight), 10))
		} else {
			err = writeFile(m.dir, "io.weight", dev+strconv.FormatUint(blkioToIOWeight(*d.Weight), 10))
		}
		if err != nil {
			return err
		}
	}
	for _, t := range []struct {
		key  string
		devs []specs.LinuxThrottleDevice
	}{
		{"rbps", b.ThrottleReadBpsDevice}, {"wbps", b.ThrottleWriteBpsDevice},
		{"riops", b.ThrottleReadIOPSDevice}, {"wiops", b.ThrottleWriteIOPSDevice},
	} {
		for _, d := range t.devs {
			v := "max"
			if d.Rate != 0 {
				v = strconv.FormatUint(d.Rate, 10)
			}
			if err := writeFile(m.dir, "io.max", fmt.Sprintf("%d:%d %s=%s", d.Major, d.Minor, t.key, v)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *v2) setPids(r *specs.LinuxResources) error {
	if r.Pids == nil || r.Pids.Limit == nil {
		return nil
	}
	v := "max"
	if *r.Pids.Limit > 0 {
		v = strconv.FormatInt(*r.Pids.Limit, 10)
	}
	return writeFile(m.dir, "pids.max", v)
}

// setHugetlb writes hugetlb.<size>.max and, where the kernel has
// reservation accounting, hugetlb.<size>.rsvd.max too. Without the hugetlb
// controller the limits are refused, as on v1.
func (m *v2) setHugetlb(r *specs.LinuxResources) error {
	if len(r.HugepageLimits) == 0 {
		return nil
	}
	have, err := readFile(m.dir, "cgroup.controllers")
	if err != nil {
		return err
	}
	if !slices.Contains(strings.Fields(have), "hugetlb") {
		// As on v1: a limit that cannot be applied is refused.
		return notImplemented("hugepage limits: the hugetlb cgroup controller is not available")
	}
	return writeHugetlb(m.dir, r.HugepageLimits, "max")
}

func (m *v2) setRdma(r *specs.LinuxResources) error {
	return setRdma(m.dir, "rdma.max", r.Rdma)
}

// setRdma writes one "<device> hca_handle=N hca_object=M" line per device
// (v1 and v2 share the format).
func setRdma(dir, file string, rdma map[string]specs.LinuxRdma) error {
	devs := make([]string, 0, len(rdma))
	for d := range rdma {
		devs = append(devs, d)
	}
	sort.Strings(devs)
	for _, d := range devs {
		l := rdma[d]
		if strings.ContainsAny(d, " \n") {
			return invalidf("rdma device %q", d)
		}
		line := d
		if l.HcaHandles != nil {
			line += " hca_handle=" + strconv.FormatUint(uint64(*l.HcaHandles), 10)
		}
		if l.HcaObjects != nil {
			line += " hca_object=" + strconv.FormatUint(uint64(*l.HcaObjects), 10)
		}
		if line == d {
			continue
		}
		if err := writeFile(dir, file, line); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("%w: %w", err, errdefs.ErrNotImplemented)
			}
			return err
		}
	}
	return nil
}
