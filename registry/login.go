package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/berth-dev/berth/errdefs"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Login checks user and password against the registry host ("host" or
// "host:port") as docker login does: a GET /v2/ answering the registry's
// WWW-Authenticate challenge with them (Basic, or a token fetched with
// them for Bearer). A refusal wraps ErrUnauthorized.
func (c *Client) Login(ctx context.Context, host, user, pass string) error {
	var opts []name.Option
	if c.allowHTTP(host) {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, opts...)
	if err != nil {
		return fmt.Errorf("registry %q: %w: %w", host, err, errdefs.ErrInvalidArgument)
	}
	endpoint := "https://" + reg.RegistryStr() + "/v2/"
	inner, err := c.hostTransport(reg.RegistryStr())
	if err != nil {
		return err
	}
	rt, err := transport.NewWithContext(ctx, reg, &authn.Basic{Username: user, Password: pass}, inner, nil)
	if err != nil {
		var terr *transport.Error
		if errors.As(err, &terr) && (terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden) {
			return fmt.Errorf("login attempt to %s failed with status: %d %s: %w", endpoint, terr.StatusCode, http.StatusText(terr.StatusCode), ErrUnauthorized)
		}
		return fmt.Errorf("login to %s: %w: %w", endpoint, err, errdefs.ErrUnavailable)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return err
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return fmt.Errorf("Get %q: %w: %w", endpoint, err, errdefs.ErrUnavailable)
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("login attempt to %s failed with status: %d %s: %w", endpoint, resp.StatusCode, http.StatusText(resp.StatusCode), ErrUnauthorized)
	}
	return fmt.Errorf("login attempt to %s failed with status: %d %s: %w", endpoint, resp.StatusCode, http.StatusText(resp.StatusCode), errdefs.ErrUnavailable)
}
