package cgroup

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// validate checks r before anything is written: v1 has no unified map, the
// device rules must parse, and the controllers r needs must be mounted.
func (m *v1) validate(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if len(r.Unified) > 0 {
		return invalidf("linux.resources.unified needs cgroup v2, this host runs cgroup v1")
	}
	if _, err := parseDeviceRules(r.Devices); err != nil {
		return err
	}
	if mem := r.Memory; mem != nil && mem.Swappiness != nil && *mem.Swappiness > 100 {
		return invalidf("memory swappiness %d is above 100", *mem.Swappiness)
	}
	var need []string
	if len(r.Devices) > 0 {
		need = append(need, "devices")
	}
	if r.Memory != nil {
		need = append(need, "memory")
	}
	if c := r.CPU; c != nil {
		if c.Shares != nil || c.Quota != nil || c.Period != nil || c.Burst != nil || c.Idle != nil ||
			c.RealtimePeriod != nil || c.RealtimeRuntime != nil {
			need = append(need, "cpu")
		}
		if c.Cpus != "" || c.Mems != "" {
			need = append(need, "cpuset")
		}
	}
	if r.Pids != nil && r.Pids.Limit != nil {
		need = append(need, "pids")
	}
	if r.BlockIO != nil {
		need = append(need, "blkio")
	}
	if len(r.Rdma) > 0 {
		need = append(need, "rdma")
	}
	// A limit asked for and not applied is an error, as with runc: a
	// container must not run unconfined because the host lacks a
	// controller.
	if len(r.HugepageLimits) > 0 {
		need = append(need, "hugetlb")
	}
	if n := r.Network; n != nil && n.ClassID != nil {
		need = append(need, "net_cls")
	}
	if n := r.Network; n != nil && len(n.Priorities) > 0 {
		need = append(need, "net_prio")
	}
	for _, c := range need {
		if _, ok := m.dir(c); !ok {
			return notImplemented("the %s cgroup controller is not mounted", c)
		}
	}
	return nil
}

// Set writes r's resources into the hierarchies that hold them.
func (m *v1) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if err := m.validate(r); err != nil {
		return err
	}
	for _, set := range []func(*specs.LinuxResources) error{
		m.setCPUSet, m.setMemory, m.setCPU, m.setBlkio, m.setPids, m.setHugetlb, m.setNetwork, m.setRdma, m.setDevices,
	} {
		if err := set(r); err != nil {
			if errors.Is(err, unix.ENOENT) {
				if _, serr := os.Stat(m.pidsDir()); serr != nil {
					return fmt.Errorf("cgroup %s: %w", m.path, errdefs.ErrNotFound)
				}
			}
			return err
		}
	}
	return nil
}

func (m *v1) setCPUSet(r *specs.LinuxResources) error {
	if r.CPU == nil || (r.CPU.Cpus == "" && r.CPU.Mems == "") {
		return nil
	}
	dir, _ := m.dir("cpuset")
	if r.CPU.Cpus != "" {
		if err := writeFile(dir, "cpuset.cpus", r.CPU.Cpus); err != nil {
			return err
		}
	}
	if r.CPU.Mems != "" {
		return writeFile(dir, "cpuset.mems", r.CPU.Mems)
	}
	return nil
}

func (m *v1) setMemory(r *specs.LinuxResources) error {
	mem := r.Memory
	if mem == nil {
		return nil
	}
	dir, _ := m.dir("memory")
	var limit, swap int64
	if mem.Limit != nil {
		limit = *mem.Limit
	}
	if mem.Swap != nil {
		swap = *mem.Swap
	}
	hasSwap := exists(dir, "memory.memsw.limit_in_bytes")
	if !hasSwap {
		swap = 0 // no swap accounting in this kernel: nothing to limit
	} else if limit == -1 && swap == 0 {
		swap = -1 // unlimited memory with swap unset unlimits both
	}
	if mem.CheckBeforeUpdate != nil && *mem.CheckBeforeUpdate && limit > 0 {
		if err := checkUsage(dir, "memory.usage_in_bytes", limit); err != nil {
			return err
		}
	}
	if err := setLimitAndSwap(dir, limit, swap); err != nil {
		return err
	}
	if mem.Reservation != nil && *mem.Reservation != 0 {
		if err := writeFile(dir, "memory.soft_limit_in_bytes", strconv.FormatInt(*mem.Reservation, 10)); err != nil {
			return err
		}
	}
	for _, k := range []struct {
		v    *int64
		file string
	}{{mem.Kernel, "memory.kmem.limit_in_bytes"}, {mem.KernelTCP, "memory.kmem.tcp.limit_in_bytes"}} {
		if k.v == nil || *k.v == 0 || !exists(dir, k.file) {
			continue
		}
		// Kernels since 5.16 refuse or ignore kernel memory limits.
		if err := writeFile(dir, k.file, strconv.FormatInt(*k.v, 10)); err != nil &&
			!errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.ENOTSUP) {
			return err
		}
	}
	if mem.Swappiness != nil {
		if err := writeFile(dir, "memory.swappiness", strconv.FormatUint(*mem.Swappiness, 10)); err != nil {
			return err
		}
	}
	if mem.DisableOOMKiller != nil {
		v := "0"
		if *mem.DisableOOMKiller {
			v = "1"
		}
		if err := writeFile(dir, "memory.oom_control", v); err != nil {
			return err
		}
	}
	if mem.UseHierarchy != nil {
		v := "0"
		if *mem.UseHierarchy {
			v = "1"
		}
		if err := writeFile(dir, "memory.use_hierarchy", v); err != nil {
			return err
		}
	}
	return nil
}

