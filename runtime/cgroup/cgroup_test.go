package cgroup

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func u64(v uint64) *uint64 { return &v }
func u16(v uint16) *uint16 { return &v }
func boolp(v bool) *bool   { return &v }

func TestMode(t *testing.T) {
	tab, err := hostMounts()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Unified() = %v; v2 mount %+v; %d v1 hierarchies", Unified(), tab.v2, len(tab.v1))
	if b, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		if !Unified() {
			t.Errorf("/sys/fs/cgroup is cgroup2 (controllers %q) but Unified() = false", b)
		}
	} else if Unified() {
		t.Errorf("Unified() = true but /sys/fs/cgroup/cgroup.controllers: %v", err)
	}
}

// TestResources creates a cgroup with every common resource set, reads the
// kernel's files back, updates some of them with Set and reads them again.
func TestResources(t *testing.T) {
	m := newManager(t)
	_, isV2 := m.(*v2)
	r := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: i64(64 << 20), Reservation: i64(32 << 20), Swap: i64(128 << 20)},
		CPU:    &specs.LinuxCPU{Shares: u64(512), Quota: i64(50000), Period: u64(100000), Burst: u64(10000), Cpus: "0", Mems: "0"},
		Pids:   &specs.LinuxPids{Limit: i64(50)},
		Devices: []specs.LinuxDeviceCgroup{
			{Allow: false, Access: "rwm"},
			{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"},
			{Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "r"},
		},
	}
	maj, min, haveDisk := blockDevice()
	if haveDisk && hasController(t, m, map[bool]string{false: "blkio", true: "io"}[isV2]) {
		r.BlockIO = &specs.LinuxBlockIO{
			ThrottleReadBpsDevice:   []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: maj, Minor: min}, Rate: 1 << 20}},
			ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: maj, Minor: min}, Rate: 300}},
		}
	} else {
		t.Log("no block device or blkio/io controller: block I/O throttling not tested")
	}
	sizes, _ := hugePageSizes()
	hugetlb := hasController(t, m, "hugetlb") && slices.Contains(sizes, "2MB")
	if hugetlb {
		r.HugepageLimits = []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}}
	} else {
		t.Log("no hugetlb controller or 2MB pages: hugetlb not tested")
	}
	if err := m.Create(r); err != nil {
		t.Fatalf("Create: %v", err)
	}

	check := func(c, name, want string) {
		t.Helper()
		if got := file(t, m, c, name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	contains := func(c, name, want string) {
		t.Helper()
		if got := file(t, m, c, name); !strings.Contains(got, want) {
			t.Errorf("%s = %q, want it to contain %q", name, got, want)
		}
	}
	if !exists(ctrlDir(t, m, "memory"), map[bool]string{false: "memory.memsw.limit_in_bytes", true: "memory.swap.max"}[isV2]) {
		t.Log("no swap accounting: swap limits not tested")
	}
	if isV2 {
		check("memory", "memory.max", "67108864")
		check("memory", "memory.low", "33554432")
		if exists(ctrlDir(t, m, "memory"), "memory.swap.max") {
			check("memory", "memory.swap.max", "67108864") // 128M memory+swap - 64M memory
		}
		check("cpu", "cpu.weight", strconv.FormatUint(sharesToWeight(512), 10))
		check("cpu", "cpu.max", "50000 100000")
		check("cpu", "cpu.max.burst", "10000")
		check("cpuset", "cpuset.cpus", "0")
		check("cpuset", "cpuset.mems", "0")
		check("pids", "pids.max", "50")
		if r.BlockIO != nil {
			contains("io", "io.max", fmt.Sprintf("%d:%d rbps=1048576 wbps=max riops=max wiops=300", maj, min))
		}
		if hugetlb {
			check("hugetlb", "hugetlb.2MB.max", "4194304")
		}
	} else {
		check("memory", "memory.limit_in_bytes", "67108864")
		check("memory", "memory.soft_limit_in_bytes", "33554432")
		if exists(ctrlDir(t, m, "memory"), "memory.memsw.limit_in_bytes") {
			check("memory", "memory.memsw.limit_in_bytes", "134217728")
		}
		check("cpu", "cpu.shares", "512")
		check("cpu", "cpu.cfs_quota_us", "50000")
		check("cpu", "cpu.cfs_period_us", "100000")
		check("cpu", "cpu.cfs_burst_us", "10000")
		check("cpuset", "cpuset.cpus", "0")
		check("cpuset", "cpuset.mems", "0")
		check("pids", "pids.max", "50")
		check("devices", "devices.list", "c 1:3 rwm\nc 1:5 r")
		if r.BlockIO != nil {
			check("blkio", "blkio.throttle.read_bps_device", fmt.Sprintf("%d:%d 1048576", maj, min))
			check("blkio", "blkio.throttle.write_iops_device", fmt.Sprintf("%d:%d 300", maj, min))
		}
		if hugetlb {
			check("hugetlb", "hugetlb.2MB.limit_in_bytes", "4194304")
		}
	}

	// Block I/O weight, where the kernel has a weight file (CFQ/BFQ on
	// v1, io.cost or BFQ on v2).
	weightFiles := map[string]string{
		"blkio.weight": "500", "blkio.bfq.weight": "500", "io.bfq.weight": "default 500", "io.weight": "default 4950",
	}
	weighted := false
	for _, f := range []string{"blkio.weight", "blkio.bfq.weight", "io.bfq.weight", "io.weight"} {
		c := map[bool]string{false: "blkio", true: "io"}[isV2]
		if !hasController(t, m, c) || !exists(ctrlDir(t, m, c), f) {
			continue
		}
		if err := m.Set(&specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: u16(500)}}); err != nil {
			t.Fatalf("Set(blockIO weight): %v", err)
		}
		check(c, f, weightFiles[f])
		weighted = true
		break
	}
	if !weighted {
		t.Log("no block I/O weight file: weight not tested")
	}

	// A write the kernel refuses names the file.
	err := m.Set(&specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "4095"}})
	if err == nil || !strings.Contains(err.Error(), "write ") || !strings.Contains(err.Error(), "cpuset.cpus") {
		t.Errorf("Set(cpus 4095) = %v, want a write error naming cpuset.cpus", err)
	}

	// runc update: raise memory, lower pids, change the CPU quota.
	upd := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: i64(96 << 20), Swap: i64(192 << 20), CheckBeforeUpdate: boolp(true)},
		CPU:    &specs.LinuxCPU{Quota: i64(20000), Period: u64(50000)},
		Pids:   &specs.LinuxPids{Limit: i64(-1)},
	}
	if err := m.Set(upd); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if isV2 {
		check("memory", "memory.max", "100663296")
		check("cpu", "cpu.max", "20000 50000")
		check("pids", "pids.max", "max")
	} else {
		check("memory", "memory.limit_in_bytes", "100663296")
		check("cpu", "cpu.cfs_quota_us", "20000")
		check("pids", "pids.max", "max")
	}
	// An update of the swap alone converts against the current limit.
	if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Swap: i64(160 << 20)}}); err != nil {
		t.Fatalf("Set(swap only): %v", err)
	}
	if dir := ctrlDir(t, m, "memory"); isV2 && exists(dir, "memory.swap.max") {
		check("memory", "memory.swap.max", "67108864") // 160M - 96M
	} else if !isV2 && exists(dir, "memory.memsw.limit_in_bytes") {
		check("memory", "memory.memsw.limit_in_bytes", "167772160")
	}

	// A limit below the usage is refused with checkBeforeUpdate.
	h := startHelper(t, "wait-hold", nil, nil)
	if err := m.Apply(h.cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	h.release(t)
	h.waitOutput(t, "held", 30*time.Second)
	err = m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(4 << 20), CheckBeforeUpdate: boolp(true)}})
	if !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("Set(limit below usage, checkBeforeUpdate) err = %v, want ErrFailedPrecondition", err)
	}
}

