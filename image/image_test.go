package image

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/berth-dev/berth/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestChainIDs(t *testing.T) {
	a, b, c := digest.FromString("a"), digest.FromString("b"), digest.FromString("c")
	got := ChainIDs([]digest.Digest{a, b, c})
	ab := digest.FromString(a.String() + " " + b.String())
	abc := digest.FromString(ab.String() + " " + c.String())
	want := []digest.Digest{a, ab, abc}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("ChainIDs[%d] = %s, want %s", i, got[i], want[i])
		}
	}
	if n := len(ChainIDs(nil)); n != 0 {
		t.Errorf("ChainIDs(nil) has %d entries", n)
	}
	// The well-known value for a single layer is the layer's diff ID.
	if got := ChainIDs([]digest.Digest{c}); got[0] != c {
		t.Errorf("ChainIDs([c]) = %v", got)
	}
}

func TestParsePlatform(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		bad      bool
	}{
		{"linux/amd64", "linux/amd64", false},
		{"linux/x86_64", "linux/amd64", false},
		{"linux/arm64", "linux/arm64/v8", false},
		{"linux/aarch64", "linux/arm64/v8", false},
		{"linux/arm/v6", "linux/arm/v6", false},
		{"linux/arm", "linux/arm/v7", false},
		{"arm64", "linux/arm64/v8", false},
		{"Linux/AMD64", "linux/amd64", false},
		{"linux//amd64", "", true},
		{"a/b/c/d", "", true},
		{"", "", true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			p, err := ParsePlatform(tc.in)
			if (err != nil) != tc.bad {
				t.Fatalf("ParsePlatform(%q) err = %v, want error %v", tc.in, err, tc.bad)
			}
			if err == nil && FormatPlatform(p) != tc.want {
				t.Errorf("ParsePlatform(%q) = %s, want %s", tc.in, FormatPlatform(p), tc.want)
			}
			if err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("ParsePlatform(%q) error %v is not ErrInvalidArgument", tc.in, err)
			}
		})
	}
}

func desc(s string, p *ocispec.Platform) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString(s), Size: 1, Platform: p}
}

func TestSelect(t *testing.T) {
	amd := &ocispec.Platform{OS: "linux", Architecture: "amd64"}
	arm64 := &ocispec.Platform{OS: "linux", Architecture: "arm64"}
	armv6 := &ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v6"}
	armv7 := &ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}
	att := desc("att", &ocispec.Platform{OS: "unknown", Architecture: "unknown"})
	att.Annotations = map[string]string{"vnd.docker.reference.type": "attestation-manifest"}
	idx := ocispec.Index{Manifests: []ocispec.Descriptor{att, desc("noplat", nil), desc("amd", amd), desc("arm64", arm64), desc("armv6", armv6)}}
	for _, tc := range []struct {
		want string
		pick string // "" = no match
	}{
		{"linux/amd64", "amd"},
		{"linux/arm64/v8", "arm64"}, // an index entry without variant serves v8
		{"linux/arm/v7", "armv6"},   // v7 runs v6 code
		{"linux/arm/v5", ""},
		{"linux/s390x", ""},
		{"windows/amd64", ""},
	} {
		t.Run(tc.want, func(t *testing.T) {
			p, _ := ParsePlatform(tc.want)
			d, err := Select(idx, p)
			if tc.pick == "" {
				if !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "no matching manifest for") {
					t.Fatalf("Select(%s) = %v, %v; want no matching manifest", tc.want, d.Digest, err)
				}
				return
			}
			if err != nil || d.Digest != digest.FromString(tc.pick) {
				t.Fatalf("Select(%s) = %v, %v; want %s", tc.want, d.Digest, err, tc.pick)
			}
		})
	}
	// An exact variant beats a nearer-older one.
	idx.Manifests = append(idx.Manifests, desc("armv7", armv7))
	if d, _ := Select(idx, *armv7); d.Digest != digest.FromString("armv7") {
		t.Errorf("Select(arm/v7) with a v7 entry picked %s", d.Digest)
	}
}

