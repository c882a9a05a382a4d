package engine_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/content"
	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/internal/testenv"
	"github.com/berth-dev/berth/meta"
	"github.com/berth-dev/berth/snapshot"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// berthBin is the berth binary under test: $BERTH_BIN, else a fresh build
// (as root only: the tests that run it need root).
var berthBin string

func TestMain(m *testing.M) {
	berthBin = os.Getenv("BERTH_BIN")
	tmp, err := os.MkdirTemp("", "berth-engine-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if berthBin == "" && os.Geteuid() == 0 {
		build := exec.Command("make", "-s", "-C", "..", "berth", "BIN="+tmp)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build berth:", err)
			os.Exit(1)
		}
		berthBin = filepath.Join(tmp, "berth")
	}
	code := m.Run()
	os.RemoveAll(tmp)
	os.Exit(code)
}

// berthCmd is the berth binary on root.
func berthCmd(t *testing.T, root string, args ...string) *exec.Cmd {
	t.Helper()
	if berthBin == "" {
		t.Skip("no berth binary (needs root or $BERTH_BIN)")
	}
	return exec.Command(berthBin, append([]string{"--root", root, "--runroot", t.TempDir()}, args...)...)
}

// checkPulled checks that root holds name as MultiLayerImage, through a
// view mount of its layers, and that GC leaves the store consistent and
// the image whole, holding nothing but the image: what killed pulls
// left, their leases included, is gone.
func checkPulled(t *testing.T, root, name string) {
	t.Helper()
	ctx := context.Background()
	out, err := berthCmd(t, root, "images").CombinedOutput()
	if err != nil || !strings.Contains(string(out), strings.Split(name, ":v1")[0]) {
		t.Fatalf("berth images: %v\n%s", err, out)
	}
	e, err := engine.New(engine.Config{Root: root, RunRoot: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	check := func(when string) {
		rec, err := e.FindImage(ctx, name)
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		img, err := e.ResolveImage(ctx, rec)
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		checkMultiLayer(t, e, engine.PullResult{Image: img}, when+": ")
	}
	check("after pull")
	defer engine.SetGCGrace(0)() // no pull runs now
	if _, err := e.GC(ctx); err != nil {
		t.Fatalf("GC: %v", err)
	}
	checkStore(t, e, root)
	check("after GC")
	rec, err := e.FindImage(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	img, err := e.ResolveImage(ctx, rec)
	if err != nil {
		t.Fatal(err)
	}
	checkOnly(t, root, img)
}

// TestPullKilled kills `berth pull` with SIGKILL at random moments, on a
// fresh root and on one shared by every round, and checks that the next
// pull completes, images works, and GC leaves a consistent store.
func TestPullKilled(t *testing.T) {
	testenv.RequiresRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	testenv.PushImage(t, reg, "multi:v1", testenv.MultiLayerImage(t))
	name := reg.Host + "/multi:v1"
	// How long a whole pull takes (the fastest of three), for the range
	// of kill times.
	full := time.Hour
	for range 3 {
		began := time.Now()
		if out, err := berthCmd(t, t.TempDir(), "pull", "-q", name).CombinedOutput(); err != nil {
			t.Fatalf("pull: %v\n%s", err, out)
		}
		full = min(full, time.Since(began))
	}
	killed := 0
	shared := t.TempDir()
	for i := range 15 {
		root := shared
		if i%2 == 1 {
			root = t.TempDir()
		}
		if i%2 == 0 && i > 0 {
			// Empty the shared root again, so that the kill finds work to
			// cut. The killed pulls' leases die with them: prune's GC must
			// take every blob, with no help from the test.
			if out, err := berthCmd(t, root, "image", "prune", "-a", "-f").CombinedOutput(); err != nil {
				t.Fatalf("prune: %v\n%s", err, out)
			}
			if blobs, _, leases := storeContents(t, root); len(blobs) != 0 || len(leases) != 0 {
				t.Fatalf("round %d: after prune -a: blobs %v, leases %v", i, blobs, leases)
			}
		}
		if i%2 == 1 || i == 0 {
			t.Cleanup(func() { unmountLeaks(t, root) })
		}
		pull := berthCmd(t, root, "pull", name)
		if err := pull.Start(); err != nil {
			t.Fatal(err)
		}
		delay := time.Duration(rand.Int64N(int64(full) + 1))
		time.Sleep(delay)
		pull.Process.Kill()
		err := pull.Wait()
		if pull.ProcessState.Exited() {
			t.Logf("round %d: the pull had finished after %v", i, delay)
		} else {
			killed++
		}
		t.Logf("round %d: killed after %v (of ~%v): %v", i, delay, full, err)
		if out, err := berthCmd(t, root, "pull", name).CombinedOutput(); err != nil {
			t.Fatalf("round %d: pull after a kill at %v: %v\n%s", i, delay, err, out)
		}
		checkPulled(t, root, name)
	}
	if killed < 5 {
		t.Errorf("only %d of 15 pulls were killed before they finished", killed)
	}
}

// TestPullConcurrent runs three `berth pull`s of one image into one root
// at once: all succeed, and the store holds the image once.
func TestPullConcurrent(t *testing.T) {
	testenv.RequiresRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	testenv.PushImage(t, reg, "multi:v1", testenv.MultiLayerImage(t))
	name := reg.Host + "/multi:v1"
	root := t.TempDir()
	var wg sync.WaitGroup
	errs := make([]error, 3)
	outs := make([][]byte, 3)
	for i := range 3 {
		cmd := berthCmd(t, root, "pull", name)
		wg.Go(func() { outs[i], errs[i] = cmd.CombinedOutput() })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("pull %d: %v\n%s", i, err, outs[i])
		}
	}
	checkPulled(t, root, name)
}

// storeContents lists what root holds: blobs, snapshots (by key) and
// leases (by id).
func storeContents(t *testing.T, root string) (blobs []digest.Digest, snaps, leases []string) {
	t.Helper()
	ctx := context.Background()
	cs, err := content.Open(filepath.Join(root, "content"))
	if err != nil {
		t.Fatal(err)
	}
	cs.Walk(ctx, func(i content.Info) error {
		blobs = append(blobs, i.Digest)
		return nil
	})
	sn, err := snapshot.NewOverlay(filepath.Join(root, "snapshots", "overlay"))
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	sn.Walk(ctx, func(i snapshot.Info) error {
		snaps = append(snaps, i.Key)
		return nil
	})
	db, err := meta.Open(filepath.Join(root, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ls, err := db.Leases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		leases = append(leases, l.ID)
	}
	return blobs, snaps, leases
}

// checkOnly checks that root holds img's blobs and layer snapshots and
// nothing else: no lease, no blob or snapshot of a killed pull.
func checkOnly(t *testing.T, root string, img image.Image) {
	t.Helper()
	want := map[string]bool{img.Target.Digest.String(): true, img.Manifest.Digest.String(): true, img.Config.Digest.String(): true}
	for _, l := range img.Layers {
		want[l.Digest.String()] = true
	}
	for _, c := range img.ChainIDs {
		want[c.String()] = true
	}
	blobs, snaps, leases := storeContents(t, root)
	for _, b := range blobs {
		if !want[b.String()] {
			t.Errorf("blob %s left, not the image's", b)
		}
	}
	for _, s := range snaps {
		if !want[s] {
			t.Errorf("snapshot %s left, not the image's", s)
		}
	}
	if len(snaps) != len(img.ChainIDs) {
		t.Errorf("%d snapshots, want the image's %d: %v", len(snaps), len(img.ChainIDs), snaps)
	}
	if len(leases) != 0 {
		t.Errorf("leases left: %v", leases)
	}
}

// unmountLeaks fails t for any mount a berth left under root: a probe
// mount of a killed berth is cleaned by the next open (package snapshot),
// so by now there must be none.
func unmountLeaks(t *testing.T, root string) {
	data, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && strings.HasPrefix(f[1], root+"/") {
			t.Errorf("a berth left mount %s", f[1])
			unix.Unmount(f[1], unix.MNT_DETACH)
		}
	}
}
