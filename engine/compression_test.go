package engine_test

import (
	"context"
	"testing"

	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/internal/testenv"
)

// TestPullCompressions: gzip, zstd and uncompressed layers all pull and
// unpack to the same files.
func TestPullCompressions(t *testing.T) {
	ctx := context.Background()
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	for _, tc := range []struct {
		name string
		c    testenv.Compression
	}{{"gzip", testenv.Gzip}, {"zstd", testenv.Zstd}, {"uncompressed", testenv.Uncompressed}} {
		t.Run(tc.name, func(t *testing.T) {
			testenv.PushImage(t, reg, "multi-"+tc.name+":1", testenv.MultiLayerImage(t, testenv.WithLayerCompression(tc.c)))
			e, _ := newEngine(t, "overlay")
			res, err := e.Pull(ctx, reg.Host+"/multi-"+tc.name+":1", engine.PullOptions{})
			if err != nil {
				t.Fatalf("Pull: %v", err)
			}
			checkMultiLayer(t, e, res, "")
		})
	}
}
