package cli

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testenv"
	"github.com/berth-dev/berth/meta"
	"github.com/opencontainers/go-digest"
)

// pulled pulls a multi-layer image from a fresh registry into a new root
// and returns the root and the image's name.
func pulled(t *testing.T) (root, name string) {
	t.Helper()
	testenv.RequiresRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	testenv.PushImage(t, reg, "library/multi:1", testenv.MultiLayerImage(t))
	root = t.TempDir()
	name = reg.Host + "/library/multi:1"
	if _, errs, code := berth(t, root, "pull", "-q", name); code != 0 {
		t.Fatalf("pull: %s", errs)
	}
	return root, name
}

func TestSaveLoad(t *testing.T) {
	root, name := pulled(t)
	id := imageID(t, root, name)
	for _, format := range []string{"docker", "oci"} {
		t.Run(format, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "img.tar")
			if out, errs, code := berth(t, root, "save", "--format", format, "-o", file, name); code != 0 || out != "" {
				t.Fatalf("save: exit %d: %s%s", code, out, errs)
			}
			fresh := t.TempDir()
			out, errs, code := berth(t, fresh, "load", "-i", file)
			if code != 0 || out != "Loaded image: "+name+"\n" {
				t.Fatalf("load: exit %d: %q %s", code, out, errs)
			}
			if got := imageID(t, fresh, name); got != id {
				t.Errorf("loaded image ID %s, saved %s", got, id)
			}
			// Loading twice is fine and changes nothing.
			if _, errs, code := berth(t, fresh, "load", "-q", "-i", file); code != 0 {
				t.Errorf("second load: %s", errs)
			}
		})
	}
	// To stdout when it is not a terminal; by ID, the image has no name.
	out, errs, code := berth(t, root, "save", strings.TrimPrefix(id, "sha256:")[:12])
	if code != 0 || len(out) < 1024 {
		t.Fatalf("save to stdout: exit %d, %d bytes: %s", code, len(out), errs)
	}
	names := tarNames(t, []byte(out))
	for _, want := range []string{"manifest.json", "index.json", "oci-layout", "blobs/sha256/" + strings.TrimPrefix(id, "sha256:")} {
		if !names[want] {
			t.Errorf("saved archive lacks %s: %v", want, names)
		}
	}
	file := filepath.Join(t.TempDir(), "byid.tar")
	os.WriteFile(file, []byte(out), 0o644)
	if out, errs, code := berth(t, t.TempDir(), "load", "-i", file); code != 0 || out != "Loaded image ID: "+id+"\n" {
		t.Errorf("load of an unnamed image: exit %d: %q %s", code, out, errs)
	}
	if _, errs, code := berth(t, root, "save", "-o", file, "nosuch:1"); code != 1 || !strings.Contains(errs, "No such image: nosuch:1") {
		t.Errorf("save of a missing image: exit %d: %s", code, errs)
	}
}

func tarNames(t *testing.T, data []byte) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names[h.Name] = true
	}
	return names
}

func TestSavePodmanLoad(t *testing.T) {
	if _, err := exec.LookPath("podman"); err != nil {
		t.Skip("podman not installed")
	}
	root, name := pulled(t)
	file := filepath.Join(t.TempDir(), "img.tar")
	if _, errs, code := berth(t, root, "save", "-o", file, name); code != 0 {
		t.Fatalf("save: %s", errs)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "containers.conf")
	os.WriteFile(conf, []byte("[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n"), 0o644)
	podman := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("podman", append([]string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"), "--storage-driver", "vfs"}, args...)...)
		cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+conf)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("podman %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	out := podman("load", "-i", file)
	if !strings.Contains(out, name) {
		t.Errorf("podman load: %s", out)
	}
	id := strings.TrimPrefix(imageID(t, root, name), "sha256:")
	if got := strings.TrimSpace(podman("image", "inspect", "--format", "{{.ID}}", name)); got != id {
		t.Errorf("podman sees image ID %q, berth saved %s", got, id)
	}
}

func TestLoadUmociLayout(t *testing.T) {
	testenv.RequiresRoot(t)
	if _, err := exec.LookPath("umoci"); err != nil {
		t.Skip("umoci not installed")
	}
	dir := t.TempDir()
	layout := filepath.Join(dir, "layout")
	src := filepath.Join(dir, "hello")
	os.WriteFile(src, []byte("hello from umoci\n"), 0o644)
	for _, args := range [][]string{
		{"init", "--layout", layout},
		{"new", "--image", layout + ":tag"},
		{"insert", "--image", layout + ":tag", src, "/hello"},
	} {
		if out, err := exec.Command("umoci", args...).CombinedOutput(); err != nil {
			t.Fatalf("umoci %v: %v\n%s", args, err, out)
		}
	}
	// The config umoci made is the image ID berth must load.
	var idx struct {
		Manifests []struct{ Digest digest.Digest }
	}
	var m struct {
		Config struct{ Digest digest.Digest }
	}
	readJSON(t, filepath.Join(layout, "index.json"), &idx)
	if len(idx.Manifests) != 1 {
		t.Fatalf("umoci index: %+v", idx)
	}
	readJSON(t, filepath.Join(layout, "blobs/sha256", idx.Manifests[0].Digest.Encoded()), &m)
	file := filepath.Join(dir, "layout.tar")
	if out, err := exec.Command("tar", "-C", layout, "-cf", file, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	root := t.TempDir()
	out, errs, code := berth(t, root, "load", "-i", file)
	if code != 0 || out != "Loaded image ID: "+m.Config.Digest.String()+"\n" {
		t.Fatalf("load: exit %d: %q %s", code, out, errs)
	}
	if got := imageID(t, root, m.Config.Digest.String()); got != m.Config.Digest.String() {
		t.Errorf("loaded ID %s", got)
	}
}

func readJSON(t *testing.T, p string, v any) {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
}

type tarEnt struct {
	name, body string
	typ        byte
}

func mkTar(t *testing.T, ents ...tarEnt) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.body)), Typeflag: e.typ}
		if e.typ == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag == tar.TypeSymlink {
			h.Linkname, h.Size = e.body, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	p := filepath.Join(t.TempDir(), "hostile.tar")
	os.WriteFile(p, buf.Bytes(), 0o644)
	return p
}

