package registry

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/berth-dev/berth/errdefs"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// PushBlob uploads the blob desc describes, read from r, to the repository
// of ref. It reads nothing if the repository already has the blob, and
// first asks the registry to mount it from each of mountFrom (repository
// names on the same registry, e.g. "library/busybox"), which costs no
// upload when the registry has it there. The upload sends exactly
// desc.Size bytes under desc.Digest; the registry checks the digest.
func (c *Client) PushBlob(ctx context.Context, ref string, desc ocispec.Descriptor, r io.Reader, mountFrom ...string) error {
	t, err := c.parse(ref)
	if err != nil {
		return err
	}
	if err := desc.Digest.Validate(); err != nil {
		return fmt.Errorf("pushing blob: digest %q: %w: %w", desc.Digest, err, errdefs.ErrInvalidArgument)
	}
	scopes := []string{t.repo.Scope(transport.PushScope)}
	var froms []name.Repository
	for _, f := range mountFrom {
		repo, err := name.NewRepository(t.host+"/"+f, name.Insecure)
		if err != nil || repo.String() == t.repo.String() {
			continue
		}
		froms = append(froms, repo)
		scopes = append(scopes, repo.Scope(transport.PullScope))
	}
	rt, err := c.transport(ctx, t, scopes)
	if err != nil {
		return err
	}
	if ok, err := c.exists(ctx, rt, t, desc); err != nil {
		return fmt.Errorf("pushing blob: %w", err)
	} else if ok {
		return nil
	}

	var location string
	for i, from := range froms {
		q := url.Values{"mount": {desc.Digest.String()}, "from": {from.RepositoryStr()}}
		loc, mounted, err := c.startUpload(ctx, rt, t, q)
		if err != nil {
			return fmt.Errorf("mounting %s from %s: %w", desc.Digest, from, err)
		}
		if mounted {
			return nil
		}
		if i < len(froms)-1 {
			c.cancelUpload(ctx, rt, loc)
			continue
		}
		// The registry opened an upload instead: use it.
		location = loc
	}
	if location == "" {
		if location, _, err = c.startUpload(ctx, rt, t, nil); err != nil {
			return fmt.Errorf("pushing blob %s: %w", desc.Digest, err)
		}
	}

	if err := c.upload(ctx, rt, t, location, desc, r); err != nil {
		return fmt.Errorf("pushing blob %s: %w", desc.Digest, err)
	}
	return nil
}

// upload streams r to the session at location with PATCH, checks that r
// held exactly desc.Size bytes, and only then commits with PUT ?digest=.
// A reader of the wrong length cancels the session, so nothing is stored.
func (c *Client) upload(ctx context.Context, rt http.RoundTripper, t target, location string, desc ocispec.Descriptor, r io.Reader) error {
	body := &exactReader{r: r, size: desc.Size}
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, location, body)
	if err != nil {
		return err
	}
	req.ContentLength = desc.Size
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := rt.RoundTrip(req)
	if err == nil {
		defer resp.Body.Close()
	}
	if err == nil && body.err == nil {
		body.checkEnd()
	}
	if body.err != nil {
		c.cancelUpload(ctx, rt, location)
		return body.err
	}
	if err != nil {
		return classify(err, t, opPush)
	}
	if err := checkResponse(resp, t, opPush, http.StatusAccepted, http.StatusNoContent); err != nil {
		return err
	}
	if loc, err := resp.Location(); err == nil {
		location = loc.String()
	}

	u, err := url.Parse(location)
	if err != nil {
		return fmt.Errorf("upload location %q: %w", location, err)
	}
	q := u.Query()
	q.Set("digest", desc.Digest.String())
	u.RawQuery = q.Encode()
	req, err = http.NewRequestWithContext(ctx, http.MethodPut, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err = rt.RoundTrip(req)
	if err != nil {
		return classify(err, t, opPush)
	}
	defer resp.Body.Close()
	return checkResponse(resp, t, opPush, http.StatusCreated)
}