// setLimitAndSwap writes memory.limit_in_bytes and
// memory.memsw.limit_in_bytes. The kernel insists that memsw >= limit at
// every moment, so when the new memsw is above the current limit it goes
// first, otherwise the limit goes first.
func setLimitAndSwap(dir string, limit, swap int64) error {
	writeLimit := func() error {
		if limit == 0 {
			return nil
		}
		return writeFile(dir, "memory.limit_in_bytes", strconv.FormatInt(limit, 10))
	}
	writeSwap := func() error {
		if swap == 0 {
			return nil
		}
		return writeFile(dir, "memory.memsw.limit_in_bytes", strconv.FormatInt(swap, 10))
	}
	if limit != 0 && swap != 0 {
		cur, err := readUint(dir, "memory.limit_in_bytes")
		if err != nil {
			return err
		}
		if swap == -1 || cur < uint64(swap) {
			if err := writeSwap(); err != nil {
				return err
			}
			return writeLimit()
		}
	}
	if err := writeLimit(); err != nil {
		return err
	}
	return writeSwap()
}

func (m *v1) setCPU(r *specs.LinuxResources) error {
	c := r.CPU
	if c == nil {
		return nil
	}
	dir, ok := m.dir("cpu")
	if !ok {
		return nil // validate made sure nothing here needs it
	}
	if c.Shares != nil && *c.Shares != 0 {
		if err := writeFile(dir, "cpu.shares", strconv.FormatUint(*c.Shares, 10)); err != nil {
			return err
		}
	}
	var period, quota string
	if c.Period != nil && *c.Period != 0 {
		period = strconv.FormatUint(*c.Period, 10)
	}
	if c.Quota != nil && *c.Quota != 0 {
		quota = strconv.FormatInt(*c.Quota, 10)
	}
	if err := writePair(dir, "cpu.cfs_period_us", period, "cpu.cfs_quota_us", quota); err != nil {
		return err
	}
	if c.Burst != nil {
		if err := writeFile(dir, "cpu.cfs_burst_us", strconv.FormatUint(*c.Burst, 10)); err != nil {
			return err
		}
	}
	period, quota = "", ""
	if c.RealtimePeriod != nil && *c.RealtimePeriod != 0 {
		period = strconv.FormatUint(*c.RealtimePeriod, 10)
	}
	if c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0 {
		quota = strconv.FormatInt(*c.RealtimeRuntime, 10)
	}
	if err := writePair(dir, "cpu.rt_period_us", period, "cpu.rt_runtime_us", quota); err != nil {
		return err
	}
	if c.Idle != nil {
		return writeFile(dir, "cpu.idle", strconv.FormatInt(*c.Idle, 10))
	}
	return nil
}

// writePair writes a period and the amount allowed in it (either may be
// empty: not set). The kernel checks each write against the other's current
// value, so when the period goes first and is refused, the amount goes
// first instead.
func writePair(dir, periodFile, period, amountFile, amount string) error {
	if period == "" {
		if amount == "" {
			return nil
		}
		return writeFile(dir, amountFile, amount)
	}
	if err := writeFile(dir, periodFile, period); err != nil {
		if amount == "" || !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.EBUSY) {
			return err
		}
		if err := writeFile(dir, amountFile, amount); err != nil {
			return err
		}
		return writeFile(dir, periodFile, period)
	}
	if amount == "" {
		return nil
	}
	return writeFile(dir, amountFile, amount)
}

