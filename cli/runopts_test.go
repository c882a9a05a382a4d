package cli

import (
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// parseRun parses args as `berth run`'s flags and positional arguments.
func parseRun(t *testing.T, args ...string) (*containerSpec, error) {
	t.Helper()
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o := addContainerFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return o.parse(fs, fs.Args())
}

func mustParse(t *testing.T, args ...string) *containerSpec {
	t.Helper()
	s, err := parseRun(t, args...)
	if err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	return s
}

func eq[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

func ptr[T any](v T) *T { return &v }

func port(s string) network.Port { return network.MustParsePort(s) }

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseDefaults(t *testing.T) {
	s := mustParse(t, "busybox")
	c, hc := s.Config, s.HostConfig
	eq(t, "Image", c.Image, "busybox")
	eq(t, "Cmd", c.Cmd, []string(nil))
	eq(t, "Entrypoint", c.Entrypoint, []string(nil))
	eq(t, "attach in/out/err", []bool{c.AttachStdin, c.AttachStdout, c.AttachStderr}, []bool{false, true, true})
	eq(t, "OpenStdin/StdinOnce/Tty", []bool{c.OpenStdin, c.StdinOnce, c.Tty}, []bool{false, false, false})
	eq(t, "Env", c.Env, []string(nil))
	eq(t, "Labels", c.Labels, map[string]string{})
	eq(t, "Volumes", c.Volumes, map[string]struct{}{})
	eq(t, "ExposedPorts", c.ExposedPorts, network.PortSet{})
	eq(t, "Healthcheck", c.Healthcheck, (*container.HealthConfig)(nil))
	eq(t, "StopTimeout", c.StopTimeout, (*int)(nil))
	eq(t, "NetworkMode", hc.NetworkMode, container.NetworkMode("bridge"))
	eq(t, "EndpointsConfig", s.Networking.EndpointsConfig, map[string]*network.EndpointSettings{"bridge": {}})
	eq(t, "RestartPolicy", hc.RestartPolicy, container.RestartPolicy{Name: "no"})
	eq(t, "LogConfig", hc.LogConfig, container.LogConfig{Type: "json-file", Config: map[string]string{}})
	eq(t, "Binds", hc.Binds, []string(nil))
	eq(t, "PortBindings", hc.PortBindings, network.PortMap{})
	eq(t, "Init", hc.Init, (*bool)(nil))
	eq(t, "MemorySwappiness", hc.MemorySwappiness, ptr(int64(-1)))
	eq(t, "PidsLimit", hc.PidsLimit, ptr(int64(0)))
	eq(t, "OomKillDisable", hc.OomKillDisable, ptr(false))
	eq(t, "DNS", hc.DNS, []netip.Addr(nil))
	eq(t, "DNSSearch", hc.DNSSearch, []string{})
	eq(t, "DNSOptions", hc.DNSOptions, []string{})
	eq(t, "Devices", hc.Devices, []container.DeviceMapping{})
	eq(t, "MaskedPaths", hc.MaskedPaths, []string(nil))
	eq(t, "spec", []any{s.Name, s.Pull, s.Platform, s.Quiet, s.CIDFile}, []any{"", "missing", "", false, ""})
}

func TestParseCommandAfterImage(t *testing.T) {
	// Flags after the image belong to the container's command.
	s := mustParse(t, "-t", "busybox", "ls", "-l", "--rm")
	eq(t, "Cmd", s.Config.Cmd, []string{"ls", "-l", "--rm"})
	eq(t, "AutoRemove", s.HostConfig.AutoRemove, false)
	eq(t, "Tty", s.Config.Tty, true)
}

func TestParseHelpFlag(t *testing.T) {
	// -h is --hostname, so cobra's help flag must find --help taken and
	// not add one with -h (pflag panics on a second -h).
	cmd := &cobra.Command{Use: "run"}
	addContainerFlags(cmd.Flags())
	cmd.InitDefaultHelpFlag()
	if f := cmd.Flags().ShorthandLookup("h"); f == nil || f.Name != "hostname" {
		t.Fatalf("-h is %v, want --hostname", f)
	}
	if f := cmd.Flags().Lookup("help"); f == nil || f.Usage != "Print usage" {
		t.Fatalf("--help is %v", f)
	}
}

func TestParseStreams(t *testing.T) {
	for _, tc := range []struct {
		args                                  []string
		stdin, stdout, stderr, open, stdinOne bool
	}{
		{[]string{"-i"}, true, true, true, true, true},
		{[]string{"-it"}, true, true, true, true, true},
		{[]string{"-a", "stdout"}, false, true, false, false, false},
		{[]string{"-a", "STDERR", "-a", "stdin"}, true, false, true, false, false},
		{[]string{"-a", "stdout", "-i"}, true, true, false, true, true},
	} {
		s := mustParse(t, append(tc.args, "busybox")...)
		c := s.Config
		eq(t, "streams of "+tc.args[0], []bool{c.AttachStdin, c.AttachStdout, c.AttachStderr, c.OpenStdin, c.StdinOnce},
			[]bool{tc.stdin, tc.stdout, tc.stderr, tc.open, tc.stdinOne})
	}
}

func TestParseEnvAndLabels(t *testing.T) {
	t.Setenv("BERTH_TEST_SET", "from-env")
	os.Unsetenv("BERTH_TEST_UNSET")
	envFile := writeFile(t, "env", "\xEF\xBB\xBFA=1\n# comment\n\n   B=two words \nBERTH_TEST_SET\nBERTH_TEST_UNSET\nC=\n")
	labelFile := writeFile(t, "labels", "x=1\n# no\ny\nz=3\n")
	s := mustParse(t, "--env-file", envFile, "-e", "A=override", "-e", "BERTH_TEST_SET", "-e", "BERTH_TEST_UNSET",
		"-e", "EMPTY=", "--label-file", labelFile, "-l", "z=4", "--label", "w", "busybox")
	eq(t, "Env", s.Config.Env, []string{"A=1", "B=two words ", "BERTH_TEST_SET=from-env", "C=",
		"A=override", "BERTH_TEST_SET=from-env", "EMPTY="})
	eq(t, "Labels", s.Config.Labels, map[string]string{"x": "1", "z": "4", "w": ""})
}

func TestParseVolumes(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	s := mustParse(t, "-v", "/host:/ctr:ro", "-v", "data:/data", "-v", "/anon", "-v", "./rel:/rel:z",
		"-v", "/anon", "-v", "/host:/ctr:ro", "-v", "~/x:/x", "--volumes-from", "other:ro",
		"--tmpfs", "/run:rw,size=64m", "--tmpfs", "/tmp", "busybox")
	eq(t, "Binds", s.HostConfig.Binds, []string{"/host:/ctr:ro", "data:/data", filepath.Join(wd, "rel") + ":/rel:z", "~/x:/x"})
	eq(t, "Volumes", s.Config.Volumes, map[string]struct{}{"/anon": {}})
	eq(t, "VolumesFrom", s.HostConfig.VolumesFrom, []string{"other:ro"})
	eq(t, "Tmpfs", s.HostConfig.Tmpfs, map[string]string{"/run": "rw,size=64m", "/tmp": ""})
}

func TestParseMounts(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	s := mustParse(t,
		"--mount", "type=bind,src=/a,dst=/b,ro,bind-propagation=rshared",
		"--mount", "type=bind,source=./x,target=/x,bind-recursive=readonly,readonly=1,bind-propagation=rprivate",
		"--mount", "type=tmpfs,destination=/t,tmpfs-size=64m,tmpfs-mode=1770",
		"--mount", "src=vol,dst=/v,volume-nocopy,volume-opt=o=1,volume-label=l=2,volume-subpath=sub",
		"--mount", `type=volume,dst=/c,readonly=false,"volume-opt=o=a,b"`,
		"busybox")
	eq(t, "Mounts", s.HostConfig.Mounts, []mount.Mount{
		{Type: "bind", Source: "/a", Target: "/b", ReadOnly: true, BindOptions: &mount.BindOptions{Propagation: "rshared"}},
		{Type: "bind", Source: filepath.Join(wd, "x"), Target: "/x", ReadOnly: true,
			BindOptions: &mount.BindOptions{Propagation: "rprivate", ReadOnlyForceRecursive: true}},
		{Type: "tmpfs", Target: "/t", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 64 << 20, Mode: 0o1770}},
		{Type: "volume", Source: "vol", Target: "/v", VolumeOptions: &mount.VolumeOptions{
			NoCopy: true, Subpath: "sub", Labels: map[string]string{"l": "2"},
			DriverConfig: &mount.Driver{Options: map[string]string{"o": "1"}}}},
		{Type: "volume", Target: "/c", VolumeOptions: &mount.VolumeOptions{
			DriverConfig: &mount.Driver{Options: map[string]string{"o": "a,b"}}}},
	})
}

func TestParseResources(t *testing.T) {
	s := mustParse(t, "-m", "512m", "--memory-swap", "-1", "--memory-reservation", "256m", "--shm-size", "1g",
		"--cpus", "1.5", "-c", "512", "--cpuset-cpus", "0-1", "--cpuset-mems", "0", "--pids-limit", "100",
		"--oom-kill-disable", "--oom-score-adj", "500", "--memory-swappiness", "10", "--cgroup-parent", "/p",
		"--ulimit", "nproc=10", "--ulimit", "nofile=1024:2048", "--ulimit", "nproc=20",
		"--device", "/dev/null", "--device", "/dev/null:/dev/mynull:r", "--device", "/dev/zero:rw",
		"--device", "/dev/fuse:/dev/./fuse", "--device", "vendor.com/gpu=all",
		"--device-cgroup-rule", "c 1:3 mr", "--device-cgroup-rule", "b *:* rwm", "busybox")
	hc := s.HostConfig
	eq(t, "ShmSize", hc.ShmSize, int64(1<<30))
	r := hc.Resources
	eq(t, "memory", []int64{r.Memory, r.MemorySwap, r.MemoryReservation}, []int64{512 << 20, -1, 256 << 20})
	eq(t, "NanoCPUs", r.NanoCPUs, int64(1.5e9))
	eq(t, "CPUShares", r.CPUShares, int64(512))
	eq(t, "cpuset", []string{r.CpusetCpus, r.CpusetMems, r.CgroupParent}, []string{"0-1", "0", "/p"})
	eq(t, "PidsLimit", r.PidsLimit, ptr(int64(100)))
	eq(t, "OomKillDisable", r.OomKillDisable, ptr(true))
	eq(t, "OomScoreAdj", hc.OomScoreAdj, 500)
	eq(t, "MemorySwappiness", r.MemorySwappiness, ptr(int64(10)))
	eq(t, "Ulimits", r.Ulimits, []*container.Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}, {Name: "nproc", Soft: 20, Hard: 20}})
	eq(t, "Devices", r.Devices, []container.DeviceMapping{
		{PathOnHost: "/dev/null", PathInContainer: "/dev/null", CgroupPermissions: "rwm"},
		{PathOnHost: "/dev/null", PathInContainer: "/dev/mynull", CgroupPermissions: "r"},
		{PathOnHost: "/dev/zero", PathInContainer: "/dev/zero", CgroupPermissions: "rw"},
		{PathOnHost: "/dev/fuse", PathInContainer: "/dev/fuse", CgroupPermissions: "rwm"},
	})
	eq(t, "DeviceRequests", r.DeviceRequests, []container.DeviceRequest{{Driver: "cdi", DeviceIDs: []string{"vendor.com/gpu=all"}}})
	eq(t, "DeviceCgroupRules", r.DeviceCgroupRules, []string{"c 1:3 mr", "b *:* rwm"})

	s = mustParse(t, "--cpu-period", "100000", "--cpu-quota", "50000", "--memory-swap", "1g", "busybox")
	r = s.HostConfig.Resources
	eq(t, "CFS", []int64{r.CPUPeriod, r.CPUQuota, r.NanoCPUs, r.MemorySwap}, []int64{100000, 50000, 0, 1 << 30})
}

