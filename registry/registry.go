// Package registry talks to OCI distribution registries: resolve, fetch and
// push, with Docker's auth.
//
// It is built on go-containerregistry's transport (the WWW-Authenticate
// ping, Basic and Bearer token exchange) and authn (docker config.json),
// with a small API of its own shaped for streaming: descriptors in, verified
// readers out. Choosing a platform from an index is the image package's job.
//
// A request goes through these round trippers, outermost first:
//
//	ggcr auth (basic / bearer, per registry and scope set; cached in Client)
//	  └ user agent
//	    └ retry (5xx, 429, connection reset; never 4xx or a consumed body)
//	      └ plain-HTTP guard (only loopback and WithInsecure hosts)
//	        └ http.Transport with the host's certs.d CA and client certificate
package registry

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/berth-dev/berth/errdefs"
	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// DefaultCertsDir is where Docker looks for per-registry certificates:
// <dir>/<host[:port]>/ca.crt, client.cert and client.key.
const DefaultCertsDir = "/etc/docker/certs.d"

// Client talks to registries. It is safe for concurrent use; it caches one
// authenticated transport per registry and set of scopes, so that a pull
// pings and fetches a token once, not once per blob.
type Client struct {
	keychain  authn.Keychain
	insecure  []string
	certsDir  string
	userAgent string
	retries   int
	base      http.RoundTripper // from WithTransport; nil: one per host

	mu         sync.Mutex
	transports map[string]http.RoundTripper
	hosts      map[string]http.RoundTripper
}

// Option changes how New makes a Client.
type Option func(*Client)

// WithDockerConfig reads credentials from dir/config.json (auths, and
// credsStore / credHelpers run as docker-credential-<name>) instead of
// $DOCKER_CONFIG or ~/.docker.
func WithDockerConfig(dir string) Option {
	return func(c *Client) { c.keychain = dockerConfigKeychain{dir: dir} }
}

// WithKeychain resolves credentials with k instead of a docker config.
func WithKeychain(k authn.Keychain) Option {
	return func(c *Client) { c.keychain = k }
}

// WithInsecure lets the client use plain HTTP, and HTTPS without checking
// certificates, for hosts ("host", "host:port" or an IP CIDR), as Docker's
// insecure-registries does. Loopback hosts may use plain HTTP without it.
func WithInsecure(hosts ...string) Option {
	return func(c *Client) { c.insecure = append(c.insecure, hosts...) }
}

// WithCertsDir reads per-registry certificates from dir instead of
// DefaultCertsDir.
func WithCertsDir(dir string) Option {
	return func(c *Client) { c.certsDir = dir }
}

// WithUserAgent sets the User-Agent header of every request.
func WithUserAgent(ua string) Option {
	return func(c *Client) { c.userAgent = ua }
}

// WithRetries sets how many times a request is retried after a 5xx, a 429
// or a broken connection (default 3; 0 disables retries). 4xx answers are
// never retried, nor are requests whose body cannot be replayed.
func WithRetries(n int) Option {
	return func(c *Client) { c.retries = max(n, 0) }
}

// WithTransport makes every request through rt instead of a transport
// built from the certs directory. The plain-HTTP rule still applies.
func WithTransport(rt http.RoundTripper) Option {
	return func(c *Client) { c.base = rt }
}

// New returns a client.
func New(opts ...Option) *Client {
	c := &Client{
		keychain:   dockerConfigKeychain{},
		certsDir:   DefaultCertsDir,
		userAgent:  "berth",
		retries:    3,
		transports: map[string]http.RoundTripper{},
		hosts:      map[string]http.RoundTripper{},
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// target is a parsed reference with what the client needs of it.
type target struct {
	ref  name.Reference
	repo name.Repository
	// host is the registry's address as URLs name it (docker.io becomes
	// index.docker.io).
	host string
}

func (c *Client) parse(ref string) (target, error) {
	var opts []name.Option
	if c.allowHTTP(registryHost(ref)) {
		// Let ggcr fall back to http after https fails.
		opts = append(opts, name.Insecure)
	}
	// Docker's grammar first: ggcr's parser lets some names through that
	// Docker refuses (e.g. "a//b").
	if _, err := reference.ParseNormalizedNamed(ref); err != nil {
		return target{}, fmt.Errorf("parsing reference %q: %w: %w", ref, err, errdefs.ErrInvalidArgument)
	}
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return target{}, fmt.Errorf("parsing reference %q: %w: %w", ref, err, errdefs.ErrInvalidArgument)
	}
	repo := r.Context()
	return target{ref: r, repo: repo, host: repo.RegistryStr()}, nil
}

// registryHost returns the registry part of a reference, as ggcr parses
// it, or "" if it has none.
func registryHost(ref string) string {
	first, _, ok := strings.Cut(ref, "/")
	if !ok || !strings.ContainsAny(first, ".:") && first != "localhost" {
		return ""
	}
	return first
}

// url returns the API URL of path under the target's repository. The
// scheme is only a start: the transport switches to http if the ping
// found the registry speaking it.
func (t target) url(kind, rest string) string {
	return fmt.Sprintf("https://%s/v2/%s/%s/%s", t.host, t.repo.RepositoryStr(), kind, rest)
}

// transport returns an authenticated round tripper for t with scopes.
func (c *Client) transport(ctx context.Context, t target, scopes []string) (http.RoundTripper, error) {
	slices.Sort(scopes)
	key := t.host + " " + strings.Join(scopes, " ")
	c.mu.Lock()
	rt, ok := c.transports[key]
	c.mu.Unlock()
	if ok {
		return rt, nil
	}
	auth, err := authn.Resolve(ctx, c.keychain, t.repo)
	if err != nil {
		return nil, fmt.Errorf("reading credentials for %s: %w", t.host, err)
	}
	inner, err := c.hostTransport(t.host)
	if err != nil {
		return nil, err
	}
	rt, err = transport.NewWithContext(ctx, t.repo.Registry, auth, inner, scopes)
	if err != nil {
		return nil, classify(err, t, opAuth)
	}
	c.mu.Lock()
	c.transports[key] = rt
	c.mu.Unlock()
	return rt, nil
}

// hostTransport returns the unauthenticated stack for host: user agent,
// retries, the plain-HTTP guard and TLS from the certs directory.
func (c *Client) hostTransport(host string) (http.RoundTripper, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rt, ok := c.hosts[host]; ok {
		return rt, nil
	}
	base := c.base
	if base == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		cfg, err := tlsConfig(filepath.Join(c.certsDir, host), c.isInsecure(host))
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = cfg
		base = tr
	}
	var rt http.RoundTripper = &httpGuard{inner: base, allow: c.allowHTTP}
	rt = &retryTransport{inner: rt, retries: c.retries}
	rt = transport.NewUserAgent(rt, c.userAgent)
	c.hosts[host] = rt
	return rt, nil
}

// dockerConfigKeychain resolves credentials as Docker does, from
// <dir>/config.json, or $DOCKER_CONFIG / ~/.docker if dir is empty. It
// reads the file on every call so that a login by another process is seen.
type dockerConfigKeychain struct{ dir string }

func (k dockerConfigKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if k.dir == "" {
		return authn.DefaultKeychain.Resolve(r)
	}
	if _, err := os.Stat(filepath.Join(k.dir, "config.json")); err != nil {
		return authn.Anonymous, nil
	}
	return resolveDockerConfig(k.dir, r)
}
