package image

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/berth-dev/berth/content"
	"github.com/berth-dev/berth/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// put stores v (JSON, or bytes) in s and returns its descriptor.
func put(t *testing.T, s *content.Store, mt string, v any) ocispec.Descriptor {
	t.Helper()
	data, ok := v.([]byte)
	if !ok {
		var err error
		if data, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	d := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(data), Size: int64(len(data))}
	if err := content.WriteBlob(context.Background(), s, d.Digest.String(), strings.NewReader(string(data)), d); err != nil && !errdefs.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	return d
}

func storeImage(t *testing.T, s *content.Store, arch string, layers int) (ocispec.Descriptor, ocispec.Image) {
	t.Helper()
	cfg := ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: arch}, RootFS: ocispec.RootFS{Type: "layers"}}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest}
	m.SchemaVersion = 2
	for i := 0; i < layers; i++ {
		l := put(t, s, ocispec.MediaTypeImageLayer, []byte(arch+" layer "+string(rune('a'+i))))
		m.Layers = append(m.Layers, l)
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.Digest) // uncompressed: diff ID = digest
	}
	m.Config = put(t, s, ocispec.MediaTypeImageConfig, cfg)
	return put(t, s, ocispec.MediaTypeImageManifest, m), cfg
}

func TestResolve(t *testing.T) {
	ctx := context.Background()
	s, err := content.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	amd, amdCfg := storeImage(t, s, "amd64", 3)
	arm, _ := storeImage(t, s, "arm64", 1)
	amd.Platform = &ocispec.Platform{OS: "linux", Architecture: "amd64"}
	arm.Platform = &ocispec.Platform{OS: "linux", Architecture: "arm64"}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{arm, amd}}
	idx.SchemaVersion = 2
	idxDesc := put(t, s, ocispec.MediaTypeImageIndex, idx)

	img, err := Resolve(ctx, s, idxDesc, ocispec.Platform{OS: "linux", Architecture: "amd64"})
	if err != nil {
		t.Fatalf("Resolve(index, amd64): %v", err)
	}
	if img.Manifest.Digest != amd.Digest || len(img.Layers) != 3 || len(img.ChainIDs) != 3 || img.Target.Digest != idxDesc.Digest {
		t.Fatalf("Resolve(index, amd64) = %+v", img)
	}
	if want := ChainIDs(amdCfg.RootFS.DiffIDs); img.ChainIDs[2] != want[2] {
		t.Errorf("chain IDs %v, want %v", img.ChainIDs, want)
	}
	if img.ID() != img.Config.Digest {
		t.Errorf("ID %s is not the config digest %s", img.ID(), img.Config.Digest)
	}
	if img, err := Resolve(ctx, s, idxDesc, ocispec.Platform{OS: "linux", Architecture: "arm64"}); err != nil || img.Manifest.Digest != arm.Digest {
		t.Errorf("Resolve(index, arm64) = %v, %v", img.Manifest.Digest, err)
	}
	if _, err := Resolve(ctx, s, idxDesc, ocispec.Platform{OS: "linux", Architecture: "s390x"}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Resolve(index, s390x) = %v, want not found", err)
	}
	// A manifest directly; its media type unknown to the caller.
	bare := amd
	bare.MediaType, bare.Platform = "", nil
	if img, err := Resolve(ctx, s, bare, ocispec.Platform{OS: "linux", Architecture: "arm64"}); err != nil || img.Manifest.Digest != amd.Digest {
		t.Errorf("Resolve(manifest) = %v, %v", img.Manifest.Digest, err)
	}
	// A descriptor that lies about the size is caught by the store.
	lie := amd
	lie.Size--
	if _, err := Resolve(ctx, s, lie, ocispec.Platform{}); err == nil {
		t.Error("Resolve accepted a descriptor with the wrong size")
	}
	// An index that points at itself would loop: bounded.
	self := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex}
	self.SchemaVersion = 2
	inner := put(t, s, ocispec.MediaTypeImageIndex, self)
	inner.Platform = &ocispec.Platform{OS: "linux", Architecture: "amd64"}
	for i := 0; i < maxIndexDepth+1; i++ {
		wrap := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{inner}}
		wrap.SchemaVersion = 2
		inner = put(t, s, ocispec.MediaTypeImageIndex, wrap)
		inner.Platform = &ocispec.Platform{OS: "linux", Architecture: "amd64"}
	}
	if _, err := Resolve(ctx, s, inner, ocispec.Platform{OS: "linux", Architecture: "amd64"}); err == nil || !strings.Contains(err.Error(), "nested") {
		t.Errorf("Resolve of deeply nested indexes = %v", err)
	}
}