func TestParseHealthcheck(t *testing.T) {
	s := mustParse(t, "--health-cmd", "curl -f localhost", "--health-interval", "5s", "--health-timeout", "2s",
		"--health-retries", "3", "--health-start-period", "1m", "--health-start-interval", "500ms", "busybox")
	eq(t, "Healthcheck", s.Config.Healthcheck, &container.HealthConfig{
		Test: []string{"CMD-SHELL", "curl -f localhost"}, Interval: 5 * time.Second, Timeout: 2 * time.Second,
		Retries: 3, StartPeriod: time.Minute, StartInterval: 500 * time.Millisecond,
	})
	// Settings without a command keep the image's test.
	s = mustParse(t, "--health-retries", "5", "busybox")
	eq(t, "Healthcheck", s.Config.Healthcheck, &container.HealthConfig{Retries: 5})
	s = mustParse(t, "--no-healthcheck", "busybox")
	eq(t, "Healthcheck", s.Config.Healthcheck, &container.HealthConfig{Test: []string{"NONE"}})
}

func TestParseProcess(t *testing.T) {
	s := mustParse(t, "--entrypoint", "", "--stop-timeout", "0", "--stop-signal", "SIGINT", "-u", "1000:100",
		"-w", "/work", "-h", "host", "--domainname", "example.org", "--init", "busybox", "echo", "hi")
	c := s.Config
	eq(t, "Entrypoint", c.Entrypoint, []string{""})
	eq(t, "StopTimeout", c.StopTimeout, ptr(0))
	eq(t, "strings", []string{c.StopSignal, c.User, c.WorkingDir, c.Hostname, c.Domainname},
		[]string{"SIGINT", "1000:100", "/work", "host", "example.org"})
	eq(t, "Cmd", c.Cmd, []string{"echo", "hi"})
	eq(t, "Init", s.HostConfig.Init, ptr(true))

	s = mustParse(t, "--entrypoint", "/bin/sh", "--init=false", "busybox")
	eq(t, "Entrypoint", s.Config.Entrypoint, []string{"/bin/sh"})
	eq(t, "Init", s.HostConfig.Init, ptr(false))
}