// setBlkio writes weights to the CFQ files (blkio.weight) or, on kernels
// where BFQ replaced CFQ, to blkio.bfq.weight, as runc does; throttles go
// to blkio.throttle.*.
func (m *v1) setBlkio(r *specs.LinuxResources) error {
	b := r.BlockIO
	if b == nil {
		return nil
	}
	dir, _ := m.dir("blkio")
	weight, weightDevice := "blkio.weight", "blkio.weight_device"
	if !exists(dir, weight) && exists(dir, "blkio.bfq.weight") {
		weight, weightDevice = "blkio.bfq.weight", "blkio.bfq.weight_device"
	}
	if b.Weight != nil && *b.Weight != 0 {
		if err := writeFile(dir, weight, strconv.FormatUint(uint64(*b.Weight), 10)); err != nil {
			return err
		}
	}
	if b.LeafWeight != nil && *b.LeafWeight != 0 {
		if err := writeFile(dir, "blkio.leaf_weight", strconv.FormatUint(uint64(*b.LeafWeight), 10)); err != nil {
			return err
		}
	}
	for _, d := range b.WeightDevice {
		dev := fmt.Sprintf("%d:%d ", d.Major, d.Minor)
		if d.Weight != nil && *d.Weight != 0 {
			if err := writeFile(dir, weightDevice, dev+strconv.FormatUint(uint64(*d.Weight), 10)); err != nil {
				return err
			}
		}
		if d.LeafWeight != nil && *d.LeafWeight != 0 {
			if err := writeFile(dir, "blkio.leaf_weight_device", dev+strconv.FormatUint(uint64(*d.LeafWeight), 10)); err != nil {
				return err
			}
		}
	}
	for _, t := range []struct {
		file string
		devs []specs.LinuxThrottleDevice
	}{
		{"blkio.throttle.read_bps_device", b.ThrottleReadBpsDevice},
		{"blkio.throttle.write_bps_device", b.ThrottleWriteBpsDevice},
		{"blkio.throttle.read_iops_device", b.ThrottleReadIOPSDevice},
		{"blkio.throttle.write_iops_device", b.ThrottleWriteIOPSDevice},
	} {
		for _, d := range t.devs {
			if err := writeFile(dir, t.file, fmt.Sprintf("%d:%d %d", d.Major, d.Minor, d.Rate)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *v1) setPids(r *specs.LinuxResources) error {
	if r.Pids == nil || r.Pids.Limit == nil {
		return nil
	}
	dir, _ := m.dir("pids")
	v := "max"
	if *r.Pids.Limit > 0 {
		v = strconv.FormatInt(*r.Pids.Limit, 10)
	}
	return writeFile(dir, "pids.max", v)
}

func (m *v1) setHugetlb(r *specs.LinuxResources) error {
	dir, ok := m.dir("hugetlb")
	if !ok || len(r.HugepageLimits) == 0 {
		return nil
	}
	return writeHugetlb(dir, r.HugepageLimits, "limit_in_bytes")
}

// writeHugetlb writes each limit to hugetlb.<size>.<file> in dir and, where
// the kernel has reservation accounting, to hugetlb.<size>.rsvd.<file>.
func writeHugetlb(dir string, limits []specs.LinuxHugepageLimit, file string) error {
	sizes, err := hugePageSizes()
	if err != nil {
		return err
	}
	for _, h := range limits {
		if err := checkPageSize(h.Pagesize, sizes); err != nil {
			return err
		}
		v := strconv.FormatUint(h.Limit, 10)
		if rsvd := "hugetlb." + h.Pagesize + ".rsvd." + file; exists(dir, rsvd) {
			if err := writeFile(dir, rsvd, v); err != nil {
				return err
			}
		}
		if err := writeFile(dir, "hugetlb."+h.Pagesize+"."+file, v); err != nil {
			return err
		}
	}
	return nil
}

// setNetwork writes net_cls.classid and net_prio.ifpriomap (validate has
// made sure the controllers asked for are mounted).
func (m *v1) setNetwork(r *specs.LinuxResources) error {
	n := r.Network
	if n == nil {
		return nil
	}
	if dir, ok := m.dir("net_cls"); ok && n.ClassID != nil {
		if err := writeFile(dir, "net_cls.classid", strconv.FormatUint(uint64(*n.ClassID), 10)); err != nil {
			return err
		}
	}
	if dir, ok := m.dir("net_prio"); ok {
		for _, p := range n.Priorities {
			if p.Name == "" || strings.ContainsAny(p.Name, " \n") {
				return invalidf("network interface name %q", p.Name)
			}
			if err := writeFile(dir, "net_prio.ifpriomap", p.Name+" "+strconv.FormatUint(uint64(p.Priority), 10)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *v1) setRdma(r *specs.LinuxResources) error {
	if len(r.Rdma) == 0 {
		return nil
	}
	dir, _ := m.dir("rdma")
	return setRdma(dir, "rdma.max", r.Rdma)
}

// setDevices writes the rules in order to devices.allow and devices.deny,
// unless devices.list already holds what they would produce. Rewriting
// starts with "deny a", which the kernel refuses (EINVAL) once the cgroup
// has sub-cgroups.
func (m *v1) setDevices(r *specs.LinuxResources) error {
	if len(r.Devices) == 0 {
		return nil
	}
	dir, _ := m.dir("devices")
	rules, err := parseDeviceRules(r.Devices)
	if err != nil {
		return err
	}
	if cur, err := readFile(dir, "devices.list"); err == nil && allowListUnchanged(cur, rules) {
		return nil
	}
	for _, l := range v1Lines(rules) {
		if err := writeFile(dir, l[0], l[1]); err != nil {
			return err
		}
	}
	return nil
}
