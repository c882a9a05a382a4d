package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/internal/testenv"
	"github.com/berth-dev/berth/snapshot"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/opencontainers/go-digest"
)

// fixture is a store with images pulled from a real registry.
type fixture struct {
	root, host string
	images     map[string]v1.Image // by short repository name
}

// facts are the digests of a test image.
type facts struct {
	id, manifest digest.Digest
	layers       []digest.Digest
	chains       []digest.Digest
}

func (f fixture) name(repo string) string { return f.host + "/library/" + repo }

func (f fixture) facts(t *testing.T, repo string) facts {
	t.Helper()
	img := f.images[repo]
	cn, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	md, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	fx := facts{id: digest.Digest(cn.String()), manifest: digest.Digest(md.String())}
	var diffs []digest.Digest
	for _, l := range ls {
		d, _ := l.Digest()
		di, _ := l.DiffID()
		fx.layers = append(fx.layers, digest.Digest(d.String()))
		diffs = append(diffs, digest.Digest(di.String()))
	}
	fx.chains = image.ChainIDs(diffs)
	return fx
}

// newFixture pushes busybox, a four-layer image on the same base layer,
// and a labelled busybox made a year later, and pulls all three.
func newFixture(t *testing.T) fixture {
	t.Helper()
	testenv.RequiresRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	bb := testenv.BusyboxImage(t)
	labelled, err := mutate.Config(bb, v1.Config{Cmd: []string{"sh"}, Labels: map[string]string{"com.example.team": "infra"}})
	if err != nil {
		t.Fatal(err)
	}
	if labelled, err = mutate.CreatedAt(labelled, v1.Time{Time: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
	f := fixture{root: t.TempDir(), host: reg.Host, images: map[string]v1.Image{
		"busybox": bb, "multi": testenv.MultiLayerImage(t), "labelled": labelled,
	}}
	for _, repo := range []string{"busybox", "multi", "labelled"} {
		testenv.PushImage(t, reg, "library/"+repo+":latest", f.images[repo])
		if _, errs, code := berth(t, f.root, "pull", "-q", f.name(repo)); code != 0 {
			t.Fatalf("pull %s: exit %d: %s", repo, code, errs)
		}
	}
	return f
}

func lines(s string) []string { return strings.Split(strings.TrimRight(s, "\n"), "\n") }

func TestImagesCommand(t *testing.T) {
	f := newFixture(t)
	bb, multi, lab := f.facts(t, "busybox"), f.facts(t, "multi"), f.facts(t, "labelled")

	out, errs, code := berth(t, f.root, "images")
	if code != 0 {
		t.Fatalf("images: exit %d: %s", code, errs)
	}
	ls := lines(out)
	if !strings.HasPrefix(ls[0], "REPOSITORY") || strings.Join(strings.Fields(ls[0]), " ") != "REPOSITORY TAG IMAGE ID CREATED SIZE" {
		t.Errorf("images header = %q", ls[0])
	}
	if len(ls) != 4 {
		t.Fatalf("images: %d lines, want a header and 3 rows:\n%s", len(ls), out)
	}
	// Newest first: labelled (2025), then the two made in 2024.
	if got := strings.Fields(ls[1]); got[0] != f.name("labelled") || got[1] != "latest" || got[2] != shortHex(lab.id.String()) {
		t.Errorf("images first row = %q, want labelled", ls[1])
	}
	for _, l := range ls[1:] {
		if !strings.Contains(l, " ago ") || strings.HasSuffix(l, " 0B") || !strings.HasSuffix(l, "MB") {
			t.Errorf("images row %q: want CREATED ... ago and an MB size", l)
		}
	}
	if !strings.Contains(out, shortHex(multi.id.String())) || !strings.Contains(out, shortHex(bb.id.String())) {
		t.Errorf("images lacks an ID:\n%s", out)
	}
	for _, alias := range [][]string{{"image", "ls"}, {"image", "list"}} {
		if o, _, code := berth(t, f.root, alias...); code != 0 || o != out {
			t.Errorf("%v: exit %d:\n%s", alias, code, o)
		}
	}

	if _, errs, code := berth(t, f.root, "tag", f.name("busybox"), "mine:1"); code != 0 {
		t.Fatalf("tag: exit %d: %s", code, errs)
	}
	out, _, _ = berth(t, f.root, "images", "-q")
	if got := lines(out); len(got) != 3 || got[0] != shortHex(lab.id.String()) {
		t.Errorf("images -q (4 names, 3 images) = %q", got)
	}
	out, _, _ = berth(t, f.root, "images", "--no-trunc", "-q")
	if !strings.Contains(out, bb.id.String()+"\n") {
		t.Errorf("images --no-trunc -q lacks %s:\n%s", bb.id, out)
	}
	out, _, _ = berth(t, f.root, "images", "--digests")
	ls = lines(out)
	if strings.Join(strings.Fields(ls[0]), " ") != "REPOSITORY TAG DIGEST IMAGE ID CREATED SIZE" {
		t.Errorf("images --digests header = %q", ls[0])
	}
	var sawMine, sawPulled bool
	for _, l := range ls[1:] {
		fs := strings.Fields(l)
		switch fs[0] {
		case "mine":
			sawMine = fs[1] == "1" && fs[2] == "<none>" && fs[3] == shortHex(bb.id.String())
		case f.name("busybox"):
			sawPulled = fs[2] == bb.manifest.String()
		}
	}
	if !sawMine || !sawPulled {
		t.Errorf("images --digests: tag mine:1 with <none> %v, pulled busybox with its manifest digest %v:\n%s", sawMine, sawPulled, out)
	}

	formats := []struct {
		args []string
		want []string
	}{
		{[]string{"--format", "{{.Repository}}:{{.Tag}}", f.name("busybox")}, []string{f.name("busybox") + ":latest"}},
		{[]string{"--format", "table {{.ID}}\\t{{.Tag}}", "mine"}, []string{"IMAGE ID       TAG", shortHex(bb.id.String()) + "   1"}},
		{[]string{"-f", "reference=" + f.host + "/library/*", "--format", "{{.Repository}}"}, []string{f.name("labelled"), f.name("busybox"), f.name("multi")}},
		{[]string{"-f", "reference=mine:*", "--format", "{{.Repository}}"}, []string{"mine"}},
		{[]string{"-f", "dangling=true", "-q"}, nil},
		{[]string{"-f", "dangling=false", "-q"}, []string{shortHex(lab.id.String()), shortHex(bb.id.String()), shortHex(multi.id.String())}},
		{[]string{"-f", "label=com.example.team", "-q"}, []string{shortHex(lab.id.String())}},
		{[]string{"-f", "label=com.example.team=infra", "-q"}, []string{shortHex(lab.id.String())}},
		{[]string{"-f", "label=com.example.team=other", "-q"}, nil},
		{[]string{"-f", "since=" + f.name("busybox"), "-q"}, []string{shortHex(lab.id.String())}},
		{[]string{"-f", "before=" + f.name("labelled"), "--format", "{{.Repository}}"}, []string{f.name("busybox"), f.name("multi"), "mine"}},
	}
	for _, tt := range formats {
		out, errs, code := berth(t, f.root, append([]string{"images"}, tt.args...)...)
		got := lines(out)
		if out == "" {
			got = nil
		}
		if code != 0 || strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("images %q: exit %d %s\n got %q\nwant %q", tt.args, code, errs, got, tt.want)
		}
	}
	if _, errs, code := berth(t, f.root, "images", "-f", "color=red"); code != 1 || !strings.Contains(errs, "invalid filter 'color'") {
		t.Errorf("images -f color=red: exit %d, %q", code, errs)
	}

	out, _, _ = berth(t, f.root, "images", "--format", "json", "mine")
	var row map[string]string
	if err := json.Unmarshal([]byte(out), &row); err != nil {
		t.Fatalf("images --format json: %v: %q", err, out)
	}
	if row["Repository"] != "mine" || row["Tag"] != "1" || row["ID"] != shortHex(bb.id.String()) ||
		!strings.HasSuffix(row["CreatedSince"], " ago") || !strings.HasPrefix(row["CreatedAt"], "2024-01-01") || row["Size"] == "" {
		t.Errorf("images --format json = %v", row)
	}
}

func TestRmiCommand(t *testing.T) {
	f := newFixture(t)
	bb, multi, lab := f.facts(t, "busybox"), f.facts(t, "multi"), f.facts(t, "labelled")
	blob := func(d digest.Digest) bool {
		_, err := os.Stat(filepath.Join(f.root, "content", "blobs", d.Algorithm().String(), d.Encoded()))
		return err == nil
	}
	snapshots := func() map[string]bool {
		s, err := snapshot.NewOverlay(filepath.Join(f.root, "snapshots", "overlay"))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		got := map[string]bool{}
		s.Walk(t.Context(), func(i snapshot.Info) error { got[i.Key] = true; return nil })
		return got
	}

	// A second name: removing it only untags.
	berth(t, f.root, "tag", f.name("busybox"), "mine:1")
	out, errs, code := berth(t, f.root, "rmi", "mine:1")
	if code != 0 || out != "Untagged: mine:1\n" {
		t.Errorf("rmi mine:1 = exit %d %q %s, want only the untag", code, out, errs)
	}
	if !blob(bb.id) {
		t.Error("rmi of a second name deleted the config")
	}

	// By ID with names in two repositories: docker's conflict, then -f.
	berth(t, f.root, "tag", f.name("labelled"), "other:2")
	_, errs, code = berth(t, f.root, "rmi", shortHex(lab.id.String()))
	want := "Error response from daemon: conflict: unable to delete " + shortHex(lab.id.String()) + " (must be forced) - image is referenced in multiple repositories\n"
	if code != 1 || errs != want {
		t.Errorf("rmi ID of two repos: exit %d %q, want %q", code, errs, want)
	}
	out, errs, code = berth(t, f.root, "image", "rm", "-f", shortHex(lab.id.String()))
	if code != 0 || !strings.Contains(out, "Untagged: other:2\n") || !strings.Contains(out, "Untagged: "+f.name("labelled")+":latest\n") ||
		!strings.Contains(out, "Deleted: "+lab.id.String()+"\n") {
		t.Errorf("rmi -f ID: exit %d %s:\n%s", code, errs, out)
	}
	if blob(lab.id) || blob(lab.manifest) || !blob(lab.layers[0]) {
		t.Errorf("rmi -f ID: config gone %v, manifest gone %v, shared layer kept %v", !blob(lab.id), !blob(lab.manifest), blob(lab.layers[0]))
	}

	// The last name of busybox: untag, repo digest, delete; the base layer
	// stays for multi.
	out, errs, code = berth(t, f.root, "rmi", f.name("busybox"))
	want = "Untagged: " + f.name("busybox") + ":latest\n" +
		"Untagged: " + f.name("busybox") + "@" + bb.manifest.String() + "\n" +
		"Deleted: " + bb.id.String() + "\n"
	if code != 0 || out != want {
		t.Errorf("rmi busybox: exit %d %s\n got %q\nwant %q", code, errs, out, want)
	}
	if blob(bb.id) || blob(bb.manifest) || !blob(bb.layers[0]) || !snapshots()[bb.chains[0].String()] {
		t.Errorf("rmi busybox: config gone %v, manifest gone %v, shared layer blob kept %v, its snapshot kept %v",
			!blob(bb.id), !blob(bb.manifest), blob(bb.layers[0]), snapshots()[bb.chains[0].String()])
	}

	// A missing name fails but the others go on; then nothing is left.
	out, errs, code = berth(t, f.root, "rmi", "nosuch", f.name("multi"), "nosuch2:3")
	if code != 1 || errs != "Error response from daemon: No such image: nosuch:latest\nError response from daemon: No such image: nosuch2:3\n" {
		t.Errorf("rmi of missing ones: exit %d, stderr %q", code, errs)
	}
	for i := len(multi.chains) - 1; i >= 0; i-- {
		if !strings.Contains(out, "Deleted: "+multi.chains[i].String()+"\n") {
			t.Errorf("rmi multi did not report layer %d deleted:\n%s", i, out)
		}
	}
	if s := snapshots(); len(s) != 0 {
		t.Errorf("snapshots left after every image went: %v", s)
	}
	var left []string
	filepath.WalkDir(filepath.Join(f.root, "content", "blobs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			left = append(left, p)
		}
		return nil
	})
	if len(left) != 0 {
		t.Errorf("blobs left after every image went: %v", left)
	}
	if out, _, _ := berth(t, f.root, "images", "-q"); out != "" {
		t.Errorf("images -q after removing all = %q", out)
	}
}

