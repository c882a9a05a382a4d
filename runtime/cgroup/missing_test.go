package cgroup

import (
	"errors"
	"testing"

	"github.com/berth-dev/berth/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestMissingControllerRefused: a limit for a controller the host does
// not have is an error, never silently dropped.
func TestMissingControllerRefused(t *testing.T) {
	classID := uint32(0x100001)
	for _, tc := range []struct {
		ctrl string
		res  specs.LinuxResources
	}{
		{"hugetlb", specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 1 << 21}}}},
		{"net_cls", specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: &classID}}},
		{"net_prio", specs.LinuxResources{Network: &specs.LinuxNetwork{Priorities: []specs.LinuxInterfacePriority{{Name: "lo", Priority: 1}}}}},
	} {
		t.Run(tc.ctrl, func(t *testing.T) {
			m := newManager(t)
			if hasController(t, m, tc.ctrl) {
				t.Skipf("the %s controller is available here", tc.ctrl)
			}
			if _, v2 := m.(*v2); v2 && tc.ctrl != "hugetlb" {
				t.Skip("v2 has no network controllers; runc ignores those limits there too")
			}
			err := m.Create(&tc.res)
			if !errors.Is(err, errdefs.ErrNotImplemented) {
				t.Fatalf("Create with a %s limit and no %s controller = %v, want ErrNotImplemented", tc.ctrl, tc.ctrl, err)
			}
		})
	}
}
