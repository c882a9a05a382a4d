package image

import (
	"encoding/json"
	"fmt"

	"github.com/berth-dev/berth/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Bounds on what berth reads for JSON blobs a registry or archive hands
// it: the distribution registry refuses manifests over 4 MiB.
const (
	MaxManifestSize = 4 << 20
	MaxConfigSize   = 8 << 20
)

func invalidf(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, errdefs.ErrInvalidArgument)...)
}

// checkDescriptor rejects a descriptor no blob could match.
func checkDescriptor(what string, d ocispec.Descriptor) error {
	if err := d.Digest.Validate(); err != nil {
		return invalidf("%s: digest %q: %v", what, d.Digest, err)
	}
	if d.Size < 0 {
		return invalidf("%s %s: negative size %d", what, d.Digest, d.Size)
	}
	return nil
}

// MediaTypeOf tells a manifest from an index when the bytes are all there
// is (an OCI layout or a registry that omits the header): by their own
// mediaType field, else by their shape.
func MediaTypeOf(data []byte) (string, error) {
	var probe struct {
		MediaType string            `json:"mediaType"`
		Manifests []json.RawMessage `json:"manifests"`
		Layers    []json.RawMessage `json:"layers"`
		Config    json.RawMessage   `json:"config"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return "", invalidf("parse manifest: %v", err)
	}
	switch {
	case probe.MediaType != "":
		return probe.MediaType, nil
	case probe.Manifests != nil && probe.Layers == nil:
		return ocispec.MediaTypeImageIndex, nil
	case probe.Config != nil:
		return ocispec.MediaTypeImageManifest, nil
	}
	return "", invalidf("neither a manifest nor an index")
}

// ParseManifest decodes and checks an image manifest (OCI or Docker
// schema 2): its config and every layer must be well-formed descriptors
// and every layer of a type berth can unpack.
func ParseManifest(data []byte) (ocispec.Manifest, error) {
	var m ocispec.Manifest
	if len(data) > MaxManifestSize {
		return m, invalidf("manifest of %d bytes exceeds %d", len(data), MaxManifestSize)
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, invalidf("parse manifest: %v", err)
	}
	if m.SchemaVersion != 2 {
		return m, invalidf("manifest schemaVersion %d: only 2 is supported", m.SchemaVersion)
	}
	if m.MediaType != "" && !IsManifest(m.MediaType) {
		return m, invalidf("manifest has media type %q", m.MediaType)
	}
	if err := checkDescriptor("config", m.Config); err != nil {
		return m, err
	}
	if !IsConfig(m.Config.MediaType) {
		return m, invalidf("config has media type %q: not an image", m.Config.MediaType)
	}
	for i, l := range m.Layers {
		if err := checkDescriptor(fmt.Sprintf("layer %d", i), l); err != nil {
			return m, err
		}
		if _, ok := LayerCompression(l.MediaType); !ok {
			return m, invalidf("layer %d (%s) has unsupported media type %q", i, l.Digest, l.MediaType)
		}
	}
	return m, nil
}

// ParseIndex decodes and checks an image index or Docker manifest list.
func ParseIndex(data []byte) (ocispec.Index, error) {
	var idx ocispec.Index
	if len(data) > MaxManifestSize {
		return idx, invalidf("index of %d bytes exceeds %d", len(data), MaxManifestSize)
	}
	if err := json.Unmarshal(data, &idx); err != nil {
		return idx, invalidf("parse index: %v", err)
	}
	if idx.SchemaVersion != 2 {
		return idx, invalidf("index schemaVersion %d: only 2 is supported", idx.SchemaVersion)
	}
	if idx.MediaType != "" && !IsIndex(idx.MediaType) {
		return idx, invalidf("index has media type %q", idx.MediaType)
	}
	for i, d := range idx.Manifests {
		if err := checkDescriptor(fmt.Sprintf("manifest %d", i), d); err != nil {
			return idx, err
		}
	}
	return idx, nil
}

// ParseConfig decodes and checks an image config.
func ParseConfig(data []byte) (ocispec.Image, error) {
	var c ocispec.Image
	if len(data) > MaxConfigSize {
		return c, invalidf("config of %d bytes exceeds %d", len(data), MaxConfigSize)
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return c, invalidf("parse image config: %v", err)
	}
	if c.RootFS.Type != "layers" {
		return c, invalidf("image config rootfs type %q, want \"layers\"", c.RootFS.Type)
	}
	for i, d := range c.RootFS.DiffIDs {
		if err := d.Validate(); err != nil {
			return c, invalidf("image config diff_id %d %q: %v", i, d, err)
		}
	}
	return c, nil
}

// CheckLayers verifies that a manifest and its config describe the same
// stack of layers, and returns the layers' chain IDs.
func CheckLayers(m ocispec.Manifest, c ocispec.Image) ([]digest.Digest, error) {
	if len(m.Layers) != len(c.RootFS.DiffIDs) {
		return nil, invalidf("manifest has %d layers but its config %d diff_ids", len(m.Layers), len(c.RootFS.DiffIDs))
	}
	return ChainIDs(c.RootFS.DiffIDs), nil
}
