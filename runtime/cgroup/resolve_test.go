package cgroup

import (
	"bufio"
	"errors"
	"strings"
	"testing"

	"github.com/berth-dev/berth/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestResolve(t *testing.T) {
	base := func() (string, error) { return "/user.slice/session-1.scope", nil }
	tests := []struct {
		path    string
		id      string
		systemd bool
		want    string
		wantErr bool
	}{
		{"", "abc", false, "/berth/abc", false},
		{"", "abc", true, "/system.slice/berth-abc.scope", false},
		{"", "", false, "", true},
		{"", "a/b", false, "", true},
		{"", "..", false, "", true},
		{"/custom/path", "abc", false, "/custom/path", false},
		{"/custom//path/../x/", "abc", false, "/custom/x", false},
		{"/../../etc", "abc", false, "/etc", false},
		{"rel/c1", "abc", false, "/user.slice/session-1.scope/rel/c1", false},
		{"../../escape", "abc", false, "/user.slice/session-1.scope/escape", false},
		{"system.slice:berth:abc", "abc", true, "/system.slice/berth-abc.scope", false},
		{"slice:prefix:name", "abc", true, "/slice/prefix-name.scope", false},
		{"machine.slice:libpod:abc", "abc", true, "/machine.slice/libpod-abc.scope", false},
		{"user-1000.slice:berth:abc", "abc", true, "/user.slice/user-1000.slice/berth-abc.scope", false},
		{"a-b-c.slice:p:n", "abc", true, "/a.slice/a-b.slice/a-b-c.slice/p-n.scope", false},
		{":berth:abc", "abc", true, "/system.slice/berth-abc.scope", false},
		{"-.slice:berth:abc", "abc", true, "/berth-abc.scope", false},
		{"system.slice::abc", "abc", true, "/system.slice/abc.scope", false},
		{"system.slice:berth:my.slice", "abc", true, "/system.slice/my.slice", false},
		{"/plain/path", "abc", true, "/plain/path", false},
		{"system.slice:berth", "abc", true, "", true},
		{"system.slice:berth:", "abc", true, "", true},
		{"system.slice:berth:a/b", "abc", true, "", true},
		{"nosuffix:berth:abc", "abc", true, "/nosuffix/berth-abc.scope", false},
		{"..:berth:abc", "abc", true, "", true},
		{"a--b.slice:berth:abc", "abc", true, "", true},
		{"-a.slice:berth:abc", "abc", true, "", true},
		{"a/b.slice:berth:abc", "abc", true, "", true},
		// Without systemd a colon is just a character of a path.
		{"/a:b:c", "abc", false, "/a:b:c", false},
	}
	for _, tt := range tests {
		t.Run(tt.path+"|"+tt.id, func(t *testing.T) {
			got, err := resolve(tt.path, tt.id, tt.systemd, base)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Resolve(%q, %q, %v) err = %v, wantErr %v", tt.path, tt.id, tt.systemd, err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("Resolve(%q, %q, %v) err = %v, want ErrInvalidArgument", tt.path, tt.id, tt.systemd, err)
			}
			if got != tt.want {
				t.Errorf("Resolve(%q, %q, %v) = %q, want %q", tt.path, tt.id, tt.systemd, got, tt.want)
			}
		})
	}
}

func TestResolveHost(t *testing.T) {
	got, err := Resolve("relative", "x", false)
	if err != nil {
		t.Fatalf("Resolve(relative) on this host: %v", err)
	}
	if !strings.HasPrefix(got, "/") || !strings.HasSuffix(got, "/relative") {
		t.Errorf("Resolve(relative) = %q, want an absolute path ending in /relative", got)
	}
}

func TestBaseFor(t *testing.T) {
	tests := []struct {
		name    string
		own     string
		unified bool
		want    string
	}{
		{"v2 parent of own", "0::/user.slice/user-0.slice/session-3.scope\n", true, "/user.slice/user-0.slice"},
		{"v2 root", "0::/\n", true, "/"},
		{"hybrid uses cgroup2 line", "4:memory:/other\n1:name=systemd:/sys.slice/x\n0::/sys.slice/x\n", false, "/sys.slice/x"},
		{"legacy uses name=systemd", "4:memory:/other\n1:name=systemd:/sys.slice/y\n", false, "/sys.slice/y"},
		{"legacy without systemd", "4:memory:/other\n", false, "/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := baseFor(parseProcCgroup(tt.own), tt.unified); got != tt.want {
				t.Errorf("baseFor(%q, %v) = %q, want %q", tt.own, tt.unified, got, tt.want)
			}
		})
	}
}

