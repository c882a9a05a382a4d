package cgroup

import (
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func dev(allow bool, typ string, major, minor int64, access string) specs.LinuxDeviceCgroup {
	d := specs.LinuxDeviceCgroup{Allow: allow, Type: typ, Access: access}
	if major >= 0 {
		d.Major = &major
	}
	if minor >= 0 {
		d.Minor = &minor
	}
	return d
}

// deviceCases are rule lists with the verdict for opening /dev/null (c 1:3)
// and /dev/zero (c 1:5) for reading and writing.
var deviceCases = []struct {
	name       string
	rules      []specs.LinuxDeviceCgroup
	null, zero string
}{
	{"deny all", []specs.LinuxDeviceCgroup{dev(false, "a", -1, -1, "rwm")}, "EPERM", "EPERM"},
	{"allow all", []specs.LinuxDeviceCgroup{dev(true, "a", -1, -1, "rwm")}, "ok", "ok"},
	{"default deny", []specs.LinuxDeviceCgroup{dev(true, "c", 1, 3, "rwm")}, "ok", "EPERM"},
	{"allow all but zero", []specs.LinuxDeviceCgroup{
		dev(true, "a", -1, -1, "rwm"), dev(false, "c", 1, 5, "rwm")}, "ok", "EPERM"},
	{"last match wins", []specs.LinuxDeviceCgroup{
		dev(false, "a", -1, -1, "rwm"), dev(true, "c", 1, -1, "rwm"), dev(false, "c", 1, 5, "rwm"),
		dev(true, "c", 1, 5, "rw")}, "ok", "ok"},
	{"access bits from two rules", []specs.LinuxDeviceCgroup{
		dev(false, "a", -1, -1, "rwm"), dev(true, "c", 1, 3, "r"), dev(true, "c", 1, 3, "w"),
		dev(true, "c", 1, 5, "r")}, "ok", "EPERM"},
	{"partial deny", []specs.LinuxDeviceCgroup{
		dev(true, "a", -1, -1, "rwm"), dev(false, "c", 1, 3, "w")}, "EPERM", "ok"},
	{"type a with a major", []specs.LinuxDeviceCgroup{
		dev(false, "a", -1, -1, "rwm"), dev(true, "a", 1, -1, "rw")}, "ok", "ok"},
	{"block rule does not match a char device", []specs.LinuxDeviceCgroup{
		dev(false, "a", -1, -1, "rwm"), dev(true, "b", 1, -1, "rwm"), dev(true, "c", 1, 3, "rwm")}, "ok", "EPERM"},
	{"wildcard minor", []specs.LinuxDeviceCgroup{
		dev(false, "a", -1, -1, "rwm"), dev(true, "c", -1, 5, "rwm")}, "EPERM", "ok"},
}

// TestDeviceRulesEnforced runs every case through the Manager: the devices
// controller on v1, the BPF program on v2.
func TestDeviceRulesEnforced(t *testing.T) {
	requireRoot(t)
	for _, tc := range deviceCases {
		t.Run(tc.name, func(t *testing.T) {
			m := createManager(t, &specs.LinuxResources{Devices: tc.rules})
			checkDevices(t, m, tc.null, tc.zero)
		})
	}
}

// TestDeviceFilterHybrid runs every case through the BPF program on the
// controller-less cgroup2 tree of a hybrid v1 host, so that the program is
// tested on this kernel too. (On v2 TestDeviceRulesEnforced covers it.)
func TestDeviceFilterHybrid(t *testing.T) {
	requireRoot(t)
	tab, err := hostMounts()
	if err != nil {
		t.Fatal(err)
	}
	if tab.unified() || tab.v2 == nil {
		t.Skip("needs a hybrid host (cgroup v1 with a cgroup2 mount)")
	}
	for _, tc := range deviceCases {
		t.Run(tc.name, func(t *testing.T) {
			m := createManager(t, nil)
			dir := m.(*v1).dirs[len(m.(*v1).dirs)-1].dir // the cgroup2 one
			rules, err := parseDeviceRules(tc.rules)
			if err != nil {
				t.Fatal(err)
			}
			if err := setDevicesV2(dir, rules); err != nil {
				t.Fatalf("setDevicesV2: %v", err)
			}
			checkDevices(t, m, tc.null, tc.zero)
		})
	}
}

// checkDevices runs the devices helper in m and compares its verdicts.
func checkDevices(t *testing.T, m Manager, null, zero string) {
	t.Helper()
	h := startHelper(t, "wait-devices", nil, nil)
	if err := m.Apply(h.cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	h.release(t)
	if ws := h.wait(t, 30*time.Second); ws.ExitStatus() != 0 {
		t.Fatalf("devices helper: %v\n%s", ws, h.out)
	}
	want := "/dev/null=" + null + "\n/dev/zero=" + zero + "\n"
	if got := h.out.String(); got != want {
		t.Errorf("devices helper reported:\n%swant:\n%s", got, want)
	}
}

// TestDeviceProgramReplaced checks that Set replaces the cgroup's device
// program instead of stacking another one.
func TestDeviceProgramReplaced(t *testing.T) {
	requireRoot(t)
	m := createManager(t, nil)
	var dir string
	switch mm := m.(type) {
	case *v2:
		dir = mm.dir
	case *v1:
		last := mm.dirs[len(mm.dirs)-1]
		if !last.h.v2 {
			t.Skip("no cgroup2 tree on this host")
		}
		dir = last.dir
	}
	for i, rules := range [][]specs.LinuxDeviceCgroup{
		{dev(false, "a", -1, -1, "rwm")},
		{dev(false, "a", -1, -1, "rwm"), dev(true, "c", 1, 3, "rwm")},
		{dev(true, "a", -1, -1, "rwm")},
	} {
		parsed, _ := parseDeviceRules(rules)
		if err := setDevicesV2(dir, parsed); err != nil {
			t.Fatalf("setDevicesV2 #%d: %v", i, err)
		}
		fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		res, err := link.QueryPrograms(link.QueryOptions{Target: fd, Attach: ebpf.AttachCGroupDevice})
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Programs) != 1 {
			t.Errorf("after update #%d: %d device programs attached, want 1", i, len(res.Programs))
		}
	}
}
