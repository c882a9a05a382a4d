package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testenv"
)

// TestPullStagesLayersInParallel proves that with overlay a layer unpacks
// while the layer beneath it is still unpacking: the registry holds back
// the second half of the first layer until files of the second layer are
// in its staging directory. A pull that unpacked the layers one after the
// other would never get there, and the test fails at its timeout.
func TestPullStagesLayersInParallel(t *testing.T) {
	ctx := context.Background()
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	img, blob := bigLayerImage(t)
	testenv.PushImage(t, reg, "stage:v1", img)
	e := newTestEngine(t)
	if e.driver != "overlay" {
		t.Skipf("driver %s: layers unpack one after the other", e.driver)
	}

	pattern := filepath.Join(e.stagingRoot(), "pull-*", "layer-1", "*")
	// Both at once: files of layer 2 staged, and files of layer 1 (whose
	// second half is held back) in its snapshot.
	var staged []string
	streamed := 0
	pullWhileStalled(t, e, reg, blob, "stage:v1", func() bool {
		staged, _ = filepath.Glob(pattern)
		streamed, _ = extracting(ctx, t, e.snapshots)
		return len(staged) > 0 && streamed > 0
	}, func() string {
		return fmt.Sprintf("while layer 1 was half sent: %d files of layer 2 staged, %d of layer 1 in its snapshot: layers do not unpack in parallel", len(staged), streamed)
	})
	t.Logf("staged %v while layer 1 was half sent (%d files of it in its snapshot)", staged, streamed)
	if ents, _ := os.ReadDir(e.stagingRoot()); len(ents) != 0 {
		t.Errorf("staging directories left after the pull: %v", ents)
	}
	// The second layer came through its staging directory intact: it is
	// the top lower dir of a view of the image.
	res, err := e.Pull(ctx, reg.Host+"/stage:v1", PullOptions{}) // every layer is in: nothing is fetched
	if err != nil {
		t.Fatal(err)
	}
	ms, err := e.ViewImage(ctx, "check", res.Image)
	if err != nil {
		t.Fatal(err)
	}
	defer e.RemoveView(ctx, "check")
	var lower string
	for _, o := range ms[0].Options {
		if v, ok := strings.CutPrefix(o, "lowerdir="); ok {
			lower, _, _ = strings.Cut(v, ":")
		}
	}
	if b, err := os.ReadFile(filepath.Join(lower, "top")); err != nil || string(b) != "top\n" {
		t.Errorf("layer 2's snapshot (%s): top = %q, %v", lower, b, err)
	}
}