// TestLifecycle moves a process in and out of the freezer, reads its
// stats, signals it and removes the cgroup.
func TestLifecycle(t *testing.T) {
	m := createManager(t, &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(100)}})
	h := startHelper(t, "spin", nil, nil)
	pid := h.cmd.Process.Pid
	if err := m.Apply(pid); err != nil {
		t.Fatalf("Apply(%d): %v", pid, err)
	}
	keys := []string{""}
	if v, ok := m.(*v1); ok {
		keys = nil
		for _, d := range v.dirs {
			switch {
			case d.h.v2:
				keys = append(keys, "")
			case d.h.name != "":
				keys = append(keys, d.h.name)
			default:
				keys = append(keys, d.h.controllers[0])
			}
		}
	}
	for _, k := range keys {
		if got := procCgroup(t, pid, k); got != m.Path() {
			t.Errorf("/proc/%d/cgroup %q line = %q, want %q", pid, k, got, m.Path())
		}
	}
	pids, err := m.Pids()
	if err != nil || !slices.Contains(pids, pid) {
		t.Fatalf("Pids() = %v, %v; want it to contain %d", pids, err, pid)
	}

	// Frozen: the spinning process stops accumulating CPU time.
	if err := m.Freeze(); err != nil {
		t.Fatalf("Freeze: %v", err)
	}
	if f, err := m.Frozen(); err != nil || !f {
		t.Fatalf("Frozen() after Freeze = %v, %v", f, err)
	}
	state := procState(pid)
	// A spinning process gains ~50 ticks in 500 ms; a frozen one none,
	// but the tick split of a process just frozen may still settle by
	// one (seen once under load): allow two.
	before := cpuTicks(t, pid)
	time.Sleep(500 * time.Millisecond)
	if after := cpuTicks(t, pid); after > before+2 {
		t.Errorf("frozen process used CPU: %d -> %d ticks (state %s)", before, after, state)
	}
	t.Logf("frozen process state: %s", state)
	if err := m.Thaw(); err != nil {
		t.Fatalf("Thaw: %v", err)
	}
	if f, err := m.Frozen(); err != nil || f {
		t.Fatalf("Frozen() after Thaw = %v, %v", f, err)
	}
	before = cpuTicks(t, pid)
	deadline := time.Now().Add(10 * time.Second)
	for cpuTicks(t, pid) == before {
		if time.Now().After(deadline) {
			t.Fatalf("thawed process uses no CPU (state %s)", procState(pid))
		}
		time.Sleep(20 * time.Millisecond)
	}

	st, err := m.Stats()
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	// (Under emulation the kernel may book all of it as system time.)
	if u := st.CPU.Usage; u.Total == 0 || u.User+u.Kernel == 0 {
		t.Errorf("Stats CPU usage = %+v, want non-zero total and user+kernel", u)
	}
	if st.Pids.Current < 1 || st.Pids.Limit != 100 {
		t.Errorf("Stats pids = %+v, want current >= 1, limit 100", st.Pids)
	}
	if hasController(t, m, "memory") && st.Memory.Usage.Usage == 0 {
		t.Errorf("Stats memory usage = %+v, want non-zero", st.Memory.Usage)
	}
	js, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"cpu":{"usage":{"total":`, `"throttling":`, `"memory":{`, `"pids":{"current":`, `"blkio":{`, `"hugetlb":{`} {
		if !strings.Contains(string(js), key) {
			t.Errorf("Stats JSON has no %s: %s", key, js)
		}
	}

	if err := m.Signal(unix.SIGKILL); err != nil {
		t.Fatalf("Signal(SIGKILL): %v", err)
	}
	if ws := h.wait(t, 10*time.Second); ws.Signal() != unix.SIGKILL {
		t.Errorf("helper ended with %v, want SIGKILL", ws)
	}
	waitEmpty(t, m)
	if err := m.Destroy(); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	assertGone(t, m)
	if err := m.Destroy(); err != nil {
		t.Errorf("Destroy of a removed cgroup: %v", err)
	}
	if _, err := m.Stats(); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Stats of a removed cgroup: %v, want ErrNotFound", err)
	}
	if err := m.Apply(os.Getpid()); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Apply to a removed cgroup: %v, want ErrNotFound", err)
	}
}

// waitEmpty waits until the cgroup holds no process.
func waitEmpty(t *testing.T, m Manager) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids, err := m.Pids()
		if err != nil {
			t.Fatalf("Pids: %v", err)
		}
		if len(pids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cgroup still holds %v", pids)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// assertGone checks that no directory of m is left.
func assertGone(t *testing.T, m Manager) {
	t.Helper()
	var dirs []string
	switch m := m.(type) {
	case *v2:
		dirs = []string{m.dir}
	case *v1:
		for _, d := range m.dirs {
			dirs = append(dirs, d.dir)
		}
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there after Destroy (%v)", d, err)
		}
	}
}

// TestSignal sends SIGTERM to every process of a cgroup whose processes
// live in two sub-cgroups (v2 allows processes only in leaves once a
// child has controllers), then destroys the cgroup with its sub-cgroups.
func TestSignal(t *testing.T) {
	m := createManager(t, nil)
	var subs []Manager
	for _, name := range []string{"a", "b"} {
		sub, err := New(m.Path() + "/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if err := sub.Create(nil); err != nil {
			t.Fatalf("Create sub-cgroup %s: %v", name, err)
		}
		subs = append(subs, sub)
	}
	var hs []*helper
	for i, mg := range []Manager{subs[0], subs[0], subs[1]} {
		h := startHelper(t, "sleep", nil, nil)
		if err := mg.Apply(h.cmd.Process.Pid); err != nil {
			t.Fatalf("Apply helper %d: %v", i, err)
		}
		hs = append(hs, h)
	}
	pids, err := m.Pids()
	if err != nil || len(pids) != 3 {
		t.Fatalf("Pids() = %v, %v; want 3 pids (recursive)", pids, err)
	}
	if err := m.Signal(unix.SIGTERM); err != nil {
		t.Fatalf("Signal(SIGTERM): %v", err)
	}
	for i, h := range hs {
		if ws := h.wait(t, 10*time.Second); ws.Signal() != unix.SIGTERM {
			t.Errorf("helper %d ended with %v, want SIGTERM", i, ws)
		}
	}
	if f, err := m.Frozen(); err == nil && f {
		t.Errorf("cgroup left frozen after Signal")
	}
	waitEmpty(t, m)
	if err := m.Destroy(); err != nil {
		t.Fatalf("Destroy with a sub-cgroup: %v", err)
	}
	for _, sub := range subs {
		assertGone(t, sub)
	}
	assertGone(t, m)
}

// TestPidsLimit proves that fork fails beyond pids.max.
func TestPidsLimit(t *testing.T) {
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skipf("no /bin/busybox: %v", err)
	}
	const limit = 5
	m := createManager(t, &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(limit)}})
	// The shell and limit-1 children fill the cgroup; the next fork fails
	// and ash gives up on the script.
	script := `read x; i=0; while [ $i -lt 12 ]; do /bin/busybox sleep 60 >/dev/null 2>&1 & i=$((i+1)); done; echo forked all; wait`
	h := startHelper(t, "", []string{"/bin/busybox", "sh", "-c", script}, nil)
	if err := m.Apply(h.cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	h.release(t)
	if ws := h.wait(t, 60*time.Second); ws.ExitStatus() == 0 {
		t.Errorf("shell exited with %v, want a failure", ws)
	}
	if out := h.out.String(); !strings.Contains(out, "can't fork") || strings.Contains(out, "forked all") {
		t.Errorf("shell output %q, want a fork failure", out)
	}
	pids, err := m.Pids()
	if err != nil {
		t.Fatal(err)
	}
	if len(pids) != limit-1 {
		t.Errorf("cgroup holds %d children, want pids.max-1 = %d", len(pids), limit-1)
	}
	ev, err := readKeyed(ctrlDir(t, m, "pids"), "pids.events")
	if err != nil || ev["max"] == 0 {
		t.Errorf("pids.events = %v, %v; want max > 0", ev, err)
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Pids.Current != limit-1 || st.Pids.Limit != limit {
		t.Errorf("Stats pids = %+v, want current %d, limit %d", st.Pids, limit-1, limit)
	}
	if err := m.Signal(unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitEmpty(t, m)
}

// TestOOM runs a process past its memory limit and counts the OOM kill.
func TestOOM(t *testing.T) {
	m := newManager(t)
	if !hasController(t, m, "memory") {
		t.Skip("no memory controller")
	}
	const limit = 32 << 20
	if err := m.Create(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(limit), Swap: i64(limit)}}); err != nil {
		t.Fatal(err)
	}
	if n, err := m.OOMKills(); err != nil || n != 0 {
		t.Fatalf("OOMKills() before = %d, %v", n, err)
	}
	h := startHelper(t, "wait-alloc", nil, nil)
	if err := m.Apply(h.cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	h.release(t)
	ws := h.wait(t, 120*time.Second)
	if ws.Signal() != syscall.SIGKILL {
		t.Fatalf("allocating helper ended with %v, want SIGKILL by the OOM killer; output:\n%s", ws, h.out)
	}
	n, err := m.OOMKills()
	if err != nil || n < 1 {
		t.Errorf("OOMKills() = %d, %v; want >= 1", n, err)
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Memory.Usage.Limit != limit {
		t.Errorf("Stats memory usage limit = %d, want %d", st.Memory.Usage.Limit, limit)
	}
	// The peak (v1 max_usage_in_bytes, v2 memory.peak where the kernel
	// has it) reached the limit.
	if mx := st.Memory.Usage.Max; mx != 0 && mx < limit*9/10 {
		t.Errorf("Stats memory peak = %d, want about %d", mx, limit)
	}
	// v2's memory.events counts hits of memory.max; v1's failcnt is not
	// reliably bumped by an OOM kill on recent kernels.
	if _, ok := m.(*v2); ok && st.Memory.Usage.Failcnt == 0 {
		t.Errorf("Stats memory failcnt = 0 after an OOM kill")
	}
}

// TestDevices checks that a process in the cgroup may open /dev/null but
// not /dev/zero, and that an update repeating the rules works once the
// container has made a sub-cgroup (v1 refuses to rewrite a list then).
func TestDevices(t *testing.T) {
	rules := []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"},
		{Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "r"},
	}
	m := createManager(t, &specs.LinuxResources{Devices: rules})
	checkDevices(t, m, "ok", "EPERM")
	sub, err := New(m.Path() + "/sub")
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Create(nil); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(&specs.LinuxResources{Devices: rules}); err != nil {
		t.Errorf("Set(same device rules) with a sub-cgroup: %v", err)
	}
}

// TestUnifiedMap writes raw v2 files on v2 and is refused on v1.
func TestUnifiedMap(t *testing.T) {
	m := newManager(t)
	r := &specs.LinuxResources{Unified: map[string]string{"pids.max": "7"}}
	err := m.Create(r)
	if _, ok := m.(*v1); ok {
		if !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("Create with unified on v1: %v, want ErrInvalidArgument", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("Create with unified: %v", err)
	}
	if got := file(t, m, "pids", "pids.max"); got != "7" {
		t.Errorf("pids.max = %q, want 7", got)
	}
	for _, k := range []string{"../pids.max", "sub/pids.max", ".."} {
		err := m.Set(&specs.LinuxResources{Unified: map[string]string{k: "1"}})
		if !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Set(unified %q) = %v, want ErrInvalidArgument", k, err)
		}
	}
	err = m.Set(&specs.LinuxResources{Unified: map[string]string{"pids.max": "bogus"}})
	if err == nil || !strings.Contains(err.Error(), "write ") || !strings.Contains(err.Error(), "pids.max") {
		t.Errorf("Set(pids.max=bogus) = %v, want a write error naming the file", err)
	}
}

// TestDirFD starts a process straight into the cgroup with
// CLONE_INTO_CGROUP on v2; v1 has no such thing.
func TestDirFD(t *testing.T) {
	m := createManager(t, nil)
	f, err := m.DirFD()
	if _, ok := m.(*v1); ok {
		if !errors.Is(err, errdefs.ErrNotImplemented) {
			t.Fatalf("DirFD on v1: %v, want ErrNotImplemented", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("DirFD: %v", err)
	}
	defer f.Close()
	h := startHelper(t, "sleep", nil, &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())})
	if got := procCgroup(t, h.cmd.Process.Pid, ""); got != m.Path() {
		t.Errorf("process started with CgroupFD is in %q, want %q", got, m.Path())
	}
}

// TestRealtimeV2 checks the error for a resource v2 cannot offer.
func TestRealtimeV2(t *testing.T) {
	m := newManager(t)
	if _, ok := m.(*v2); !ok {
		t.Skip("cgroup v2 only")
	}
	err := m.Create(&specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimeRuntime: i64(1000)}})
	if !errors.Is(err, errdefs.ErrNotImplemented) {
		t.Errorf("Create with realtime on v2: %v, want ErrNotImplemented", err)
	}
}
