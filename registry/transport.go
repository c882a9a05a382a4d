package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/docker/cli/cli/config"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// AllowHTTP reports whether a client may speak plain HTTP to host
// ("host" or "host:port"): if it is a loopback address (127.0.0.0/8, ::1,
// or the name localhost), as Docker allows, or if insecure lists it by
// name, by host:port or by a CIDR holding its IP.
func AllowHTTP(host string, insecure []string) bool {
	hostname := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		hostname = h
	}
	hostname = strings.Trim(hostname, "[]")
	addr, ipErr := netip.ParseAddr(hostname)
	isIP := ipErr == nil
	if hostname == "localhost" || isIP && addr.Unmap().IsLoopback() {
		return true
	}
	for _, in := range insecure {
		if in == host || in == hostname {
			return true
		}
		if p, err := netip.ParsePrefix(in); err == nil && isIP && p.Contains(addr.Unmap()) {
			return true
		}
	}
	return false
}

func (c *Client) allowHTTP(host string) bool { return AllowHTTP(host, c.insecure) }

// isInsecure reports whether the user listed host as insecure, in which
// case HTTPS certificates are not checked either (as Docker does).
// Loopback hosts are not in that case: their certificates are checked.
func (c *Client) isInsecure(host string) bool {
	return AllowHTTP(host, c.insecure) && !AllowHTTP(host, nil)
}

// tlsConfig follows Docker's certs.d convention: every *.crt in dir is a CA
// added to the system's, and each *.cert with its *.key is a client
// certificate.
func tlsConfig(dir string, skipVerify bool) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: skipVerify}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading certificates: %w", err)
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		switch {
		case strings.HasSuffix(e.Name(), ".crt"):
			if cfg.RootCAs == nil {
				if cfg.RootCAs, err = x509.SystemCertPool(); err != nil {
					cfg.RootCAs = x509.NewCertPool()
				}
			}
			pem, err := os.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("reading CA: %w", err)
			}
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("no certificate in %s: %w", p, errdefs.ErrInvalidArgument)
			}
		case strings.HasSuffix(e.Name(), ".cert"):
			key := strings.TrimSuffix(p, ".cert") + ".key"
			cert, err := tls.LoadX509KeyPair(p, key)
			if err != nil {
				return nil, fmt.Errorf("loading client certificate %s: %w", p, err)
			}
			cfg.Certificates = append(cfg.Certificates, cert)
		}
	}
	return cfg, nil
}

// httpGuard refuses plain-HTTP requests to hosts that may not have them.
// ggcr falls back to http for RFC 1918 addresses too; Docker does not.
type httpGuard struct {
	inner http.RoundTripper
	allow func(host string) bool
}

func (g *httpGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !g.allow(req.URL.Host) {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("refusing plain HTTP to %s: not a loopback address and not listed as insecure: %w",
			req.URL.Host, errdefs.ErrFailedPrecondition)
	}
	return g.inner.RoundTrip(req)
}

// retryTransport retries a request after a 5xx or 429 answer or a broken
// connection, with exponential backoff, as long as its body can be
// replayed.
type retryTransport struct {
	inner   http.RoundTripper
	retries int
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		resp, err := t.inner.RoundTrip(req)
		last := attempt >= t.retries || req.Body != nil && req.GetBody == nil
		if last || !retryable(resp, err) {
			return resp, err
		}
		if resp != nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		if err := sleep(req.Context(), backoff(attempt)); err != nil {
			return nil, err
		}
		if req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			req = req.Clone(req.Context())
			req.Body = body
		}
	}
}

func retryable(resp *http.Response, err error) bool {
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return false
		}
		var ne net.Error
		return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
			errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
			errors.As(err, &ne) && ne.Timeout()
	}
	return resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented
}

func backoff(attempt int) time.Duration {
	return min(100*time.Millisecond<<attempt, 5*time.Second)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// resolveDockerConfig looks r up in dir/config.json with docker/cli's
// loader, which runs credsStore and credHelpers, under the same keys as
// ggcr's DefaultKeychain: the repository, then the registry.
func resolveDockerConfig(dir string, r authn.Resource) (authn.Authenticator, error) {
	cf, err := config.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("loading docker config: %w", err)
	}
	for _, key := range []string{r.String(), r.RegistryStr()} {
		if key == name.DefaultRegistry {
			key = authn.DefaultAuthKey
		}
		ac, err := cf.GetAuthConfig(key)
		if err != nil {
			return nil, fmt.Errorf("getting credentials for %s: %w", key, err)
		}
		if ac.Username != "" || ac.Password != "" || ac.Auth != "" || ac.IdentityToken != "" || ac.RegistryToken != "" {
			return authn.FromConfig(authn.AuthConfig{
				Username: ac.Username, Password: ac.Password, Auth: ac.Auth,
				IdentityToken: ac.IdentityToken, RegistryToken: ac.RegistryToken,
			}), nil
		}
	}
	return authn.Anonymous, nil
}
