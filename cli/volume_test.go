package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testenv"
)

// mustBerth runs berth and fails the test unless it exits 0.
func mustBerth(t *testing.T, root string, args ...string) string {
	t.Helper()
	out, errs, code := berth(t, root, args...)
	if code != 0 {
		t.Fatalf("berth %s: exit %d: %s", strings.Join(args, " "), code, errs)
	}
	return out
}

func TestVolumeCreateCommand(t *testing.T) {
	testenv.RequiresRoot(t)
	root := t.TempDir()
	if out := mustBerth(t, root, "volume", "create", "data"); out != "data\n" {
		t.Errorf("create data printed %q", out)
	}
	if out := mustBerth(t, root, "volume", "create", "--name", "byflag"); out != "byflag\n" {
		t.Errorf("create --name printed %q", out)
	}
	out := mustBerth(t, root, "volume", "create")
	if !regexp.MustCompile(`^[0-9a-f]{64}\n$`).MatchString(out) {
		t.Errorf("anonymous create printed %q", out)
	}
	if out := mustBerth(t, root, "volume", "create", "--label", "a=b", "--label", "c", "-o", "type=tmpfs", "--opt", "device=tmpfs", "-o", "o=size=1m", "-d", "local", "tmpvol"); out != "tmpvol\n" {
		t.Errorf("create with options printed %q", out)
	}
	chars := `includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-d", "foo", "x1"}, 1, "Error response from daemon: create x1: error looking up volume plugin foo: plugin \"foo\" not found\n"},
		{[]string{"a"}, 1, "Error response from daemon: create a: volume name is too short, names should be at least two alphanumeric characters\n"},
		{[]string{"../x"}, 1, "Error response from daemon: create ../x: \"../x\" " + chars + "\n"},
		{[]string{"-o", "bogus=1", "x2"}, 1, "Error response from daemon: create x2: invalid option: \"bogus\"\n"},
		{[]string{"-o", "type=tmpfs", "x3"}, 1, "Error response from daemon: create x3: missing required option: \"device\"\n"},
		{[]string{"--label", "=v", "x4"}, 125, "invalid argument \"=v\" for \"--label\" flag: invalid label '=v': empty name\n\nUsage:  berth volume create [OPTIONS] [VOLUME]\n\nRun 'berth volume create --help' for more information\n"},
		{[]string{"--name", "x5", "x6"}, 1, "conflicting options: cannot specify a volume-name through both --name and as a positional arg\n"},
	} {
		_, errs, code := berth(t, root, append([]string{"volume", "create"}, tt.args...)...)
		if code != tt.code || errs != tt.want {
			t.Errorf("create %q: exit %d %q, want %d %q", tt.args, code, errs, tt.code, tt.want)
		}
	}
	if _, errs, code := berth(t, root, "volume", "create", "x7", "x8"); code == 0 || !strings.Contains(errs, "requires at most 1 argument") {
		t.Errorf("create with two names: exit %d %q", code, errs)
	}
	// The same name again is the same volume.
	if out := mustBerth(t, root, "volume", "create", "--label", "new=1", "data"); out != "data\n" {
		t.Errorf("second create printed %q", out)
	}
	if out := mustBerth(t, root, "volume", "ls", "-q"); len(lines(out)) != 4 {
		t.Errorf("after the creates, ls -q:\n%s", out)
	}
}

func TestVolumeListCommand(t *testing.T) {
	testenv.RequiresRoot(t)
	root := t.TempDir()
	for _, n := range []string{"vol-10", "vol-2", "vol-1"} {
		mustBerth(t, root, "volume", "create", n)
	}
	mustBerth(t, root, "volume", "create", "--label", "team=web", "--label", "com.example.tier=front", "web")
	anon := strings.TrimSpace(mustBerth(t, root, "volume", "create"))

	out := mustBerth(t, root, "volume", "ls")
	want := "DRIVER    VOLUME NAME\n" +
		"local     " + anon + "\n" +
		"local     vol-1\nlocal     vol-2\nlocal     vol-10\nlocal     web\n"
	if out != want {
		t.Errorf("ls:\n%s\nwant\n%s", out, want)
	}
	if out := mustBerth(t, root, "volume", "list", "-q"); out != anon+"\nvol-1\nvol-2\nvol-10\nweb\n" {
		t.Errorf("ls -q:\n%s", out)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--filter", "label=team"}, "web\n"},
		{[]string{"-f", "label=team=db"}, ""},
		{[]string{"-f", "name=vol-1"}, "vol-1\nvol-10\n"},
		{[]string{"-f", "name=vol-1", "-f", "name=web"}, "vol-1\nvol-10\nweb\n"},
		{[]string{"-f", "driver=local", "-f", "label=com.docker.volume.anonymous"}, anon + "\n"},
		{[]string{"-f", "dangling=true", "-f", "name=^vol-2$"}, "vol-2\n"},
		{[]string{"-f", "dangling=false"}, ""},
		{[]string{"-f", " Name = web "}, "web\n"},
	} {
		out := mustBerth(t, root, append([]string{"volume", "ls", "-q"}, tt.args...)...)
		if out != tt.want {
			t.Errorf("ls -q %q:\n%s\nwant\n%s", tt.args, out, tt.want)
		}
	}
	for _, tt := range []struct {
		format, want string
	}{
		{"{{.Name}} {{.Labels}} {{.Scope}} {{.Size}}", "web com.example.tier=front,team=web local N/A\n"},
		{`table {{.Name}}\t{{.Label "com.example.tier"}}\t{{.Mountpoint}}`, "VOLUME NAME   tier      MOUNTPOINT\nweb           front     " + filepath.Join(root, "volumes", "web", "_data") + "\n"},
		{"raw", "name: web\ndriver: local\n\n"},
	} {
		out := mustBerth(t, root, "volume", "ls", "--filter", "name=web", "--format", tt.format)
		if out != tt.want {
			t.Errorf("ls --format %q:\n%q\nwant\n%q", tt.format, out, tt.want)
		}
	}
	out = mustBerth(t, root, "volume", "ls", "--format", "json", "-f", "name=web")
	var row map[string]string
	if err := json.Unmarshal([]byte(out), &row); err != nil || row["Name"] != "web" || row["Driver"] != "local" ||
		row["Labels"] != "com.example.tier=front,team=web" || row["Links"] != "N/A" || len(row) != 10 {
		t.Errorf("ls --format json: %s (%v)", out, err)
	}
	if out := mustBerth(t, root, "volume", "ls", "-f", "name=nothing"); out != "DRIVER    VOLUME NAME\n" {
		t.Errorf("empty ls: %q", out)
	}
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-f", "nonsense"}, 125, "invalid argument \"nonsense\" for \"-f, --filter\" flag: bad format of filter (expected name=value)\n\nUsage:  berth volume ls [OPTIONS]\n\nRun 'berth volume ls --help' for more information\n"},
		{[]string{"-f", "foo=bar"}, 1, "Error response from daemon: invalid filter 'foo'\n"},
		{[]string{"-f", "dangling=maybe"}, 1, "Error response from daemon: invalid filter 'dangling=maybe'\n"},
		{[]string{"--format", "{{.Nope"}, 1, "Error response from daemon: template parsing error: template: :1: unclosed action\n"},
	} {
		_, errs, code := berth(t, root, append([]string{"volume", "ls"}, tt.args...)...)
		if code != tt.code || errs != tt.want {
			t.Errorf("ls %q: exit %d %q, want %d %q", tt.args, code, errs, tt.code, tt.want)
		}
	}
}

func TestVolumeInspectCommand(t *testing.T) {
	testenv.RequiresRoot(t)
	root := t.TempDir()
	mustBerth(t, root, "volume", "create", "data")
	mustBerth(t, root, "volume", "create", "--label", "k=v", "-o", "type=tmpfs", "-o", "device=tmpfs", "tmp")

	out := mustBerth(t, root, "volume", "inspect", "data")
	created := regexp.MustCompile(`"CreatedAt": "([^"]+)"`).FindStringSubmatch(out)
	if created == nil {
		t.Fatalf("inspect has no CreatedAt:\n%s", out)
	}
	if ts, err := time.Parse(time.RFC3339, created[1]); err != nil || time.Since(ts) > time.Minute || strings.Contains(created[1], ".") {
		t.Errorf("CreatedAt %q: %v", created[1], err)
	}
	want := `[
    {
        "CreatedAt": "` + created[1] + `",
        "Driver": "local",
        "Labels": {},
        "Mountpoint": "` + filepath.Join(root, "volumes", "data", "_data") + `",
        "Name": "data",
        "Options": {},
        "Scope": "local"
    }
]
`
	if out != want {
		t.Errorf("inspect:\n%s\nwant\n%s", out, want)
	}

	out = mustBerth(t, root, "volume", "inspect", "--format", "{{.Name}} {{.Driver}} {{.Labels.k}} {{.Options.type}} {{json .Options}}", "tmp", "data")
	if out != "tmp local v tmpfs {\"device\":\"tmpfs\",\"type\":\"tmpfs\"}\ndata local <no value> <no value> {}\n" {
		t.Errorf("inspect --format:\n%q", out)
	}
	out = mustBerth(t, root, "volume", "inspect", "-f", "json", "data", "tmp")
	var vs []map[string]any
	if err := json.Unmarshal([]byte(out), &vs); err != nil || len(vs) != 2 || vs[1]["Name"] != "tmp" || strings.Count(out, "\n") != 1 {
		t.Errorf("inspect -f json: %s (%v)", out, err)
	}

	out, errs, code := berth(t, root, "volume", "inspect", "data", "nosuch", "other")
	if code != 1 || !strings.HasPrefix(out, "[\n    {\n        \"CreatedAt\"") ||
		errs != "Error response from daemon: get nosuch: no such volume\nError response from daemon: get other: no such volume\n" {
		t.Errorf("inspect with missing volumes: exit %d\n%s%s", code, out, errs)
	}
	out, errs, code = berth(t, root, "volume", "inspect", "nosuch")
	if code != 1 || out != "[]\n" || errs != "Error response from daemon: get nosuch: no such volume\n" {
		t.Errorf("inspect nosuch: exit %d %q %q", code, out, errs)
	}
	if out, errs, code := berth(t, root, "volume", "inspect", "-f", "{{.Name}}", "nosuch"); code != 1 || out != "\n" || errs == "" {
		t.Errorf("inspect -f of nothing: exit %d %q %q", code, out, errs)
	}
	if _, errs, code := berth(t, root, "volume", "inspect", "-f", "{{", "data"); code != 64 || !strings.HasPrefix(errs, "template parsing error: ") {
		t.Errorf("inspect with a broken template: exit %d %q", code, errs)
	}
	if out, errs, code := berth(t, root, "volume", "inspect", "-f", "{{.Nope}}", "data"); code != 1 || out != "" || !strings.Contains(errs, `map has no entry for key "Nope"`) {
		t.Errorf("inspect of a missing field: exit %d %q %q", code, out, errs)
	}
	if _, errs, code := berth(t, root, "volume", "inspect"); code != 1 || !strings.Contains(errs, "requires at least 1 argument") {
		t.Errorf("inspect without names: exit %d %q", code, errs)
	}
}