func TestImageInspectCommand(t *testing.T) {
	f := newFixture(t)
	multi := f.facts(t, "multi")
	berth(t, f.root, "tag", f.name("multi"), "mine:1")

	out, errs, code := berth(t, f.root, "image", "inspect", "mine:1")
	if code != 0 {
		t.Fatalf("image inspect: exit %d: %s", code, errs)
	}
	if !strings.HasPrefix(out, "[\n    {\n        \"Id\": \"sha256:") {
		t.Errorf("image inspect is not docker's indented array:\n%.200s", out)
	}
	var got []map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != 1 {
		t.Fatalf("image inspect: %v, %d elements", err, len(got))
	}
	g := got[0]
	cfg, _ := g["Config"].(map[string]any)
	rootfs, _ := g["RootFS"].(map[string]any)
	layers, _ := rootfs["Layers"].([]any)
	driver, _ := g["GraphDriver"].(map[string]any)
	meta, _ := g["Metadata"].(map[string]any)
	checks := []struct {
		field string
		ok    bool
	}{
		{"Id", g["Id"] == multi.id.String()},
		{"RepoTags", strings.Join(toStrings(g["RepoTags"]), ",") == f.name("multi")+":latest,mine:1"},
		{"RepoDigests", strings.Join(toStrings(g["RepoDigests"]), ",") == f.name("multi")+"@"+multi.manifest.String()},
		{"Parent", g["Parent"] == ""},
		{"Created", g["Created"] == "2024-01-01T00:00:00Z"},
		{"Config.Cmd", strings.Join(toStrings(cfg["Cmd"]), " ") == "sh"},
		{"Config.Hostname", cfg["Hostname"] == ""},
		{"Config.Env", len(toStrings(cfg["Env"])) == 1},
		{"Architecture", g["Architecture"] == runtime.GOARCH},
		{"Os", g["Os"] == "linux"},
		{"Size", g["Size"].(float64) > 1e6},
		{"GraphDriver.Name", driver["Name"] == "overlay2"},
		{"RootFS", rootfs["Type"] == "layers" && len(layers) == 4},
		{"Metadata.LastTagTime", meta["LastTagTime"] != "0001-01-01T00:00:00Z"},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("image inspect %s wrong in:\n%s", c.field, out)
		}
	}

	for _, tt := range []struct{ args, want string }{
		{"-f {{.Id}}", multi.id.String() + "\n"},
		{"--format {{json .Config.Cmd}}", "[\"sh\"]\n"},
		{"-f {{join .RepoTags \",\"}}|{{upper .Os}}", f.name("multi") + ":latest,mine:1|LINUX\n"},
	} {
		flag, tmpl, _ := strings.Cut(tt.args, " ")
		out, errs, code := berth(t, f.root, "inspect", flag, tmpl, "mine:1")
		if code != 0 || out != tt.want {
			t.Errorf("inspect %s = exit %d %q %s, want %q", tt.args, code, out, errs, tt.want)
		}
	}
	out, errs, code = berth(t, f.root, "image", "inspect", "nosuch")
	if code != 1 || out != "[]\n" || !strings.Contains(errs, "No such image: nosuch") {
		t.Errorf("image inspect nosuch: exit %d, %q, %q", code, out, errs)
	}
}

