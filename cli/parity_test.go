package cli

import (
	"encoding/json"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestDockerParityErrors pins the messages and exit statuses found to
// differ from docker's when the same scenario ran on both (see
// docs/docker-parity.md): CLI-side messages without the daemon prefix,
// run's "berth: ... Run 'berth run --help'" wording, exec's exit statuses
// and start's summary of the containers it could not start.
func TestDockerParityErrors(t *testing.T) {
	h := newHost(t)
	made := strings.TrimSpace(h.ok("create", "--name", "made", "busybox", "true"))
	h.ok("run", "-d", "--name", "held", "busybox", "sleep", "1000")
	h.ok("pause", "held")
	h.ok("run", "-d", "--name", "up", "busybox", "sleep", "1000")
	runHelp := "\n\nRun 'berth run --help' for more information\n"
	for _, tc := range []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"start", "made", "nosuch"}, 1, "made\n",
			"Error response from daemon: No such container: nosuch\nfailed to start containers: nosuch\n"},
		{[]string{"start", "-a", "made", "up"}, 1, "", "you cannot start and attach multiple containers at once\n"},
		{[]string{"start"}, 1, "",
			"berth: 'berth start' requires at least 1 argument\n\nUsage:  berth start [OPTIONS] CONTAINER [CONTAINER...]\n\nSee 'berth start --help' for more information\n"},
		{[]string{"rename", "made"}, 1, "",
			"berth: 'berth rename' requires 2 arguments\n\nUsage:  berth rename CONTAINER NEW_NAME\n\nRun 'berth rename --help' for more information\n"},
		{[]string{"update", "--bogus", "made"}, 125, "",
			"unknown flag: --bogus\n\nUsage:  berth update [OPTIONS] CONTAINER [CONTAINER...]\n\nRun 'berth update --help' for more information\n"},
		{[]string{"rm", "-f", "nosuch"}, 0, "", ""},
		{[]string{"rm", "nosuch"}, 1, "", "Error response from daemon: No such container: nosuch\n"},
		{[]string{"kill", "nosuch"}, 1, "", "Error response from daemon: cannot kill container: nosuch: No such container: nosuch\n"},
		{[]string{"unpause", "made"}, 1, "", "Error response from daemon: container " + made + " is not paused\n"},
		{[]string{"exec", "nosuch", "true"}, 1, "", "Error response from daemon: No such container: nosuch\n"},
		{[]string{"exec", "held", "true"}, 1, "", "Error response from daemon: Container held is paused, unpause the container before exec\n"},
		{[]string{"inspect", "nosuch"}, 1, "[]\n", "error: no such object: nosuch\n"},
		{[]string{"container", "inspect", "--format", "{{.Name}}", "nosuch", "made", "nosuch2"}, 1, "/made\n",
			"Error response from daemon: No such container: nosuch\nError response from daemon: No such container: nosuch2\n"},
		{[]string{"image", "inspect", "nosuch"}, 1, "[]\n", "Error response from daemon: No such image: nosuch:latest\n"},
		{[]string{"rename", "made", " "}, 1, "", "failed to rename container: new name cannot be blank\n"},
		{[]string{"logs", "--since", "bogus", "made"}, 1, "",
			"invalid value for \"since\": failed to parse value as time or duration: \"bogus\"\n"},
		{[]string{"run", "--pull", "never", "nosuchimg"}, 125, "",
			"berth: Error response from daemon: No such image: nosuchimg:latest" + runHelp},
		{[]string{"run", "--pull", "bogus", "busybox", "true"}, 125, "",
			"berth: invalid pull option: 'bogus': must be one of \"always\", \"missing\" or \"never\"" + runHelp},
		{[]string{"create", "--pull", "bogus", "busybox", "true"}, 125, "",
			"berth: invalid pull option: 'bogus': must be one of \"always\", \"missing\" or \"never\"\n\nRun 'berth create --help' for more information\n"},
	} {
		out, errs, code := h.run("", tc.args...)
		if code != tc.code || out != tc.stdout || errs != tc.stderr {
			t.Errorf("berth %q: exit %d, stdout %q, stderr %q\nwant exit %d, stdout %q, stderr %q",
				tc.args, code, out, errs, tc.code, tc.stdout, tc.stderr)
		}
	}

	// docker's create exits 1 with the daemon's error; run 125 with it
	// wrapped.
	if _, errs, code := h.run("", "create", "--name", "made", "busybox", "true"); code != 1 ||
		!strings.HasPrefix(errs, "Error response from daemon: Conflict. The container name \"/made\" is already in use") {
		t.Errorf("create of a name in use: exit %d, %q", code, errs)
	}
	if _, errs, code := h.run("", "run", "--name", "made", "busybox", "true"); code != 125 ||
		!strings.HasPrefix(errs, "berth: Error response from daemon: Conflict.") || !strings.HasSuffix(errs, runHelp) {
		t.Errorf("run of a name in use: exit %d, %q", code, errs)
	}
	// run -d prints the ID of a container whose start fails, as docker
	// does; --rm removes it.
	out, errs, code := h.run("", "run", "-d", "--rm", "busybox", "nosuchcmd")
	if code != 127 || !regexp.MustCompile(`^[0-9a-f]{64}\n$`).MatchString(out) ||
		!strings.HasPrefix(errs, "berth: Error response from daemon: ") || !strings.Contains(errs, "executable file not found") || !strings.HasSuffix(errs, runHelp) {
		t.Errorf("run -d of a missing command: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	// exec: 127 and 126 for a command that cannot run, as the run's.
	if _, _, code := h.run("", "exec", "up", "nosuchcmd"); code != 127 {
		t.Errorf("exec of a missing command: exit %d, want 127", code)
	}
	if _, _, code := h.run("", "exec", "up", "/etc/passwd"); code != 126 {
		t.Errorf("exec of a file not executable: exit %d, want 126", code)
	}
	// A missing image named without a tag is looked for with docker's
	// default one, which run names once and pulls without "Using default
	// tag" (nothing listens on port 1: the pull fails at once).
	_, errs, code = h.run("", "run", "127.0.0.1:1/nosuch")
	if code != 125 || !strings.HasPrefix(errs, "Unable to find image '127.0.0.1:1/nosuch:latest' locally\n") ||
		strings.Contains(errs, "Using default tag") || !strings.HasSuffix(errs, runHelp) {
		t.Errorf("run of an image to pull: exit %d, %q", code, errs)
	}
}

// TestDockerParityShapes pins output shapes found to differ from docker's:
// ps's COMMAND quotes arguments holding spaces as docker's daemon does, and
// container inspect has docker's nulls, empty lists and create-time
// defaults.
func TestDockerParityShapes(t *testing.T) {
	h := newHost(t)
	h.ok("create", "--name", "sh", "busybox", "sh", "-c", "echo out; exit 3")
	if out := h.ok("ps", "-a", "--no-trunc", "--format", "{{.Command}}"); out != "\"sh -c 'echo out; exit 3'\"\n" {
		t.Errorf("ps COMMAND: %q", out)
	}
	if out := h.ok("ps", "-a", "--format", "{{.Command}}"); out != "\"sh -c 'echo out; ex…\"\n" {
		t.Errorf("ps COMMAND truncated: %q", out)
	}
	var row map[string]any
	if err := json.Unmarshal([]byte(h.ok("ps", "-a", "--format", "{{json .}}")), &row); err != nil {
		t.Fatal(err)
	}
	keys := slices.Sorted(maps.Keys(row))
	// docker 29's keys but Platform (null for a container without an
	// image manifest, which berth's rows cannot hold).
	if want := []string{"Command", "CreatedAt", "HealthStatus", "ID", "Image", "Labels", "LocalVolumes", "Mounts", "Names",
		"Networks", "Ports", "RunningFor", "Size", "State", "Status"}; !slices.Equal(keys, want) {
		t.Errorf("ps json keys %q, want %q", keys, want)
	}
	var v []map[string]json.RawMessage
	if err := json.Unmarshal([]byte(h.ok("inspect", "sh")), &v); err != nil || len(v) != 1 {
		t.Fatalf("inspect: %v", err)
	}
	var got struct {
		Config struct {
			Volumes json.RawMessage
		}
		HostConfig struct {
			IpcMode, CgroupnsMode, Runtime string
			ShmSize                        int64
			MemorySwappiness, PidsLimit    json.RawMessage
			Dns, BlkioDeviceReadBps        json.RawMessage
			MaskedPaths, ReadonlyPaths     []string
		}
		NetworkSettings struct{ Ports json.RawMessage }
		GraphDriver     struct{ Data map[string]string }
	}
	raw, _ := json.Marshal(v[0])
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	hc := got.HostConfig
	for _, c := range []struct{ what, got, want string }{
		{"Config.Volumes", string(got.Config.Volumes), "null"},
		{"IpcMode", hc.IpcMode, "private"},
		{"CgroupnsMode", hc.CgroupnsMode, "private"},
		{"Runtime", hc.Runtime, "runc"},
		{"MemorySwappiness", string(hc.MemorySwappiness), "null"},
		{"PidsLimit", string(hc.PidsLimit), "null"},
		{"Dns", string(hc.Dns), "[]"},
		{"BlkioDeviceReadBps", string(hc.BlkioDeviceReadBps), "[]"},
		{"NetworkSettings.Ports", string(got.NetworkSettings.Ports), "{}"},
	} {
		if c.got != c.want {
			t.Errorf("inspect %s = %s, want %s", c.what, c.got, c.want)
		}
	}
	if hc.ShmSize != 64<<20 || len(hc.MaskedPaths) == 0 || len(hc.ReadonlyPaths) == 0 {
		t.Errorf("inspect HostConfig: ShmSize %d, MaskedPaths %q, ReadonlyPaths %q", hc.ShmSize, hc.MaskedPaths, hc.ReadonlyPaths)
	}
	if d := got.GraphDriver.Data; !strings.HasSuffix(d["MergedDir"], "/rootfs") || d["UpperDir"] == "" {
		t.Errorf("inspect GraphDriver.Data: %v", d)
	}
}
