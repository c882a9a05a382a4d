package registry

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"

	"github.com/berth-dev/berth/errdefs"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// ErrUnauthorized is wrapped by errors for 401 and 403 answers: the
// credentials are missing, wrong or not enough. It wraps
// errdefs.ErrFailedPrecondition (errdefs has no class of its own for it),
// so callers test it with errors.Is(err, registry.ErrUnauthorized).
var ErrUnauthorized = fmt.Errorf("unauthorized: %w", errdefs.ErrFailedPrecondition)

// ErrVerify is wrapped by errors for content that does not match its
// descriptor: wrong size or digest. It wraps errdefs.ErrFailedPrecondition,
// as containerd classifies a digest mismatch.
var ErrVerify = fmt.Errorf("content verification failed: %w", errdefs.ErrFailedPrecondition)

type op int

const (
	opAuth op = iota
	opPull
	opPush
)

// classify turns an error from the transport or an error answer into one
// errdefs can classify, worded as Docker words it where it can.
func classify(err error, t target, o op) error {
	var terr *transport.Error
	if errors.As(err, &terr) {
		return statusError(terr.StatusCode, terr, t, o)
	}
	var uerr *url.Error
	var nerr net.Error
	if errors.As(err, &uerr) || errors.As(err, &nerr) {
		return fmt.Errorf("connecting to %s: %w: %w", t.host, err, errdefs.ErrUnavailable)
	}
	return err
}

// checkResponse returns nil if resp has one of the codes, and otherwise an
// error built from the registry's error body, classified. It does not
// close the body.
func checkResponse(resp *http.Response, t target, o op, codes ...int) error {
	err := transport.CheckError(resp, codes...)
	if err == nil {
		return nil
	}
	var terr *transport.Error
	if errors.As(err, &terr) {
		return statusError(resp.StatusCode, terr, t, o)
	}
	return err
}

func statusError(status int, terr *transport.Error, t target, o op) error {
	code := ""
	if len(terr.Errors) > 0 {
		code = string(terr.Errors[0].Code)
	}
	repo := t.repo.String()
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		if o == opPush {
			return fmt.Errorf("push access denied for %s: %w: %w", repo, terr, ErrUnauthorized)
		}
		return fmt.Errorf("pull access denied for %s, repository does not exist or may require 'docker login': %w: %w",
			repo, terr, ErrUnauthorized)
	case status == http.StatusNotFound:
		switch code {
		case string(transport.ManifestUnknownErrorCode):
			return fmt.Errorf("manifest for %s not found: %w: %w", t.ref, terr, errdefs.ErrNotFound)
		case string(transport.NameUnknownErrorCode):
			return fmt.Errorf("repository %s not found: %w: %w", repo, terr, errdefs.ErrNotFound)
		}
		return fmt.Errorf("%s: %w: %w", t.ref, terr, errdefs.ErrNotFound)
	case status == http.StatusTooManyRequests || status >= 500:
		return fmt.Errorf("registry %s: %w: %w", t.host, terr, errdefs.ErrUnavailable)
	case status == http.StatusBadRequest && (code == string(transport.ManifestInvalidErrorCode) ||
		code == string(transport.DigestInvalidErrorCode) || code == string(transport.SizeInvalidErrorCode) ||
		code == string(transport.NameInvalidErrorCode) || code == string(transport.TagInvalidErrorCode)):
		return fmt.Errorf("registry %s refused %s: %w: %w", t.host, t.ref, terr, errdefs.ErrInvalidArgument)
	}
	return fmt.Errorf("registry %s: %w: %w", t.host, terr, errdefs.ErrFailedPrecondition)
}