func toStrings(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func TestHistoryCommand(t *testing.T) {
	f := newFixture(t)
	multi := f.facts(t, "multi")
	out, errs, code := berth(t, f.root, "history", f.name("multi"))
	if code != 0 {
		t.Fatalf("history: exit %d: %s", code, errs)
	}
	ls := lines(out)
	if strings.Join(strings.Fields(ls[0]), " ") != "IMAGE CREATED CREATED BY SIZE COMMENT" || len(ls) != 5 {
		t.Fatalf("history: want docker's header and 4 rows:\n%s", out)
	}
	for i, l := range ls[1:] {
		wantID := "<missing>"
		if i == 0 {
			wantID = shortHex(multi.id.String())
		}
		if !strings.HasPrefix(l, wantID+" ") || !strings.Contains(l, " ago ") ||
			!strings.Contains(l, "berth testenv layer "+string(rune('4'-i))) {
			t.Errorf("history row %d = %q", i, l)
		}
	}
	if !strings.Contains(ls[4], "MB") {
		t.Errorf("history: the busybox layer's size is not in MB: %q", ls[4])
	}
	out, _, _ = berth(t, f.root, "history", "-q", "--no-trunc", f.name("multi"))
	if want := multi.id.String() + "\n<missing>\n<missing>\n<missing>\n"; out != want {
		t.Errorf("history -q --no-trunc = %q, want %q", out, want)
	}
	out, _, _ = berth(t, f.root, "history", "-H=false", "--format", "{{.CreatedSince}} {{.Size}}", f.name("multi"))
	for _, l := range lines(out) {
		at, size, _ := strings.Cut(l, " ")
		if _, err := time.Parse(time.RFC3339, at); err != nil || strings.Trim(size, "0123456789") != "" || size == "" {
			t.Errorf("history -H=false row %q: want an RFC 3339 time and a byte count", l)
		}
	}
	if _, errs, code := berth(t, f.root, "history", "nosuch"); code != 1 || errs != "Error response from daemon: No such image: nosuch:latest\n" {
		t.Errorf("history nosuch: exit %d, %q", code, errs)
	}
}

func TestImagesDangling(t *testing.T) {
	testenv.RequiresRoot(t)
	root := t.TempDir()
	id := importDangling(t, root)
	out, _, _ := berth(t, root, "images")
	if ls := lines(out); len(ls) != 2 || !strings.HasPrefix(ls[1], "<none>       <none>    "+shortHex(id)+"   ") {
		t.Errorf("images with a dangling image:\n%s", out)
	}
	if out, _, _ := berth(t, root, "images", "-q", "-f", "dangling=true"); out != shortHex(id)+"\n" {
		t.Errorf("images -f dangling=true = %q", out)
	}
	if out, _, _ := berth(t, root, "images", "-q", "-f", "dangling=false"); out != "" {
		t.Errorf("images -f dangling=false = %q", out)
	}
	out, errs, code := berth(t, root, "rmi", shortHex(id))
	if code != 0 || !strings.HasPrefix(out, "Deleted: "+id+"\nDeleted: sha256:") || len(lines(out)) != 2 {
		t.Errorf("rmi of a dangling image: exit %d %q %s, want the image and its layer deleted, nothing untagged", code, out, errs)
	}
}
