package snapshot_test

import (
	"testing"

	"github.com/berth-dev/berth/snapshot"
	"github.com/berth-dev/berth/snapshot/snapshottest"
)

func TestOverlay(t *testing.T) {
	snapshottest.Suite(t, "overlay", func(t *testing.T, root string, opts ...snapshot.Option) snapshot.Snapshotter {
		s, err := snapshot.NewOverlay(root, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestNaive(t *testing.T) {
	snapshottest.Suite(t, "naive", func(t *testing.T, root string, opts ...snapshot.Option) snapshot.Snapshotter {
		s, err := snapshot.NewNaive(root, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