func TestParseRestart(t *testing.T) {
	for arg, want := range map[string]container.RestartPolicy{
		"no":             {Name: "no"},
		"always":         {Name: "always"},
		"unless-stopped": {Name: "unless-stopped"},
		"on-failure":     {Name: "on-failure"},
		"on-failure:3":   {Name: "on-failure", MaximumRetryCount: 3},
		"":               {Name: "no"},
	} {
		s := mustParse(t, "--restart", arg, "busybox")
		eq(t, "RestartPolicy of "+arg, s.HostConfig.RestartPolicy, want)
	}
	s := mustParse(t, "--rm", "--restart", "no", "busybox")
	eq(t, "AutoRemove", s.HostConfig.AutoRemove, true)
}

func TestParsePorts(t *testing.T) {
	s := mustParse(t, "-p", "8080:80", "-p", "127.0.0.1:8081:81/udp", "-p", "[::1]:8082:82", "-p", "::1:8083:83",
		"-p", "9000-9001:90-91", "-p", "7000-7010:70", "-p", "85", "-p", "127.0.0.1::86", "-p", "8080:80/TCP",
		"-p", "published=8443,target=443", "-p", "target=53,protocol=udp",
		"--expose", "100-102/udp", "--expose", "80", "-P", "busybox")
	lo4, lo6 := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")
	eq(t, "PortBindings", s.HostConfig.PortBindings, network.PortMap{
		port("80/tcp"):  {{HostPort: "8080"}, {HostPort: "8080"}},
		port("81/udp"):  {{HostIP: lo4, HostPort: "8081"}},
		port("82/tcp"):  {{HostIP: lo6, HostPort: "8082"}},
		port("83/tcp"):  {{HostIP: lo6, HostPort: "8083"}},
		port("90/tcp"):  {{HostPort: "9000"}},
		port("91/tcp"):  {{HostPort: "9001"}},
		port("70/tcp"):  {{HostPort: "7000-7010"}},
		port("85/tcp"):  {{}},
		port("86/tcp"):  {{HostIP: lo4}},
		port("443/tcp"): {{HostPort: "8443"}},
		port("53/udp"):  {{}},
	})
	want := network.PortSet{}
	for _, p := range []string{"80/tcp", "81/udp", "82/tcp", "83/tcp", "90/tcp", "91/tcp", "70/tcp", "85/tcp",
		"86/tcp", "443/tcp", "53/udp", "100/udp", "101/udp", "102/udp"} {
		want[port(p)] = struct{}{}
	}
	eq(t, "ExposedPorts", s.Config.ExposedPorts, want)
	eq(t, "PublishAllPorts", s.HostConfig.PublishAllPorts, true)
}