func TestVolumeRemoveCommand(t *testing.T) {
	testenv.RequiresRoot(t)
	root := t.TempDir()
	mustBerth(t, root, "volume", "create", "one")
	mustBerth(t, root, "volume", "create", "two")
	out, errs, code := berth(t, root, "volume", "rm", "one", "nosuch", "two", "../etc")
	if code != 1 || out != "one\ntwo\n" ||
		errs != "Error response from daemon: get nosuch: no such volume\nError response from daemon: get ../etc: no such volume\n" {
		t.Errorf("rm: exit %d %q %q", code, out, errs)
	}
	if out := mustBerth(t, root, "volume", "ls", "-q"); out != "" {
		t.Errorf("after rm: %q", out)
	}
	if es, _ := os.ReadDir(filepath.Join(root, "volumes")); len(es) != 0 {
		t.Errorf("after rm the store holds %d entries", len(es))
	}
	if out := mustBerth(t, root, "volume", "remove", "-f", "nosuch"); out != "nosuch\n" {
		t.Errorf("rm -f of nothing printed %q", out)
	}
}

func TestVolumePruneCommand(t *testing.T) {
	testenv.RequiresRoot(t)
	root := t.TempDir()
	anon := strings.TrimSpace(mustBerth(t, root, "volume", "create"))
	mustBerth(t, root, "volume", "create", "named")
	mustBerth(t, root, "volume", "create", "--label", "keep=1", "kept")
	mustBerth(t, root, "volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "tmp")
	if err := os.WriteFile(filepath.Join(root, "volumes", anon, "_data", "f"), make([]byte, 1500), 0o644); err != nil {
		t.Fatal(err)
	}

	out := mustBerth(t, root, "volume", "prune", "-f")
	if out != "Deleted Volumes:\n"+anon+"\n\nTotal reclaimed space: 1.5kB\n" {
		t.Errorf("prune -f:\n%q", out)
	}
	if out := mustBerth(t, root, "volume", "prune", "-f"); out != "Total reclaimed space: 0B\n" {
		t.Errorf("prune -f with nothing to do: %q", out)
	}
	if _, errs, code := berth(t, root, "volume", "prune", "-a", "-f", "--filter", "all=1"); code != 1 || errs != "conflicting options: cannot specify both --all and --filter all=1\n" {
		t.Errorf("prune -a --filter all=1: exit %d %q", code, errs)
	}
	if _, errs, code := berth(t, root, "volume", "prune", "-f", "--filter", "until=1h"); code != 1 || errs != "Error response from daemon: invalid filter 'until'\n" {
		t.Errorf("prune --filter until: exit %d %q", code, errs)
	}
	if out := mustBerth(t, root, "volume", "prune", "-a", "-f", "--filter", "label!=keep"); out != "Deleted Volumes:\nnamed\n\nTotal reclaimed space: 0B\n" {
		t.Errorf("prune -a --filter label!=keep:\n%q", out)
	}
	if out := mustBerth(t, root, "volume", "prune", "-f", "--filter", "all=true"); out != "Deleted Volumes:\nkept\n\nTotal reclaimed space: 0B\n" {
		t.Errorf("prune --filter all=true:\n%q", out)
	}
	// A volume with mount options is never pruned: its data is not here.
	if out := mustBerth(t, root, "volume", "ls", "-q"); out != "tmp\n" {
		t.Errorf("after prune: %q", out)
	}
}

func TestVolumePrunePrompt(t *testing.T) {
	testenv.RequiresRoot(t)
	root := t.TempDir()
	anon := strings.TrimSpace(mustBerth(t, root, "volume", "create"))
	prune := func(answer string, args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		g := &globals{stdout: &out, stderr: &errb}
		cmd := newRoot(g)
		cmd.SetArgs(append([]string{"--root", root, "--runroot", t.TempDir(), "volume", "prune"}, args...))
		cmd.SetIn(strings.NewReader(answer))
		cmd.SetOut(&out)
		cmd.SetErr(&errb)
		code := 0
		if err := cmd.ExecuteContext(context.Background()); err != nil {
			code = 1
			errb.WriteString(err.Error())
		}
		return out.String(), errb.String(), code
	}
	const ask = "WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] "
	const askAll = "WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] "
	for _, tt := range []struct{ answer, want string }{{"", ask + "\n"}, {"n\n", ask}, {"yes\n", ask}} {
		// docker ≥ 29: a "no" cancels quietly, exit 0.
		out, errs, code := prune(tt.answer)
		if code != 0 || out != tt.want || errs != "" {
			t.Errorf("answer %q: exit %d %q %q", tt.answer, code, out, errs)
		}
	}
	if out, _, code := prune("N\n", "--all"); code != 0 || out != askAll {
		t.Errorf("prune --all, answer N: exit %d %q", code, out)
	}
	if out := mustBerth(t, root, "volume", "ls", "-q"); out != anon+"\n" {
		t.Errorf("a cancelled prune removed volumes: %q", out)
	}
	out, errs, code := prune("Y\n")
	if code != 0 || out != ask+"Deleted Volumes:\n"+anon+"\n\nTotal reclaimed space: 0B\n" {
		t.Errorf("answer y: exit %d %q %q", code, out, errs)
	}
}

// TestVolumesWithContainers: volumes as containers use them — filled from
// the image on first use, refused to rm while a container names them,
// not dangling then, and a tmpfs volume mounted only while one runs.
func TestVolumesWithContainers(t *testing.T) {
	h := newHost(t)
	id := strings.TrimSpace(h.ok("create", "-v", "etcvol:/etc", "-v", "/var", "busybox", "true"))
	mp := strings.TrimSpace(h.ok("volume", "inspect", "-f", "{{.Mountpoint}}", "etcvol"))
	if data, err := os.ReadFile(filepath.Join(mp, "passwd")); err != nil || !strings.HasPrefix(string(data), "root:") {
		t.Errorf("etcvol was not filled from the image's /etc: %q, %v", data, err)
	}
	anon := strings.TrimSpace(h.ok("volume", "ls", "-q", "-f", "label=com.docker.volume.anonymous"))
	if len(anon) != 64 {
		t.Fatalf("-v /var made %q", anon)
	}
	h.ok("volume", "create", "free")

	want := "Error response from daemon: remove etcvol: volume is in use - [" + id + "]\n"
	for _, args := range [][]string{{"volume", "rm", "etcvol"}, {"volume", "rm", "-f", "etcvol"}} {
		if _, errs, code := h.run("", args...); code != 1 || errs != want {
			t.Errorf("%v: exit %d %q, want %q", args, code, errs, want)
		}
	}
	both := strings.Join(slices.Sorted(slices.Values([]string{anon, "etcvol"})), "\n") + "\n" // in name order
	if out := h.ok("volume", "ls", "-q", "-f", "dangling=false"); out != both {
		t.Errorf("ls dangling=false:\n%s", out)
	}
	if out := h.ok("volume", "ls", "-q", "-f", "dangling=true"); out != "free\n" {
		t.Errorf("ls dangling=true:\n%s", out)
	}
	if out := h.ok("volume", "prune", "-a", "-f"); out != "Deleted Volumes:\nfree\n\nTotal reclaimed space: 0B\n" {
		t.Errorf("prune -a with volumes in use:\n%s", out)
	}
	h.ok("rm", id)
	if out := h.ok("volume", "ls", "-q", "-f", "dangling=true"); out != both {
		t.Errorf("after rm, ls dangling=true:\n%s", out)
	}
	if out := h.ok("volume", "rm", "etcvol"); out != "etcvol\n" {
		t.Errorf("rm of a volume no longer in use: %q", out)
	}

	// A tmpfs volume: mounted while the container runs, gone after.
	h.ok("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=1m", "scratch")
	out, errs, code := h.run("", "run", "--rm", "-v", "scratch:/x", "busybox", "sh", "-c", "echo hi > /x/f && cat /x/f && grep ' /x ' /proc/mounts")
	if code != 0 || !strings.HasPrefix(out, "hi\ntmpfs /x tmpfs ") {
		t.Errorf("run with a tmpfs volume: exit %d %q %q", code, out, errs)
	}
	mp = strings.TrimSpace(h.ok("volume", "inspect", "-f", "{{.Mountpoint}}", "scratch"))
	if b, _ := os.ReadFile("/proc/self/mountinfo"); bytes.Contains(b, []byte(" "+mp+" ")) {
		t.Errorf("the tmpfs volume stayed mounted after its container")
	}
	if out := h.ok("volume", "rm", "scratch"); out != "scratch\n" {
		t.Errorf("rm scratch: %q", out)
	}
}