func TestLoadHostile(t *testing.T) {
	root, name := pulled(t)
	good := filepath.Join(t.TempDir(), "good.tar")
	if _, errs, code := berth(t, root, "save", "-o", good, name); code != 0 {
		t.Fatalf("save: %s", errs)
	}
	data, _ := os.ReadFile(good)
	var ents []tarEnt
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		var b bytes.Buffer
		b.ReadFrom(tr)
		ents = append(ents, tarEnt{name: h.Name, body: b.String(), typ: h.Typeflag})
	}
	// edit returns the good archive with fn applied to its entries.
	edit := func(fn func([]tarEnt) []tarEnt) string {
		return mkTar(t, fn(append([]tarEnt(nil), ents...))...)
	}
	isLayer := func(e tarEnt) bool { return strings.HasPrefix(e.name, "blobs/") && len(e.body) > 2048 }
	cases := map[string]struct {
		file, want string
	}{
		"dotdot":   {edit(func(es []tarEnt) []tarEnt { return append(es, tarEnt{name: "../evil", body: "x"}) }), "leaves the archive"},
		"absolute": {edit(func(es []tarEnt) []tarEnt { return append(es, tarEnt{name: "/etc/evil", body: "x"}) }), "absolute path"},
		"symlink out": {edit(func(es []tarEnt) []tarEnt {
			return append(es, tarEnt{name: "blobs/link", body: "../../../etc/passwd", typ: tar.TypeSymlink})
		}), "leaves the archive"},
		"device": {mkTar(t, tarEnt{name: "dev", typ: tar.TypeChar}), "not allowed"},
		"missing layer": {edit(func(es []tarEnt) []tarEnt {
			var out []tarEnt
			for _, e := range es {
				if !isLayer(e) {
					out = append(out, e)
				}
			}
			return out
		}), "missing from the archive"},
		"digest mismatch": {edit(func(es []tarEnt) []tarEnt {
			for i, e := range es {
				if isLayer(e) {
					es[i].body = e.body[:len(e.body)-1] + "!"
				}
			}
			return es
		}), "hashing to"},
		"huge manifest.json": {mkTar(t, tarEnt{name: "manifest.json", body: "[" + strings.Repeat(" ", 5<<20) + "]"}), "more than"},
		"not an image":       {mkTar(t, tarEnt{name: "hello", body: "x"}), "unrecognized image format"},
		"empty":              {mkTar(t), "empty archive"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			fresh := t.TempDir()
			_, errs, code := berth(t, fresh, "load", "-i", c.file)
			if code != 1 || !strings.Contains(errs, c.want) {
				t.Errorf("exit %d, stderr %q, want %q", code, errs, c.want)
			}
			db, err := meta.Open(filepath.Join(fresh, "meta.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if imgs, _ := db.ListImages(t.Context()); len(imgs) != 0 {
				t.Errorf("hostile archive left images %v", imgs)
			}
		})
	}
	// The untouched archive loads: the cases fail for what they change.
	if _, errs, code := berth(t, t.TempDir(), "load", "-i", mkTar(t, ents...)); code != 0 {
		t.Errorf("rebuilt good archive: %s", errs)
	}
	// Without index.json it is a legacy docker-archive: manifest.json alone.
	legacy := edit(func(es []tarEnt) []tarEnt {
		var out []tarEnt
		for _, e := range es {
			if e.name != "index.json" && e.name != "oci-layout" {
				out = append(out, e)
			}
		}
		return out
	})
	fresh := t.TempDir()
	if out, errs, code := berth(t, fresh, "load", "-i", legacy); code != 0 || out != "Loaded image: "+name+"\n" {
		t.Fatalf("legacy load: exit %d: %q %s", code, out, errs)
	}
	if a, b := imageID(t, root, name), imageID(t, fresh, name); a != b {
		t.Errorf("legacy load: ID %s, saved %s", b, a)
	}
}
