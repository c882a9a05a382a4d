package registry

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// MaxManifestSize caps what FetchManifest and Resolve read: 4 MiB, as
// containerd and the distribution registry do.
const MaxManifestSize = 4 << 20

// Manifest media types the client asks for, most wanted first.
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
)

var manifestTypes = []string{
	ocispec.MediaTypeImageIndex,
	MediaTypeDockerManifestList,
	ocispec.MediaTypeImageManifest,
	MediaTypeDockerManifest,
}

// IsManifest reports whether mediaType names a manifest or an index,
// which the registry serves under /manifests/ rather than /blobs/.
func IsManifest(mediaType string) bool {
	for _, m := range manifestTypes {
		if m == mediaType {
			return true
		}
	}
	return false
}

// Resolve returns the descriptor of the manifest ref names, by tag or by
// digest: its media type, digest and size. It asks with HEAD and falls
// back to GET (reading and hashing the manifest) when the registry's
// answer lacks a digest.
func (c *Client) Resolve(ctx context.Context, ref string) (ocispec.Descriptor, error) {
	t, err := c.parse(ref)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	rt, err := c.transport(ctx, t, []string{t.repo.Scope(transport.PullScope)})
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	want := ""
	if d, ok := t.ref.(name.Digest); ok {
		want = d.DigestStr()
	}
	for _, method := range []string{http.MethodHead, http.MethodGet} {
		desc, ok, err := c.resolve(ctx, rt, t, method, want)
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("resolving %s: %w", ref, err)
		}
		if ok {
			return desc, nil
		}
	}
	return ocispec.Descriptor{}, fmt.Errorf("resolving %s: registry gave no digest: %w", ref, errdefs.ErrFailedPrecondition)
}

// resolve makes one manifest request; ok is false if a HEAD answer was
// not enough to describe the manifest.
func (c *Client) resolve(ctx context.Context, rt http.RoundTripper, t target, method, want string) (ocispec.Descriptor, bool, error) {
	req, err := http.NewRequestWithContext(ctx, method, t.url("manifests", t.ref.Identifier()), nil)
	if err != nil {
		return ocispec.Descriptor{}, false, err
	}
	req.Header.Set("Accept", strings.Join(manifestTypes, ", "))
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return ocispec.Descriptor{}, false, classify(err, t, opPull)
	}
	defer resp.Body.Close()
	if err := checkResponse(resp, t, opPull, http.StatusOK); err != nil {
		if method == http.MethodHead {
			// HEAD answers have no error body; GET tells which error.
			return ocispec.Descriptor{}, false, nil
		}
		return ocispec.Descriptor{}, false, err
	}
	desc := ocispec.Descriptor{
		MediaType: mediaType(resp.Header.Get("Content-Type")),
		Digest:    digest.Digest(resp.Header.Get("Docker-Content-Digest")),
		Size:      resp.ContentLength,
	}
	if method == http.MethodHead {
		if desc.MediaType == "" || desc.Size < 0 || desc.Digest == "" && want == "" {
			return ocispec.Descriptor{}, false, nil
		}
	} else {
		data, err := io.ReadAll(io.LimitReader(resp.Body, MaxManifestSize+1))
		if err != nil {
			return ocispec.Descriptor{}, false, classify(err, t, opPull)
		}
		if len(data) > MaxManifestSize {
			return ocispec.Descriptor{}, false, fmt.Errorf("manifest larger than %d bytes: %w", MaxManifestSize, ErrVerify)
		}
		desc.Size = int64(len(data))
		alg := digest.Canonical
		if want != "" {
			alg = digest.Digest(want).Algorithm()
		}
		computed := alg.FromBytes(data)
		// A registry's header is only a claim: by digest, the bytes must
		// match what was asked for; by tag, the bytes are the truth.
		if desc.Digest != "" && desc.Digest != computed && desc.Digest.Algorithm() == alg {
			return ocispec.Descriptor{}, false, fmt.Errorf("registry says %s, manifest hashes to %s: %w", desc.Digest, computed, ErrVerify)
		}
		desc.Digest = computed
	}
	if want != "" {
		if desc.Digest != "" && desc.Digest.String() != want {
			return ocispec.Descriptor{}, false, fmt.Errorf("asked for %s, registry answered %s: %w", want, desc.Digest, ErrVerify)
		}
		desc.Digest = digest.Digest(want)
	}
	if err := desc.Digest.Validate(); err != nil {
		return ocispec.Descriptor{}, false, fmt.Errorf("registry digest %q: %w: %w", desc.Digest, err, ErrVerify)
	}
	return desc, true, nil
}

func mediaType(contentType string) string {
	mt, _, _ := strings.Cut(contentType, ";")
	return strings.TrimSpace(mt)
}