func manifestJSON(t *testing.T, edit func(*ocispec.Manifest)) []byte {
	t.Helper()
	m := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromString("config"), Size: 6},
		Layers: []ocispec.Descriptor{
			{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromString("l0"), Size: 2},
			{MediaType: MediaTypeDockerLayerGzip, Digest: digest.FromString("l1"), Size: 2},
			{MediaType: ocispec.MediaTypeImageLayerZstd, Digest: digest.FromString("l2"), Size: 2},
			{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromString("l3"), Size: 2},
		},
	}
	m.SchemaVersion = 2
	if edit != nil {
		edit(&m)
	}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseManifest(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*ocispec.Manifest)
		err  string
	}{
		{"ok", nil, ""},
		{"docker schema 2", func(m *ocispec.Manifest) {
			m.MediaType = MediaTypeDockerManifest
			m.Config.MediaType = MediaTypeDockerConfig
		}, ""},
		{"schema 1", func(m *ocispec.Manifest) { m.SchemaVersion = 1 }, "schemaVersion 1"},
		{"index media type", func(m *ocispec.Manifest) { m.MediaType = ocispec.MediaTypeImageIndex }, "media type"},
		{"bad config digest", func(m *ocispec.Manifest) { m.Config.Digest = "sha256:nothex" }, "config: digest"},
		{"negative size", func(m *ocispec.Manifest) { m.Layers[1].Size = -1 }, "negative size"},
		{"artifact config", func(m *ocispec.Manifest) { m.Config.MediaType = "application/vnd.cncf.helm.config.v1+json" }, "not an image"},
		{"unknown layer", func(m *ocispec.Manifest) { m.Layers[0].MediaType = "application/x-rar" }, "unsupported media type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseManifest(manifestJSON(t, tc.edit))
			if tc.err == "" {
				if err != nil {
					t.Fatalf("ParseManifest: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("ParseManifest = %v, want an invalid-argument error mentioning %q", err, tc.err)
			}
		})
	}
	if _, err := ParseManifest([]byte(`{"schemaVersion":2,`)); err == nil {
		t.Error("truncated manifest parsed")
	}
	if _, err := ParseManifest(make([]byte, MaxManifestSize+1)); err == nil {
		t.Error("oversized manifest parsed")
	}
}

func TestMediaTypeOf(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{`{"schemaVersion":2,"manifests":[]}`, ocispec.MediaTypeImageIndex},
		{`{"schemaVersion":2,"config":{},"layers":[]}`, ocispec.MediaTypeImageManifest},
		{`{"mediaType":"` + MediaTypeDockerManifestList + `","manifests":[]}`, MediaTypeDockerManifestList},
	} {
		if got, err := MediaTypeOf([]byte(tc.in)); err != nil || got != tc.want {
			t.Errorf("MediaTypeOf(%s) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := MediaTypeOf([]byte(`{"schemaVersion":2}`)); err == nil {
		t.Error("MediaTypeOf of an empty object succeeded")
	}
}

func TestCheckLayers(t *testing.T) {
	m, err := ParseManifest(manifestJSON(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	diff := []digest.Digest{digest.FromString("d0"), digest.FromString("d1"), digest.FromString("d2"), digest.FromString("d3")}
	cfg, err := json.Marshal(ocispec.Image{RootFS: ocispec.RootFS{Type: "layers", DiffIDs: diff}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := CheckLayers(m, c)
	if err != nil || len(chain) != 4 || chain[0] != diff[0] {
		t.Fatalf("CheckLayers = %v, %v", chain, err)
	}
	c.RootFS.DiffIDs = diff[:3]
	if _, err := CheckLayers(m, c); err == nil {
		t.Error("CheckLayers accepted 4 layers against 3 diff_ids")
	}
	if _, err := ParseConfig([]byte(`{"rootfs":{"type":"layers","diff_ids":["sha256:zz"]}}`)); err == nil {
		t.Error("ParseConfig accepted a bad diff_id")
	}
}

// FuzzParse: whatever bytes a registry sends, parsing never panics, and
// what is accepted is well-formed.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:` + strings.Repeat("a", 64) + `","size":2},"layers":[]}`))
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"digest":"sha256:` + strings.Repeat("b", 64) + `","size":1,"platform":{"os":"linux","architecture":"arm64"}}]}`))
	f.Add([]byte(`{"rootfs":{"type":"layers","diff_ids":[]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if m, err := ParseManifest(data); err == nil {
			if m.SchemaVersion != 2 || m.Config.Digest.Validate() != nil {
				t.Fatalf("accepted a bad manifest: %+v", m)
			}
			for _, l := range m.Layers {
				if _, ok := LayerCompression(l.MediaType); !ok || l.Size < 0 {
					t.Fatalf("accepted a bad layer: %+v", l)
				}
			}
		}
		if idx, err := ParseIndex(data); err == nil {
			for _, d := range idx.Manifests {
				if d.Digest.Validate() != nil {
					t.Fatalf("accepted a bad index entry: %+v", d)
				}
			}
			Select(idx, DefaultPlatform())
		}
		if c, err := ParseConfig(data); err == nil {
			ChainIDs(c.RootFS.DiffIDs)
		}
		MediaTypeOf(data)
	})
}
