package cli

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/berth-dev/berth/snapshot"
)

// importDangling imports a one-file rootfs: a <none> image. It returns its ID.
func importDangling(t *testing.T, root string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "dangling", Mode: 0o644, Size: 3, Typeflag: tar.TypeReg})
	tw.Write([]byte("hi\n"))
	tw.Close()
	file := filepath.Join(t.TempDir(), "rootfs.tar")
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errs, code := berth(t, root, "import", file)
	if code != 0 {
		t.Fatalf("import: exit %d: %s", code, errs)
	}
	return strings.TrimSpace(out)
}

var reclaimed = regexp.MustCompile(`(?m)^Total reclaimed space: [0-9.]+[kMG]?B\n\z`)

func TestImagePruneCommand(t *testing.T) {
	f := newFixture(t)
	id := importDangling(t, f.root)

	// Dangling only: the imported image and its layer, nothing named.
	out, errs, code := berth(t, f.root, "image", "prune", "-f")
	if code != 0 {
		t.Fatalf("prune: exit %d: %s", code, errs)
	}
	ls := lines(out)
	if len(ls) != 5 || ls[0] != "Deleted Images:" || ls[1] != "deleted: "+id || !strings.HasPrefix(ls[2], "deleted: sha256:") ||
		ls[3] != "" || !reclaimed.MatchString(out) || strings.HasSuffix(out, " 0B\n") {
		t.Errorf("prune of a dangling image:\n%s", out)
	}
	if out, _, _ := berth(t, f.root, "images", "-q"); len(lines(out)) != 3 {
		t.Errorf("after prune, images -q:\n%s", out)
	}
	if out, _, code := berth(t, f.root, "image", "prune", "-f"); code != 0 || out != "Total reclaimed space: 0B\n" {
		t.Errorf("prune with nothing to do: exit %d %q", code, out)
	}

	// -a with filters: only the labelled image, whose layers busybox keeps.
	lab := f.facts(t, "labelled")
	out, errs, code = berth(t, f.root, "image", "prune", "-a", "-f", "--filter", "label=com.example.team=infra")
	want := "Deleted Images:\n" +
		"untagged: " + f.name("labelled") + ":latest\n" +
		"untagged: " + f.name("labelled") + "@" + lab.manifest.String() + "\n" +
		"deleted: " + lab.id.String() + "\n\n"
	if code != 0 || !strings.HasPrefix(out, want) || !reclaimed.MatchString(out) {
		t.Errorf("prune -a --filter label=: exit %d %s\n%s\nwant\n%s", code, errs, out, want)
	}
	for _, flt := range []string{"until=2020-01-01", "label=nosuch"} {
		if out, _, code := berth(t, f.root, "image", "prune", "-a", "-f", "--filter", flt); code != 0 || out != "Total reclaimed space: 0B\n" {
			t.Errorf("prune -a --filter %s removed something: %q", flt, out)
		}
	}
	if _, errs, code := berth(t, f.root, "image", "prune", "-f", "--filter", "nosuch=1"); code != 1 || !strings.Contains(errs, "invalid filter 'nosuch'") {
		t.Errorf("prune with a bad filter: exit %d %q", code, errs)
	}

	// -a: everything, and the store is empty afterwards.
	out, errs, code = berth(t, f.root, "image", "prune", "-a", "-f", "--filter", "until=1h")
	if code != 0 || strings.Count(out, "untagged: ") != 4 || !strings.Contains(out, "deleted: "+f.facts(t, "multi").id.String()) {
		t.Errorf("prune -a: exit %d %s\n%s", code, errs, out)
	}
	if out, _, _ := berth(t, f.root, "images", "-a", "-q"); out != "" {
		t.Errorf("after prune -a, images:\n%s", out)
	}
	blobs, _ := os.ReadDir(filepath.Join(f.root, "content", "blobs", "sha256"))
	ingests, _ := os.ReadDir(filepath.Join(f.root, "content", "ingest"))
	if len(blobs)+len(ingests) != 0 {
		t.Errorf("after prune -a: %d blobs, %d ingests left", len(blobs), len(ingests))
	}
	sn, err := snapshot.NewOverlay(filepath.Join(f.root, "snapshots", "overlay"))
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	sn.Walk(context.Background(), func(i snapshot.Info) error {
		t.Errorf("after prune -a, snapshot %s (%s) is left", i.Key, i.Kind)
		return nil
	})
}

func TestImagePrunePrompt(t *testing.T) {
	root := t.TempDir()
	id := importDangling(t, root)
	prune := func(answer string) (string, string, int) {
		var out, errb bytes.Buffer
		g := &globals{stdout: &out, stderr: &errb}
		cmd := newRoot(g)
		cmd.SetArgs([]string{"--root", root, "--runroot", t.TempDir(), "image", "prune"})
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
	const ask = "WARNING! This will remove all dangling images.\nAre you sure you want to continue? [y/N] "
	for _, answer := range []string{"", "n\n", "yes\n"} {
		out, errs, code := prune(answer)
		if code != 1 || !strings.HasPrefix(out, ask) || strings.Contains(out, "Deleted") || !strings.Contains(errs, "image prune has been cancelled") {
			t.Errorf("answer %q: exit %d %q %q", answer, code, out, errs)
		}
	}
	out, errs, code := prune("Y\n")
	if code != 0 || !strings.HasPrefix(out, ask+"Deleted Images:\ndeleted: "+id+"\n") {
		t.Errorf("answer y: exit %d %q %q", code, out, errs)
	}
}