func TestParseNetwork(t *testing.T) {
	for _, tc := range []struct {
		args []string
		mode string
		eps  map[string]*network.EndpointSettings
	}{
		{[]string{"--network", "host"}, "host", map[string]*network.EndpointSettings{}},
		{[]string{"--net", "none"}, "none", map[string]*network.EndpointSettings{}},
		{[]string{"--network", "default"}, "bridge", map[string]*network.EndpointSettings{}},
		{[]string{"--network", "bridge", "--link", "db:db"}, "bridge", map[string]*network.EndpointSettings{}},
		{[]string{"--network", "container:abc"}, "container:abc", map[string]*network.EndpointSettings{}},
		{[]string{"--ip", "172.17.0.9"}, "bridge", map[string]*network.EndpointSettings{"bridge": {
			IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: netip.MustParseAddr("172.17.0.9")}}}},
		{[]string{"--network", "mynet", "--network-alias", "a", "--net-alias", "b", "--ip", "10.0.0.2",
			"--ip6", "fd00::2", "--mac-address", "92:d0:c6:0a:29:33", "--link", "db:db"},
			"mynet", map[string]*network.EndpointSettings{"mynet": {
				Aliases: []string{"a", "b"}, Links: []string{"db:db"},
				IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: netip.MustParseAddr("10.0.0.2"), IPv6Address: netip.MustParseAddr("fd00::2")},
				MacAddress: network.HardwareAddr{0x92, 0xd0, 0xc6, 0x0a, 0x29, 0x33}}}},
		{[]string{"--network", "name=n1,alias=x,driver-opt=k=v,gw-priority=2", "--network", "n2"},
			"n1", map[string]*network.EndpointSettings{
				"n1": {Aliases: []string{"x"}, DriverOpts: map[string]string{"k": "v"}, GwPriority: 2},
				"n2": {}}},
	} {
		s := mustParse(t, append(tc.args, "busybox")...)
		eq(t, "NetworkMode of "+tc.args[1], s.HostConfig.NetworkMode, container.NetworkMode(tc.mode))
		eq(t, "EndpointsConfig of "+tc.args[1], s.Networking.EndpointsConfig, tc.eps)
	}
	s := mustParse(t, "--link", "db:alias", "--dns", "8.8.8.8", "--dns", " ::1 ", "--dns-search", "example.com",
		"--dns-option", "ndots:2", "--dns-opt", "debug", "--add-host", "h:1.2.3.4", "--add-host", "h6=[::1]",
		"--add-host", "gw:host-gateway", "busybox")
	hc := s.HostConfig
	eq(t, "Links", hc.Links, []string{"db:alias"})
	eq(t, "DNS", hc.DNS, []netip.Addr{netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("::1")})
	eq(t, "DNSSearch", hc.DNSSearch, []string{"example.com"})
	eq(t, "DNSOptions", hc.DNSOptions, []string{"ndots:2", "debug"})
	eq(t, "ExtraHosts", hc.ExtraHosts, []string{"h:1.2.3.4", "h6:::1", "gw:host-gateway"})
}