func TestSharesToWeight(t *testing.T) {
	tests := []struct{ shares, want uint64 }{
		{0, 0},
		{1, 1}, // clamped to 2
		{2, 1},
		{512, 20},
		{1024, 39},
		{262144, 10000},
		{1 << 30, 10000}, // clamped to 262144
	}
	for _, tt := range tests {
		if got := sharesToWeight(tt.shares); got != tt.want {
			t.Errorf("sharesToWeight(%d) = %d, want %d", tt.shares, got, tt.want)
		}
	}
}

func TestBlkioToIOWeight(t *testing.T) {
	tests := []struct {
		in   uint16
		want uint64
	}{{0, 0}, {10, 1}, {500, 4950}, {1000, 10000}}
	for _, tt := range tests {
		if got := blkioToIOWeight(tt.in); got != tt.want {
			t.Errorf("blkioToIOWeight(%d) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestSwapToV2(t *testing.T) {
	tests := []struct {
		swap, memory, want int64
		wantErr            bool
	}{
		{0, 0, 0, false},
		{0, -1, -1, false},
		{-1, 100, -1, false},
		{0, 100, 0, false},
		{300, 100, 200, false},
		{100, 100, 0, false},
		{50, 100, 0, true},
		{100, 0, 0, true},
		{100, -1, 0, true},
	}
	for _, tt := range tests {
		got, err := swapToV2(tt.swap, tt.memory)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("swapToV2(%d, %d) = %d, %v; want %d, err %v", tt.swap, tt.memory, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestPageSizeName(t *testing.T) {
	tests := []struct {
		in   uint64
		want string
	}{{64 << 10, "64KB"}, {2 << 20, "2MB"}, {1 << 30, "1GB"}, {32 << 20, "32MB"}, {16 << 30, "16GB"}}
	for _, tt := range tests {
		if got := pageSizeName(tt.in); got != tt.want {
			t.Errorf("pageSizeName(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

const hybridMountinfo = `25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
42 31 0:39 / /sys/fs/cgroup/net_cls,net_prio rw,relatime - cgroup cgroup rw,net_cls,net_prio
99 20 0:32 /docker/abc /mnt/memory\040copy rw,relatime - cgroup cgroup rw,memory
`

const unifiedMountinfo = `25 30 0:23 / /sys rw - sysfs sysfs rw
29 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`

func TestParseMountinfo(t *testing.T) {
	known := map[string]bool{"cpu": true, "cpuacct": true, "cpuset": true, "memory": true, "net_cls": true, "net_prio": true}
	tab, err := parseMountinfo(bufio.NewScanner(strings.NewReader(hybridMountinfo)), known)
	if err != nil {
		t.Fatal(err)
	}
	if tab.unified() {
		t.Errorf("hybrid mountinfo: unified() = true")
	}
	if tab.v2 == nil || tab.v2.mountpoint != "/sys/fs/cgroup/unified" {
		t.Errorf("hybrid mountinfo: v2 = %+v, want /sys/fs/cgroup/unified", tab.v2)
	}
	var got []string
	for _, h := range tab.v1 {
		got = append(got, strings.Join(h.controllers, ",")+h.name+"@"+h.mountpoint)
	}
	want := "cpu@/sys/fs/cgroup/cpu cpuacct@/sys/fs/cgroup/cpuacct cpuset@/sys/fs/cgroup/cpuset memory@/sys/fs/cgroup/memory " +
		"name=systemd@/sys/fs/cgroup/systemd net_cls,net_prio@/sys/fs/cgroup/net_cls,net_prio"
	if strings.Join(got, " ") != want {
		t.Errorf("hybrid hierarchies:\n got %s\nwant %s", strings.Join(got, " "), want)
	}
	h := hierarchy{mountpoint: "/mnt/memory copy", root: "/docker/abc"}
	if d := h.dir("/docker/abc/berth/x"); d != "/mnt/memory copy/berth/x" {
		t.Errorf("dir under a non-root mount = %q", d)
	}

	tab, err = parseMountinfo(bufio.NewScanner(strings.NewReader(unifiedMountinfo)), known)
	if err != nil {
		t.Fatal(err)
	}
	if !tab.unified() || tab.v2.dir("/berth/x") != "/sys/fs/cgroup/berth/x" {
		t.Errorf("unified mountinfo: unified() = %v, v2 = %+v", tab.unified(), tab.v2)
	}
}

func TestUnescape(t *testing.T) {
	if got := unescape(`/a\040b\134c`); got != `/a b\c` {
		t.Errorf("unescape = %q", got)
	}
}

func i64(v int64) *int64 { return &v }

func TestDeviceRules(t *testing.T) {
	in := []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"},
		{Allow: true, Type: "b", Major: i64(8), Access: "r"},
		{Allow: false, Type: "a", Major: i64(5), Access: "w"},
		{Allow: true, Type: "u", Major: i64(136), Minor: i64(-1), Access: "rw"},
	}
	rules, err := parseDeviceRules(in)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range v1Lines(rules) {
		got = append(got, l[0]+"="+l[1])
	}
	want := []string{
		"devices.deny=a",
		"devices.allow=c 1:3 rwm",
		"devices.allow=b 8:* r",
		"devices.deny=b 5:* w",
		"devices.deny=c 5:* w",
		"devices.allow=c 136:* rw",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("v1Lines:\n got %q\nwant %q", got, want)
	}
	rules, _ = parseDeviceRules(in[1:2])
	if got := v1Lines(rules); len(got) != 2 || got[0] != [2]string{"devices.deny", "a"} {
		t.Errorf("v1Lines without a leading wildcard = %q, want a deny-all first", got)
	}
	for _, bad := range []specs.LinuxDeviceCgroup{
		{Type: "x"}, {Type: "c", Access: "rwx"}, {Type: "c", Major: i64(1 << 40)},
	} {
		if _, err := parseDeviceRules([]specs.LinuxDeviceCgroup{bad}); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("parseDeviceRules(%+v) err = %v, want ErrInvalidArgument", bad, err)
		}
	}
}

func TestAllowListUnchanged(t *testing.T) {
	rules, err := parseDeviceRules([]specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"},
		{Allow: true, Type: "c", Major: i64(136), Access: "rw"},
		{Allow: true, Type: "c", Major: i64(136), Access: "m"},
		{Allow: true, Type: "a", Major: i64(5), Minor: i64(1), Access: "r"},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		current string
		want    bool
	}{
		{"c 1:3 rwm\nc 136:* rwm\nb 5:1 r\nc 5:1 r\n", true},
		{"c 136:* rwm\nc 1:3 rwm\nc 5:1 r\nb 5:1 r", true},
		{"a *:* rwm\n", false},
		{"c 1:3 rwm\nc 136:* rw\nb 5:1 r\nc 5:1 r\n", false},
		{"c 1:3 rwm\nc 136:* rwm\nb 5:1 r\nc 5:1 r\nc 1:5 r\n", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := allowListUnchanged(tt.current, rules); got != tt.want {
			t.Errorf("allowListUnchanged(%q) = %v, want %v", tt.current, got, tt.want)
		}
	}
	if allowListUnchanged("c 1:3 rwm", rules[1:2]) {
		t.Errorf("allowListUnchanged without a leading deny-all = true")
	}
}

func TestCheckUnifiedKey(t *testing.T) {
	for _, k := range []string{"memory.high", "cpu.weight", "io.latency"} {
		if err := checkUnifiedKey(k); err != nil {
			t.Errorf("checkUnifiedKey(%q) = %v", k, err)
		}
	}
	for _, k := range []string{"", "../memory.max", "a/b", "..", "x..y"} {
		if err := checkUnifiedKey(k); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("checkUnifiedKey(%q) = %v, want ErrInvalidArgument", k, err)
		}
	}
}
