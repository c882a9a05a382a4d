package engine_test

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/content"
	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/internal/testenv"
	"github.com/berth-dev/berth/meta"
	"github.com/berth-dev/berth/snapshot"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// putBlob stores data as a blob of root's content store.
func putBlob(t *testing.T, cs *content.Store, data string) digest.Digest {
	t.Helper()
	d := digest.FromString(data)
	if err := content.WriteBlob(context.Background(), cs, d.String(), strings.NewReader(data), ocispec.Descriptor{Digest: d, Size: int64(len(data))}); err != nil {
		t.Fatal(err)
	}
	return d
}

func has(cs *content.Store, d digest.Digest) bool {
	_, err := cs.Info(context.Background(), d)
	return err == nil
}

// checkStore verifies what a GC must leave: every blob matches its digest,
// no ingests, no unpack snapshots, and every image record resolves.
func checkStore(t *testing.T, e *engine.Engine, root string) {
	t.Helper()
	ctx := context.Background()
	cs, err := content.Open(filepath.Join(root, "content"))
	if err != nil {
		t.Fatal(err)
	}
	cs.Walk(ctx, func(i content.Info) error {
		rc, err := cs.Open(ctx, i.Digest)
		if err != nil {
			t.Errorf("blob %s: %v", i.Digest, err)
			return nil
		}
		defer rc.Close()
		v := i.Digest.Verifier()
		io.Copy(v, rc)
		if !v.Verified() {
			t.Errorf("blob %s does not match its digest", i.Digest)
		}
		return nil
	})
	if ing, err := cs.Ingests(ctx); err != nil || len(ing) != 0 {
		t.Errorf("ingests left: %v %v", ing, err)
	}
	checkNoExtract(t, root)
	imgs, err := e.ListImages(ctx)
	if err != nil {
		t.Fatalf("ListImages: %v", err)
	}
	db, err := meta.Open(filepath.Join(root, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := db.ListImages(ctx)
	db.Close()
	if err != nil || len(recs) != len(imgs) {
		t.Errorf("%d image records, %d resolve (%v)", len(recs), len(imgs), err)
	}
}

func TestGC(t *testing.T) {
	ctx := context.Background()
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	testenv.PushImage(t, reg, "multi:v1", testenv.MultiLayerImage(t))
	e, root := newEngine(t, "overlay")
	name := reg.Host + "/multi:v1"
	res, err := e.Pull(ctx, name, engine.PullOptions{})
	if err != nil {
		t.Fatalf("Pull: %v", err)
	}
	cs, _ := content.Open(filepath.Join(root, "content"))
	stray := putBlob(t, cs, "stray")
	expiredBlob := putBlob(t, cs, "leased by an expired lease")
	leasedBlob := putBlob(t, cs, "leased by a live lease")
	db, err := meta.Open(filepath.Join(root, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	db.PutLease(ctx, "expired", []digest.Digest{expiredBlob}, time.Now().Add(-time.Minute))
	db.PutLease(ctx, "live", []digest.Digest{leasedBlob}, time.Now().Add(time.Hour))
	db.Close()
	// An abandoned ingest, and one a writer holds.
	var held *content.Writer
	for _, ref := range []string{"abandoned", "held"} {
		d := digest.FromString(ref + " blob")
		w, err := cs.Writer(ctx, ref, ocispec.Descriptor{Digest: d, Size: 100})
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("part"))
		if ref == "held" {
			held = w
		} else {
			w.Close()
		}
	}
	// A young unpack snapshot (a pull's, in progress) on the image's base layer.
	sn, err := snapshot.NewOverlay(filepath.Join(root, "snapshots", "overlay"))
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	if _, err := sn.Prepare(ctx, "extract-young", ""); err != nil {
		t.Fatal(err)
	}

	rep, err := e.GC(ctx)
	if err != nil {
		t.Fatalf("GC: %v", err)
	}
	if has(cs, stray) || has(cs, expiredBlob) || !has(cs, leasedBlob) {
		t.Errorf("after GC: stray %v, expired lease's %v, live lease's %v; want only the last", has(cs, stray), has(cs, expiredBlob), has(cs, leasedBlob))
	}
	if rep.Ingests != 1 || len(rep.Leases) != 1 || len(rep.Blobs) != 2 || len(rep.Snapshots) != 0 {
		t.Errorf("GC report %+v", rep)
	}
	if ing, _ := cs.Ingests(ctx); len(ing) != 1 || ing[0].Ref != "held" {
		t.Errorf("ingests after GC: %+v", ing)
	}
	if _, err := sn.Stat(ctx, "extract-young"); err != nil {
		t.Errorf("GC took a young unpack snapshot: %v", err)
	}
	files, _ := testenv.MultiLayerWant()
	var paths []string
	for p := range files {
		paths = append(paths, p)
	}
	if got := viewFiles(t, e, res, paths); len(got) != len(files) {
		t.Errorf("after GC the image has %d of its %d files", len(got), len(files))
	}

	// The record gone, a lease on the target keeps the whole image.
	db, _ = meta.Open(filepath.Join(root, "meta.db"))
	db.DeleteImage(ctx, name)
	db.PutLease(ctx, "pull", []digest.Digest{res.Image.Target.Digest}, time.Now().Add(time.Hour))
	db.Close()
	if rep, err = e.GC(ctx); err != nil || len(rep.Blobs) != 0 || len(rep.Snapshots) != 0 {
		t.Errorf("GC with the image leased: %+v %v", rep, err)
	}
	for _, l := range res.Image.Layers {
		if !has(cs, l.Digest) {
			t.Errorf("leased image's layer %s collected", l.Digest)
		}
	}
	if got := viewFiles(t, e, res, paths); len(got) != len(files) {
		t.Errorf("leased image's snapshots collected")
	}

	held.Close()
	// Nothing references anything: all goes, old unpack snapshots too.
	defer engine.SetGCGrace(0)()
	db, _ = meta.Open(filepath.Join(root, "meta.db"))
	db.DeleteLease(ctx, "pull")
	db.DeleteLease(ctx, "live")
	db.Close()
	if rep, err = e.GC(ctx); err != nil || len(rep.Snapshots) != len(res.Image.ChainIDs)+1 || rep.Reclaimed == 0 {
		t.Errorf("GC of everything: %+v %v", rep, err)
	}
	var left []string
	cs.Walk(ctx, func(i content.Info) error { left = append(left, i.Digest.String()); return nil })
	sn.Walk(ctx, func(i snapshot.Info) error { left = append(left, i.Key); return nil })
	if len(left) != 0 {
		t.Errorf("left after GC of everything: %v", left)
	}
	checkStore(t, e, root)
}

// checkNoExtract fails t if root's overlay snapshotter holds an unpack
// ("extract-") snapshot: a pull, finished or failed, leaves none.
func checkNoExtract(t *testing.T, root string) {
	t.Helper()
	sn, err := snapshot.NewOverlay(filepath.Join(root, "snapshots", "overlay"))
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	sn.Walk(context.Background(), func(i snapshot.Info) error {
		if strings.HasPrefix(i.Key, "extract-") {
			t.Errorf("unpack snapshot %s left", i.Key)
		}
		return nil
	})
}