func TestParseHostSettings(t *testing.T) {
	profile := writeFile(t, "seccomp.json", "{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\"\n}\n")
	s := mustParse(t, "--name", "web", "--cidfile", "/tmp/cid", "--pull", "never", "-q", "--platform", "linux/amd64",
		"--cap-add", "NET_ADMIN", "--cap-drop", "ALL", "--group-add", "audio", "--privileged", "--read-only",
		"--security-opt", "seccomp="+profile, "--security-opt", "no-new-privileges", "--security-opt", "label:disable",
		"--security-opt", "systempaths=unconfined", "--sysctl", "net.ipv4.ip_forward=1", "--sysctl", "kernel.shmmax=1",
		"--pid", "host", "--uts", "host", "--userns", "host", "--cgroupns", "private", "--ipc", "container:db",
		"--runtime", "crun", "--annotation", "a=b", "--storage-opt", "size=10G",
		"--log-driver", "json-file", "--log-opt", "max-size=10m", "--log-opt", "max-file=3", "busybox")
	eq(t, "spec", []any{s.Name, s.CIDFile, s.Pull, s.Quiet, s.Platform}, []any{"web", "/tmp/cid", "never", true, "linux/amd64"})
	hc := s.HostConfig
	eq(t, "ContainerIDFile", hc.ContainerIDFile, "/tmp/cid")
	eq(t, "caps", [][]string{hc.CapAdd, hc.CapDrop, hc.GroupAdd}, [][]string{{"NET_ADMIN"}, {"ALL"}, {"audio"}})
	eq(t, "Privileged/ReadonlyRootfs", []bool{hc.Privileged, hc.ReadonlyRootfs}, []bool{true, true})
	eq(t, "SecurityOpt", hc.SecurityOpt, []string{`seccomp={"defaultAction":"SCMP_ACT_ALLOW"}`, "no-new-privileges", "label:disable"})
	eq(t, "MaskedPaths", hc.MaskedPaths, []string{})
	eq(t, "ReadonlyPaths", hc.ReadonlyPaths, []string{})
	eq(t, "Sysctls", hc.Sysctls, map[string]string{"net.ipv4.ip_forward": "1", "kernel.shmmax": "1"})
	eq(t, "modes", []string{string(hc.PidMode), string(hc.UTSMode), string(hc.UsernsMode), string(hc.CgroupnsMode), string(hc.IpcMode)},
		[]string{"host", "host", "host", "private", "container:db"})
	eq(t, "Runtime", hc.Runtime, "crun")
	eq(t, "Annotations", hc.Annotations, map[string]string{"a": "b"})
	eq(t, "StorageOpt", hc.StorageOpt, map[string]string{"size": "10G"})
	eq(t, "LogConfig", hc.LogConfig, container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "10m", "max-file": "3"}})

	s = mustParse(t, "--log-driver", "none", "busybox")
	eq(t, "LogConfig", s.HostConfig.LogConfig, container.LogConfig{Type: "none", Config: map[string]string{}})

	t.Setenv("DOCKER_DEFAULT_PLATFORM", "linux/arm64")
	s = mustParse(t, "busybox")
	eq(t, "Platform", s.Platform, "linux/arm64")
}

