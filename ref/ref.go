// Package ref parses and normalizes image references the way Docker does.
//
// "busybox" means "docker.io/library/busybox:latest"; a reference may carry a
// tag, a digest, or both ("localhost:5000/a/b:1@sha256:…"). The grammar is
// github.com/distribution/reference's, the same library Docker uses; this
// package only wraps it in a small value type and classifies its errors with
// errdefs.ErrInvalidArgument while keeping Docker's wording.
package ref

import (
	_ "crypto/sha256" // digest.Parse accepts only algorithms linked in
	_ "crypto/sha512"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	dref "github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
)

// DefaultTag is the tag Parse adds to a reference that has neither a tag nor
// a digest.
const DefaultTag = "latest"

// Reference is a parsed, normalized image reference. The zero value is not a
// valid reference; obtain one from Parse. References are comparable values.
type Reference struct {
	domain string        // "docker.io", "localhost:5000"
	path   string        // "library/busybox"
	tag    string        // "" when absent
	digest digest.Digest // "" when absent
}

// parseError keeps Docker's message as the whole text of the error while
// classifying it as errdefs.ErrInvalidArgument (and, where there is one, as
// the distribution/reference sentinel that caused it).
type parseError struct {
	msg   string
	cause error
}

func (e *parseError) Error() string { return e.msg }

func (e *parseError) Unwrap() []error { return []error{errdefs.ErrInvalidArgument, e.cause} }

func invalid(err error) error {
	return &parseError{msg: err.Error(), cause: err}
}

// Parse parses s as Docker's CLI and daemon do: a familiar name is expanded to
// its full form (domain docker.io, namespace library/), and "latest" is added
// when s has neither tag nor digest. A reference with both a tag and a digest
// keeps both; the digest is what identifies the content.
//
// Errors wrap errdefs.ErrInvalidArgument and read as Docker's do, for example
// "invalid reference format" or "invalid reference format: repository name
// (library/UPPER) must be lowercase".
func Parse(s string) (Reference, error) {
	named, err := dref.ParseNormalizedNamed(s)
	if err != nil {
		return Reference{}, invalid(err)
	}
	r := Reference{domain: dref.Domain(named), path: dref.Path(named)}
	if t, ok := named.(dref.Tagged); ok {
		r.tag = t.Tag()
	}
	if d, ok := named.(dref.Digested); ok {
		r.digest = d.Digest()
	}
	if r.tag == "" && r.digest == "" {
		r.tag = DefaultTag
	}
	return r, nil
}

// MustParse is Parse for references known to be valid (constants in code and
// tests); it panics on error.
func MustParse(s string) Reference {
	r, err := Parse(s)
	if err != nil {
		panic("ref.MustParse(" + s + "): " + err.Error())
	}
	return r
}

// named rebuilds the distribution/reference value, which knows how to print
// and familiarize itself. r came from Parse, so the calls cannot fail.
func (r Reference) named() dref.Named {
	n, err := dref.WithName(r.Repository())
	if err != nil {
		return nil
	}
	if r.tag != "" {
		if n, err = dref.WithTag(n, r.tag); err != nil {
			return nil
		}
	}
	if r.digest != "" {
		if n, err = dref.WithDigest(n, r.digest); err != nil {
			return nil
		}
	}
	return n
}

// String returns the full normalized reference,
// "docker.io/library/busybox:latest". It is "" for the zero Reference.
func (r Reference) String() string {
	if r.IsZero() {
		return ""
	}
	s := r.Repository()
	if r.tag != "" {
		s += ":" + r.tag
	}
	if r.digest != "" {
		s += "@" + r.digest.String()
	}
	return s
}

// Familiar returns the short form Docker displays: "busybox:latest",
// "user/app:1", "localhost:5000/x:1".
func (r Reference) Familiar() string {
	if r.IsZero() {
		return ""
	}
	n := r.named()
	if n == nil {
		return r.String()
	}
	return dref.FamiliarString(n)
}

// FamiliarName returns the short form of the repository alone ("busybox"),
// as Docker shows it in the REPOSITORY column.
func (r Reference) FamiliarName() string {
	if r.IsZero() {
		return ""
	}
	n, err := dref.WithName(r.Repository())
	if err != nil {
		return r.Repository()
	}
	return dref.FamiliarName(n)
}

// Repository returns the full repository name without tag or digest,
// "docker.io/library/busybox".
func (r Reference) Repository() string {
	if r.IsZero() {
		return ""
	}
	return r.domain + "/" + r.path
}

// Domain returns the registry host (and port), "docker.io" or
// "localhost:5000".
func (r Reference) Domain() string { return r.domain }

// Path returns the repository path inside the registry, "library/busybox".
func (r Reference) Path() string { return r.path }

// Tag returns the tag, or "" when the reference has none (it was given only a
// digest).
func (r Reference) Tag() string { return r.tag }

// Digest returns the digest, or "" when the reference has none.
func (r Reference) Digest() digest.Digest { return r.digest }

// IsDigested reports whether the reference names content by digest.
func (r Reference) IsDigested() bool { return r.digest != "" }

// IsZero reports whether r is the zero Reference.
func (r Reference) IsZero() bool { return r.domain == "" && r.path == "" }

// WithTag returns r with its tag replaced by tag (the digest, if any, is
// kept). An invalid tag is an error wrapping errdefs.ErrInvalidArgument.
func (r Reference) WithTag(tag string) (Reference, error) {
	if r.IsZero() {
		return Reference{}, invalid(dref.ErrNameEmpty)
	}
	n, err := dref.WithName(r.Repository())
	if err != nil {
		return Reference{}, invalid(err)
	}
	if _, err := dref.WithTag(n, tag); err != nil {
		return Reference{}, invalid(err)
	}
	r.tag = tag
	return r, nil
}

// WithDigest returns r with its digest replaced by d (the tag, if any, is
// kept). An invalid digest is an error wrapping errdefs.ErrInvalidArgument.
func (r Reference) WithDigest(d digest.Digest) (Reference, error) {
	if r.IsZero() {
		return Reference{}, invalid(dref.ErrNameEmpty)
	}
	if err := d.Validate(); err != nil {
		return Reference{}, invalid(dref.ErrDigestInvalidFormat)
	}
	r.digest = d
	return r, nil
}

// LooksLikeID reports whether s has the shape of an image ID, or of an ID
// prefix, as Docker accepts them in rmi, inspect and tag: 12 to 64 lower-case
// hexadecimal characters, optionally prefixed with "sha256:".
//
// A 12–63 character hex string is also a valid repository name; Docker looks
// it up as a name first and as an ID second, and callers should do the same.
// A 64 character one is never a name (Parse rejects it).
func LooksLikeID(s string) bool {
	s = strings.TrimPrefix(s, "sha256:")
	if len(s) < 12 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
