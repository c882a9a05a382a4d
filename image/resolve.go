package image

import (
	"context"
	"fmt"

	"github.com/berth-dev/berth/content"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Image is an image resolved for one platform: the blobs that make it and
// the config that describes it.
type Image struct {
	Target     ocispec.Descriptor // what a name points at: an index or a manifest
	Manifest   ocispec.Descriptor // the manifest for the platform
	Config     ocispec.Descriptor
	ConfigFile ocispec.Image
	Layers     []ocispec.Descriptor // bottom first, as the manifest lists them
	ChainIDs   []digest.Digest      // the snapshot of each layer prefix
}

// ID is the image's ID as Docker shows it: the digest of its config.
func (img Image) ID() digest.Digest { return img.Config.Digest }

// maxIndexDepth bounds indexes of indexes, so a hostile registry cannot
// send berth round in circles.
const maxIndexDepth = 4

// Resolve reads target — an index or a manifest — from blobs and returns
// the image for platform, every JSON blob bounded, verified by the store
// and checked by ParseIndex, ParseManifest and ParseConfig.
func Resolve(ctx context.Context, blobs content.Provider, target ocispec.Descriptor, platform ocispec.Platform) (Image, error) {
	img := Image{Target: target}
	desc := target
	for depth := 0; ; depth++ {
		if depth == maxIndexDepth {
			return Image{}, invalidf("indexes nested deeper than %d", maxIndexDepth)
		}
		data, err := content.ReadBlob(ctx, blobs, desc, MaxManifestSize)
		if err != nil {
			return Image{}, fmt.Errorf("read manifest %s: %w", desc.Digest, err)
		}
		mt := desc.MediaType
		if mt == "" {
			if mt, err = MediaTypeOf(data); err != nil {
				return Image{}, err
			}
		}
		if IsIndex(mt) {
			idx, err := ParseIndex(data)
			if err != nil {
				return Image{}, err
			}
			if desc, err = Select(idx, platform); err != nil {
				return Image{}, err
			}
			continue
		}
		if !IsManifest(mt) {
			return Image{}, invalidf("%s has media type %q: not an image", desc.Digest, mt)
		}
		m, err := ParseManifest(data)
		if err != nil {
			return Image{}, err
		}
		img.Manifest, img.Config, img.Layers = desc, m.Config, m.Layers
		cfg, err := content.ReadBlob(ctx, blobs, m.Config, MaxConfigSize)
		if err != nil {
			return Image{}, fmt.Errorf("read image config %s: %w", m.Config.Digest, err)
		}
		if img.ConfigFile, err = ParseConfig(cfg); err != nil {
			return Image{}, err
		}
		if img.ChainIDs, err = CheckLayers(m, img.ConfigFile); err != nil {
			return Image{}, err
		}
		return img, nil
	}
}