func TestParseErrors(t *testing.T) {
	nonexist := filepath.Join(t.TempDir(), "nonexist")
	badEnv := writeFile(t, "env", "A B=1\n")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "requires at least 1 argument"},
		// Flag values, in pflag's words around docker's.
		{[]string{"-m", "abc"}, `invalid argument "abc" for "-m, --memory" flag: invalid size: 'abc'`},
		{[]string{"--memory-swap", "abc"}, `invalid argument "abc" for "--memory-swap" flag: invalid size: 'abc'`},
		{[]string{"--shm-size", "-1"}, `invalid argument "-1" for "--shm-size" flag: invalid size: '-1'`},
		{[]string{"--cpus", "abc"}, `invalid argument "abc" for "--cpus" flag: failed to parse abc as a rational number`},
		{[]string{"--cpus", "0.0000000001"}, `invalid argument "0.0000000001" for "--cpus" flag: value is too precise`},
		{[]string{"-c", "x"}, `invalid argument "x" for "-c, --cpu-shares" flag: strconv.ParseInt: parsing "x": invalid syntax`},
		{[]string{"-a", "foo"}, `invalid argument "foo" for "-a, --attach" flag: valid streams are STDIN, STDOUT and STDERR`},
		{[]string{"-e", "=x"}, `invalid argument "=x" for "-e, --env" flag: invalid environment variable: =x`},
		{[]string{"-l", "=x"}, `invalid argument "=x" for "-l, --label" flag: invalid label '=x': empty name`},
		{[]string{"-l", "a b=x"}, `invalid argument "a b=x" for "-l, --label" flag: label 'a b' contains whitespaces`},
		{[]string{"--sysctl", "kernel.foo=1"}, `invalid argument "kernel.foo=1" for "--sysctl" flag: sysctl 'kernel.foo=1' is not allowed`},
		{[]string{"--ulimit", "nofile"}, `invalid argument "nofile" for "--ulimit" flag: invalid ulimit argument: nofile`},
		{[]string{"--ulimit", "foo=1"}, `invalid argument "foo=1" for "--ulimit" flag: invalid ulimit type: foo`},
		{[]string{"--ulimit", "nofile=2:1"}, `invalid argument "nofile=2:1" for "--ulimit" flag: ulimit soft limit must be less than or equal to hard limit: 2 > 1`},
		{[]string{"--device-cgroup-rule", "x"}, `invalid argument "x" for "--device-cgroup-rule" flag: invalid device cgroup format 'x'`},
		{[]string{"--dns", "1.2.3"}, `invalid argument "1.2.3" for "--dns" flag: IP address is not correctly formatted: 1.2.3`},
		{[]string{"--dns-search", "-bad"}, `invalid argument "-bad" for "--dns-search" flag: -bad is not a valid domain`},
		{[]string{"--add-host", "foo"}, `invalid argument "foo" for "--add-host" flag: bad format for add-host: "foo"`},
		{[]string{"--add-host", "foo:bar"}, `invalid argument "foo:bar" for "--add-host" flag: invalid IP address in add-host: "bar"`},
		{[]string{"--link", "a:b:c"}, `invalid argument "a:b:c" for "--link" flag: bad format for links: a:b:c`},
		{[]string{"--ip", "abc"}, `invalid argument "abc" for "--ip" flag: failed to parse IP: "abc"`},
		{[]string{"--health-interval", "abc"}, `invalid argument "abc" for "--health-interval" flag: time: invalid duration "abc"`},
		{[]string{"--network", "alias=a"}, `invalid argument "alias=a" for "--network" flag: network name/id is not specified`},
		{[]string{"--network", "name=a,bogus=b"}, `invalid argument "name=a,bogus=b" for "--network" flag: invalid field key bogus`},
		{[]string{"--mount", "foo"}, `invalid argument "foo" for "--mount" flag: invalid field 'foo' must be a key=value pair`},
		{[]string{"--mount", ""}, `invalid argument "" for "--mount" flag: value is empty`},
		{[]string{"--mount", "type=tmpfs,bind-propagation=shared"}, `invalid argument "type=tmpfs,bind-propagation=shared" for "--mount" flag: cannot mix 'bind-*' options with mount type 'tmpfs'`},
		{[]string{"--mount", "type=bind,volume-nocopy"}, `invalid argument "type=bind,volume-nocopy" for "--mount" flag: cannot mix 'volume-*' options with mount type 'bind'`},
		{[]string{"--mount", "type=tmpfs,tmpfs-size=abc"}, `invalid argument "type=tmpfs,tmpfs-size=abc" for "--mount" flag: invalid value for tmpfs-size: abc`},
		{[]string{"--mount", "type=tmpfs,tmpfs-mode=9"}, `invalid argument "type=tmpfs,tmpfs-mode=9" for "--mount" flag: invalid value for tmpfs-mode: 9`},
		{[]string{"--mount", "type=bind,ro=maybe"}, `invalid argument "type=bind,ro=maybe" for "--mount" flag: invalid value for 'ro': invalid boolean value ("maybe"): must be one of "true", "1", "false", or "0" (default "true")`},
		{[]string{"--mount", "type=bind,bind-recursive=readonly"}, `invalid argument "type=bind,bind-recursive=readonly" for "--mount" flag: option 'bind-recursive=readonly' requires 'readonly' to be specified in conjunction`},
		{[]string{"--mount", "type=bind,ro,bind-recursive=readonly"}, `invalid argument "type=bind,ro,bind-recursive=readonly" for "--mount" flag: option 'bind-recursive=readonly' requires 'bind-propagation=rprivate' to be specified in conjunction`},
		{[]string{"--mount", "type=bind,bind-recursive=writable"}, `invalid argument "type=bind,bind-recursive=writable" for "--mount" flag: option 'bind-recursive=writable' requires 'readonly' to be specified in conjunction`},
		{[]string{"--mount", "type=bind,bind-recursive=x"}, `invalid argument "type=bind,bind-recursive=x" for "--mount" flag: invalid value for bind-recursive: x (must be "enabled", "disabled", "writable", or "readonly")`},
		{[]string{"--mount", "type=bind,bind-nonrecursive"}, `invalid argument "type=bind,bind-nonrecursive" for "--mount" flag: bind-nonrecursive is deprecated, use bind-recursive=disabled instead`},
		{[]string{"--mount", "type=volume,src= x"}, `invalid argument "type=volume,src= x" for "--mount" flag: invalid value for 'src' in 'src= x': value should not have whitespace`},
		{[]string{"--mount", "type=volume,src="}, `invalid argument "type=volume,src=" for "--mount" flag: invalid value for 'src': value is empty`},
		{[]string{"--mount", "type=volume, src=x"}, `invalid argument "type=volume, src=x" for "--mount" flag: invalid option 'src' in ' src=x': option should not have whitespace`},
		{[]string{"--mount", "type=volume,bogus=1"}, `invalid argument "type=volume,bogus=1" for "--mount" flag: unknown option 'bogus' in 'bogus=1'`},
		// Checks after flag parsing.
		{[]string{"--pull", "sometimes"}, `invalid pull option: 'sometimes': must be one of "always", "missing" or "never"`},
		{[]string{"--platform", "a/b/c/d"}, `invalid platform "a/b/c/d": want os[/arch[/variant]]`},
		{[]string{"--mac-address", "xx"}, "xx is not a valid mac address"},
		{[]string{"--memory-swappiness", "101"}, "invalid value: 101. Valid memory swappiness range is 0-100"},
		{[]string{"--env-file", nonexist}, "--env-file: open " + nonexist + ": no such file or directory"},
		{[]string{"--env-file", badEnv}, "--env-file: invalid env file (" + badEnv + "): variable 'A B' contains whitespaces"},
		{[]string{"--label-file", nonexist}, "--label-file: open " + nonexist + ": no such file or directory"},
		{[]string{"--pid", "foo"}, "--pid: invalid PID mode"},
		{[]string{"--uts", "foo"}, "--uts: invalid UTS mode"},
		{[]string{"--userns", "foo"}, "--userns: invalid USER mode"},
		{[]string{"--cgroupns", "foo"}, "--cgroupns: invalid CGROUP mode"},
		{[]string{"--ipc", "foo"}, "invalid IPC mode: foo"},
		{[]string{"--restart", "foo"}, "invalid restart policy: unknown policy 'foo'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"},
		{[]string{"--restart", "always:3"}, "invalid restart policy: maximum retry count can only be used with 'on-failure'"},
		{[]string{"--restart", "on-failure:-1"}, "invalid restart policy: maximum retry count cannot be negative"},
		{[]string{"--restart", "on-failure:x"}, "invalid restart policy format: maximum retry count must be an integer"},
		{[]string{"--restart", ":3"}, "invalid restart policy format: no policy provided before colon"},
		{[]string{"--rm", "--restart", "always"}, "conflicting options: cannot specify both --restart and --rm"},
		{[]string{"--cpus", "1", "--cpu-period", "1000"}, "Conflicting options: Nano CPUs and CPU Period cannot both be set"},
		{[]string{"--cpus", "1", "--cpu-quota", "1000"}, "Conflicting options: Nano CPUs and CPU Quota cannot both be set"},
		{[]string{"--no-healthcheck", "--health-cmd", "x"}, "--no-healthcheck conflicts with --health-* options"},
		{[]string{"--no-healthcheck", "--health-retries", "1"}, "--no-healthcheck conflicts with --health-* options"},
		{[]string{"--health-interval", "-1s"}, "--health-interval cannot be negative"},
		{[]string{"--health-timeout", "-1s"}, "--health-timeout cannot be negative"},
		{[]string{"--health-retries", "-1"}, "--health-retries cannot be negative"},
		{[]string{"--health-start-period", "-1s"}, "--health-start-period cannot be negative"},
		{[]string{"--health-start-interval", "-1s"}, "--health-start-interval cannot be negative"},
		{[]string{"-p", "garbage"}, "invalid containerPort: garbage"},
		{[]string{"-p", "garbage:80"}, "invalid hostPort: garbage"},
		{[]string{"-p", "1.2.3:80:80"}, "invalid IP address: 1.2.3"},
		{[]string{"-p", "80/xyz"}, "invalid proto: xyz"},
		{[]string{"-p", "80:"}, "no port specified: 80:<empty>"},
		{[]string{"-p", "70000"}, "invalid containerPort: 70000"},
		{[]string{"-p", "8000-8001:80-82"}, "invalid ranges specified for container and host Ports: 80-82 and 8000-8001"},
		{[]string{"-p", "published=8080,target"}, "invalid publish opts format (should be name=value but got 'target')"},
		{[]string{"--expose", "abc"}, "invalid range format for --expose: invalid start port 'abc': invalid syntax"},
		{[]string{"--expose", "90-80"}, "invalid range format for --expose: invalid port range: 90-80"},
		{[]string{"--device", "sda"}, "sda is not an absolute path"},
		{[]string{"--device", "/dev/a:b"}, "b is not an absolute path"},
		{[]string{"--device", ":/dev/a"}, "bad format for path: :/dev/a"},
		{[]string{"--device", "/dev/a:/dev/b:xyz"}, "bad mode specified: xyz"},
		{[]string{"--device", "/dev/a:/dev/b:r:w"}, "bad format for path: /dev/a:/dev/b:r:w"},
		{[]string{"-v", ""}, "invalid empty volume spec"},
		{[]string{"-v", "/a::/b"}, "invalid spec: /a::/b: empty section between colons"},
		{[]string{"-v", "/a:/b:ro:x"}, "invalid spec: /a:/b:ro:x: too many colons"},
		{[]string{"--log-driver", "none", "--log-opt", "max-size=1m"}, "invalid logging opts for driver none"},
		{[]string{"--log-opt", "max-size=abc"}, "invalid value for log option max-size: invalid size: 'abc'"},
		{[]string{"--log-opt", "max-file=0"}, "max-file cannot be less than 1"},
		{[]string{"--log-opt", "foo=bar"}, "unknown log opt 'foo' for json-file log driver"},
		{[]string{"--security-opt", "foo"}, `invalid --security-opt: "foo"`},
		{[]string{"--security-opt", "seccomp=" + nonexist}, "opening seccomp profile (" + nonexist + ") failed: open " + nonexist + ": no such file or directory"},
		{[]string{"--security-opt", "seccomp=" + badEnv}, "compacting json for seccomp profile (" + badEnv + ") failed: invalid character 'A' looking for beginning of value"},
		{[]string{"--storage-opt", "foo"}, "invalid storage option"},
		{[]string{"--network", "host", "--network-alias", "x"}, "network-scoped aliases are only supported for user-defined networks"},
		{[]string{"--network", "a", "--network", "host"}, "conflicting options: cannot attach both user-defined and non-user-defined network-modes"},
		{[]string{"--network", "a", "--network", "a"}, `network "a" is specified multiple times`},
		{[]string{"--network", "name=a,alias=x", "--network-alias", "b"}, "conflicting options: cannot specify both --network-alias and per-network alias"},
		{[]string{"--network", "name=a,ip=10.0.0.1", "--ip", "10.0.0.2"}, "conflicting options: cannot specify both --ip and per-network IPv4 address"},
		{[]string{"--network", "name=a,mac-address=xx"}, "xx is not a valid mac address"},
	} {
		args := tc.args
		if args != nil {
			args = append(args, "busybox")
		}
		_, err := parseRun(t, args...)
		if err == nil {
			t.Errorf("%q: no error, want %q", args, tc.want)
			continue
		}
		if err.Error() != tc.want {
			t.Errorf("%q:\n got  %q\n want %q", args, err, tc.want)
		}
		var perr *pflag.InvalidValueError
		if !errors.As(err, &perr) && !errdefs.IsInvalidArgument(err) {
			t.Errorf("%q: error %v is not of class invalid argument", args, err)
		}
	}
}

func TestParseVolumeSpec(t *testing.T) {
	for spec, want := range map[string]volumeSpec{
		"/a":          {target: "/a"},
		"ab":          {target: "ab"},
		"/a:/b":       {source: "/a", target: "/b", bind: true},
		"./a:/b:ro":   {source: "./a", target: "/b", bind: true},
		"~/a:/b":      {source: "~/a", target: "/b", bind: true},
		"vol:/b:rw":   {source: "vol", target: "/b"},
		"c:/x:/b":     {source: "c:/x", target: "/b", bind: true},
		"c:\\x:/b:ro": {source: "c:\\x", target: "/b", bind: true},
	} {
		got, err := parseVolumeSpec(spec)
		if err != nil {
			t.Errorf("%s: %v", spec, err)
			continue
		}
		eq(t, spec, got, want)
	}
}
