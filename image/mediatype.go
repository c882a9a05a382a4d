package image

import ocispec "github.com/opencontainers/image-spec/specs-go/v1"

// Docker's media types, which registries and `docker save` still use.
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerLayerGzip    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	MediaTypeDockerLayerForeign = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
	MediaTypeDockerLayerZstd    = "application/vnd.docker.image.rootfs.diff.tar.zstd"
)

// Compression is how a layer blob is compressed.
type Compression int

// The compressions a layer may have.
const (
	Uncompressed Compression = iota
	Gzip
	Zstd
)

// IsIndex reports whether mt names a manifest list or image index.
func IsIndex(mt string) bool {
	return mt == ocispec.MediaTypeImageIndex || mt == MediaTypeDockerManifestList
}

// IsManifest reports whether mt names a single-platform image manifest.
func IsManifest(mt string) bool {
	return mt == ocispec.MediaTypeImageManifest || mt == MediaTypeDockerManifest
}

// IsConfig reports whether mt names an image config.
func IsConfig(mt string) bool {
	return mt == ocispec.MediaTypeImageConfig || mt == MediaTypeDockerConfig
}

// LayerCompression reports how a layer of media type mt is compressed, and
// whether mt is a layer type at all.
func LayerCompression(mt string) (Compression, bool) {
	switch mt {
	case ocispec.MediaTypeImageLayer, ocispec.MediaTypeImageLayerNonDistributable: //nolint:staticcheck // still seen in the wild
		return Uncompressed, true
	case ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageLayerNonDistributableGzip, //nolint:staticcheck
		MediaTypeDockerLayerGzip, MediaTypeDockerLayerForeign:
		return Gzip, true
	case ocispec.MediaTypeImageLayerZstd, ocispec.MediaTypeImageLayerNonDistributableZstd, //nolint:staticcheck
		MediaTypeDockerLayerZstd:
		return Zstd, true
	}
	return 0, false
}