// startUpload POSTs to the uploads endpoint with q. mounted is true if the
// registry answered 201 to a mount; otherwise location is where to upload.
func (c *Client) startUpload(ctx context.Context, rt http.RoundTripper, t target, q url.Values) (location string, mounted bool, err error) {
	u := t.url("blobs", "uploads/")
	if q != nil {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return "", false, err
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return "", false, classify(err, t, opPush)
	}
	defer resp.Body.Close()
	if err := checkResponse(resp, t, opPush, http.StatusCreated, http.StatusAccepted); err != nil {
		return "", false, err
	}
	if resp.StatusCode == http.StatusCreated {
		return "", true, nil
	}
	loc, err := resp.Location()
	if err != nil {
		return "", false, fmt.Errorf("upload session without a location: %w", errdefs.ErrFailedPrecondition)
	}
	return loc.String(), false, nil
}

// cancelUpload deletes an upload session the client will not use; the
// registry would expire it anyway, so failures are ignored.
func (c *Client) cancelUpload(ctx context.Context, rt http.RoundTripper, location string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, location, nil)
	if err != nil {
		return
	}
	if resp, err := rt.RoundTrip(req); err == nil {
		resp.Body.Close()
	}
}

// exactReader passes on exactly size bytes of r and records an error if r
// holds fewer or more.
type exactReader struct {
	r    io.Reader
	size int64
	n    int64
	err  error
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	if rest := e.size - e.n; int64(len(p)) > rest {
		p = p[:rest]
	}
	if len(p) == 0 {
		return 0, io.EOF
	}
	n, err := e.r.Read(p)
	e.n += int64(n)
	if err == io.EOF && e.n < e.size {
		e.err = fmt.Errorf("reader ended after %d of %d bytes: %w", e.n, e.size, errdefs.ErrInvalidArgument)
		return n, e.err
	}
	if err != nil && err != io.EOF {
		e.err = fmt.Errorf("reading blob: %w", err)
		return n, e.err
	}
	return n, nil
}

// checkEnd records an error if fewer than size bytes were read or the
// reader holds more.
func (e *exactReader) checkEnd() {
	if e.n < e.size {
		e.err = fmt.Errorf("reader ended after %d of %d bytes: %w", e.n, e.size, errdefs.ErrInvalidArgument)
		return
	}
	var b [1]byte
	if n, _ := io.ReadFull(e.r, b[:]); n > 0 {
		e.err = fmt.Errorf("reader holds more than %d bytes: %w", e.size, errdefs.ErrInvalidArgument)
	}
}

// PushManifest uploads a manifest or index under ref's tag, or under its
// digest if ref has one (which must be desc.Digest). data must match desc.
func (c *Client) PushManifest(ctx context.Context, ref string, desc ocispec.Descriptor, data []byte) error {
	t, err := c.parse(ref)
	if err != nil {
		return err
	}
	if int64(len(data)) != desc.Size || desc.Digest.Validate() != nil || desc.Digest.Algorithm().FromBytes(data) != desc.Digest {
		return fmt.Errorf("pushing manifest to %s: data does not match descriptor %s (%d bytes): %w",
			ref, desc.Digest, desc.Size, errdefs.ErrInvalidArgument)
	}
	if d, ok := t.ref.(name.Digest); ok && digest.Digest(d.DigestStr()) != desc.Digest {
		return fmt.Errorf("pushing manifest %s to %s: digests differ: %w", desc.Digest, ref, errdefs.ErrInvalidArgument)
	}
	if desc.MediaType == "" {
		return fmt.Errorf("pushing manifest %s: no media type: %w", desc.Digest, errdefs.ErrInvalidArgument)
	}
	rt, err := c.transport(ctx, t, []string{t.repo.Scope(transport.PushScope)})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, t.url("manifests", t.ref.Identifier()), bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", desc.MediaType)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return fmt.Errorf("pushing manifest to %s: %w", ref, classify(err, t, opPush))
	}
	defer resp.Body.Close()
	if err := checkResponse(resp, t, opPush, http.StatusCreated); err != nil {
		return fmt.Errorf("pushing manifest to %s: %w", ref, err)
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != desc.Digest.String() {
		return fmt.Errorf("pushing manifest to %s: registry stored %s, not %s: %w", ref, got, desc.Digest, ErrVerify)
	}
	return nil
}