// Fetch returns a reader of the manifest or blob desc describes, from the
// repository of ref (its tag or digest is ignored). The reader verifies as
// it goes: it fails as soon as more than desc.Size bytes arrive, and at
// EOF if fewer did or the digest does not match; such errors wrap
// ErrVerify. The caller closes it.
func (c *Client) Fetch(ctx context.Context, ref string, desc ocispec.Descriptor) (io.ReadCloser, error) {
	t, err := c.parse(ref)
	if err != nil {
		return nil, err
	}
	if err := desc.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("fetching %s: digest %q: %w: %w", ref, desc.Digest, err, errdefs.ErrInvalidArgument)
	}
	rt, err := c.transport(ctx, t, []string{t.repo.Scope(transport.PullScope)})
	if err != nil {
		return nil, err
	}
	kind := "blobs"
	if IsManifest(desc.MediaType) {
		kind = "manifests"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url(kind, desc.Digest.String()), nil)
	if err != nil {
		return nil, err
	}
	if kind == "manifests" {
		req.Header.Set("Accept", strings.Join(manifestTypes, ", "))
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", desc.Digest, classify(err, t, opPull))
	}
	if err := checkResponse(resp, t, opPull, http.StatusOK); err != nil {
		resp.Body.Close()
		return nil, fmt.Errorf("fetching %s: %w", desc.Digest, err)
	}
	if resp.ContentLength >= 0 && resp.ContentLength != desc.Size {
		resp.Body.Close()
		return nil, fmt.Errorf("fetching %s: registry sends %d bytes, descriptor says %d: %w",
			desc.Digest, resp.ContentLength, desc.Size, ErrVerify)
	}
	return newVerifier(resp.Body, desc), nil
}

// FetchManifest returns the manifest or index desc describes, read whole
// and verified; it refuses descriptors larger than MaxManifestSize.
func (c *Client) FetchManifest(ctx context.Context, ref string, desc ocispec.Descriptor) ([]byte, error) {
	if desc.Size > MaxManifestSize || desc.Size < 0 {
		return nil, fmt.Errorf("fetching manifest %s: size %d out of range (max %d): %w",
			desc.Digest, desc.Size, MaxManifestSize, errdefs.ErrInvalidArgument)
	}
	if !IsManifest(desc.MediaType) {
		// Fetch would look under /blobs/; manifests live under /manifests/.
		desc.MediaType = ocispec.MediaTypeImageManifest
	}
	rc, err := c.Fetch(ctx, ref, desc)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("reading manifest %s: %w", desc.Digest, err)
	}
	return data, nil
}

// Exists reports whether the repository of ref holds the blob (or
// manifest) desc describes.
func (c *Client) Exists(ctx context.Context, ref string, desc ocispec.Descriptor) (bool, error) {
	t, err := c.parse(ref)
	if err != nil {
		return false, err
	}
	rt, err := c.transport(ctx, t, []string{t.repo.Scope(transport.PullScope)})
	if err != nil {
		return false, err
	}
	return c.exists(ctx, rt, t, desc)
}

func (c *Client) exists(ctx context.Context, rt http.RoundTripper, t target, desc ocispec.Descriptor) (bool, error) {
	kind := "blobs"
	if IsManifest(desc.MediaType) {
		kind = "manifests"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, t.url(kind, desc.Digest.String()), nil)
	if err != nil {
		return false, err
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return false, fmt.Errorf("checking %s: %w", desc.Digest, classify(err, t, opPull))
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return false, nil
	}
	if err := checkResponse(resp, t, opPull, http.StatusOK); err != nil {
		return false, fmt.Errorf("checking %s: %w", desc.Digest, err)
	}
	return true, nil
}

// verifier reads at most size bytes and checks size and digest at EOF.
type verifier struct {
	body io.ReadCloser
	desc ocispec.Descriptor
	v    digest.Verifier
	n    int64
	err  error
}

func newVerifier(body io.ReadCloser, desc ocispec.Descriptor) *verifier {
	return &verifier{body: body, desc: desc, v: desc.Digest.Verifier()}
}

func (r *verifier) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	// Read one byte past the end so that an overrun shows.
	if rest := r.desc.Size - r.n + 1; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := r.body.Read(p)
	r.n += int64(n)
	if r.n > r.desc.Size {
		r.err = fmt.Errorf("blob %s: more than the %d bytes the descriptor says: %w", r.desc.Digest, r.desc.Size, ErrVerify)
		return 0, r.err
	}
	r.v.Write(p[:n])
	switch {
	case err == io.EOF:
		if r.n != r.desc.Size {
			r.err = fmt.Errorf("blob %s: got %d bytes, want %d: %w", r.desc.Digest, r.n, r.desc.Size, ErrVerify)
		} else if !r.v.Verified() {
			r.err = fmt.Errorf("blob %s: content does not match its digest: %w", r.desc.Digest, ErrVerify)
		} else {
			r.err = io.EOF
		}
		return n, r.err
	case err == io.ErrUnexpectedEOF:
		r.err = fmt.Errorf("blob %s: stream ended after %d of %d bytes: %w", r.desc.Digest, r.n, r.desc.Size, ErrVerify)
		return n, r.err
	case err != nil:
		r.err = fmt.Errorf("reading blob %s: %w: %w", r.desc.Digest, err, errdefs.ErrUnavailable)
		return n, r.err
	}
	return n, nil
}

func (r *verifier) Close() error { return r.body.Close() }
