package testenv

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
)

// RegistryPath is where Debian's docker-registry package installs the
// distribution registry (v2).
const RegistryPath = "/usr/bin/docker-registry"

// RegistryAuth says how a test registry authenticates its clients.
type RegistryAuth int

const (
	// AuthNone lets anyone pull and push.
	AuthNone RegistryAuth = iota
	// AuthBasic answers 401 with a Basic challenge and checks an htpasswd
	// file (bcrypt, the only hash the registry accepts).
	AuthBasic
	// AuthToken answers 401 with a Bearer challenge whose realm is a token
	// server run by the test (Docker's token protocol, see registry_token.go).
	AuthToken
)

// String returns the name tests use for the mode.
func (a RegistryAuth) String() string {
	switch a {
	case AuthBasic:
		return "basic"
	case AuthToken:
		return "token"
	}
	return "none"
}

// RegistryOptions choose the variant of a test registry.
type RegistryOptions struct {
	// TLS serves HTTPS with a certificate from a CA made for this registry
	// (Registry.CAFile, Registry.CertsDir). Otherwise the registry speaks
	// plain HTTP.
	TLS bool
	// Auth chooses anonymous, htpasswd or token authentication.
	Auth RegistryAuth
}

// Registry is a running docker-registry on 127.0.0.1, storing its data in
// a temporary directory of the test that started it.
type Registry struct {
	// Host is "127.0.0.1:PORT", the registry part of references to it.
	Host string
	// Scheme is "http" or "https".
	Scheme string
	// CAFile is the PEM of the CA that signed the server certificate;
	// empty without TLS.
	CAFile string
	// CertsDir is a directory laid out as /etc/docker/certs.d:
	// <CertsDir>/<Host>/ca.crt (and <CertsDir>/localhost:<port>/ca.crt for
	// the token server). Empty without TLS.
	CertsDir string
	// Username and Password are the credentials the registry (or its token
	// server) accepts; both empty with AuthNone.
	Username, Password string
	// Auth is the variant's authentication mode.
	Auth RegistryAuth
	// TokenURL is the token server's realm with AuthToken, otherwise empty.
	TokenURL string

	dir     string
	logPath string
	tokens  *tokenServer
}

// URL returns the registry's URL for path, e.g. r.URL("/v2/").
func (r *Registry) URL(path string) string {
	return r.Scheme + "://" + r.Host + path
}

// Log returns what the registry has written to stdout and stderr so far,
// including its access log.
func (r *Registry) Log() string {
	b, _ := os.ReadFile(r.logPath)
	return string(b)
}

// Authenticator returns ggcr credentials for the registry: its user and
// password, or anonymous with AuthNone.
func (r *Registry) Authenticator() authn.Authenticator {
	if r.Username == "" {
		return authn.Anonymous
	}
	return &authn.Basic{Username: r.Username, Password: r.Password}
}

// Transport returns an HTTP transport that trusts the registry's CA (and
// nothing else is needed without TLS).
func (r *Registry) Transport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if r.CAFile != "" {
		pool := x509.NewCertPool()
		pem, err := os.ReadFile(r.CAFile)
		if err == nil {
			pool.AppendCertsFromPEM(pem)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return tr
}

// TokenRequests returns how many tokens the token server has issued (0
// without AuthToken).
func (r *Registry) TokenRequests() int {
	if r.tokens == nil {
		return 0
	}
	return int(r.tokens.issued.Load())
}

// RequiresRegistry skips t unless docker-registry and htpasswd are
// installed.
func RequiresRegistry(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(RegistryPath); err != nil {
		t.Skipf("docker-registry not installed: %v", err)
	}
	if _, err := exec.LookPath("htpasswd"); err != nil {
		t.Skipf("htpasswd (apache2-utils) not installed: %v", err)
	}
}

// StartRegistry starts a docker-registry on a free port of 127.0.0.1 as
// opts describe, waits until it answers /v2/, and stops it when the test
// ends. If the test fails, the registry's log is printed.
func StartRegistry(t testing.TB, opts RegistryOptions) *Registry {
	t.Helper()
	RequiresRegistry(t)
	var lastErr error
	// Another process may take the free port between our probe and the
	// registry's bind; try a few ports before giving up.
	for range 3 {
		r, err := startRegistry(t, opts)
		if err == nil {
			return r
		}
		lastErr = err
	}
	t.Fatalf("starting docker-registry: %v", lastErr)
	return nil
}

func startRegistry(t testing.TB, opts RegistryOptions) (*Registry, error) {
	dir := t.TempDir()
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	r := &Registry{
		Host:    fmt.Sprintf("127.0.0.1:%d", port),
		Scheme:  "http",
		Auth:    opts.Auth,
		dir:     dir,
		logPath: filepath.Join(dir, "registry.log"),
	}
	var pki *testPKI
	if opts.TLS {
		r.Scheme = "https"
		if pki, err = newTestPKI(dir); err != nil {
			return nil, err
		}
		r.CAFile = pki.caFile
		r.CertsDir = filepath.Join(dir, "certs.d")
		if err := pki.writeCertsDir(r.CertsDir, r.Host); err != nil {
			return nil, err
		}
	}
	if opts.Auth != AuthNone {
		r.Username = "berth"
		r.Password = randomHex(12)
	}

	cfg := registryConfig{
		Addr:    r.Host,
		Storage: filepath.Join(dir, "storage"),
		Secret:  randomHex(16),
	}
	if pki != nil {
		cfg.Cert, cfg.Key = pki.certFile, pki.keyFile
	}
	switch opts.Auth {
	case AuthBasic:
		cfg.Htpasswd = filepath.Join(dir, "htpasswd")
		out, err := exec.Command("htpasswd", "-Bbc", cfg.Htpasswd, r.Username, r.Password).CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("htpasswd: %v: %s", err, out)
		}
	case AuthToken:
		ts, err := startTokenServer(t, dir, pki, r.Username, r.Password)
		if err != nil {
			return nil, err
		}
		r.tokens = ts
		r.TokenURL = ts.realm
		cfg.TokenRealm, cfg.TokenService, cfg.TokenIssuer, cfg.TokenRoots = ts.realm, ts.service, ts.issuer, ts.rootsFile
		if pki != nil {
			// Clients reach the token server as localhost:<port>: trust it too.
			if err := pki.writeCertsDir(r.CertsDir, ts.host); err != nil {
				return nil, err
			}
		}
	}
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg.yaml()), 0o644); err != nil {
		return nil, err
	}

	logf, err := os.Create(r.logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(RegistryPath, "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", RegistryPath, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}
	if err := r.waitReady(exited); err != nil {
		stop()
		return nil, fmt.Errorf("%w; log:\n%s", err, tail(r.Log(), 2000))
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("docker-registry %s log:\n%s", r.Host, tail(r.Log(), 8000))
		}
	})
	return r, nil
}

// waitReady polls GET /v2/ until the registry answers 200 or 401.
func (r *Registry) waitReady(exited <-chan error) error {
	client := &http.Client{Transport: r.Transport(), Timeout: time.Second}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("docker-registry exited: %v", err)
		default:
		}
		resp, err := client.Get(r.URL("/v2/"))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("docker-registry on %s not ready after 15s", r.Host)
}

type registryConfig struct {
	Addr, Storage, Secret string
	Cert, Key             string
	Htpasswd              string
	TokenRealm            string
	TokenService          string
	TokenIssuer           string
	TokenRoots            string
}

// yaml renders the registry's configuration (distribution 2.8's
// docs/configuration.md).
func (c registryConfig) yaml() string {
	var b strings.Builder
	fmt.Fprintf(&b, "version: 0.1\nlog:\n  level: info\n  formatter: text\n")
	fmt.Fprintf(&b, "storage:\n  filesystem:\n    rootdirectory: %q\n  delete:\n    enabled: true\n", c.Storage)
	fmt.Fprintf(&b, "http:\n  addr: %q\n  secret: %q\n", c.Addr, c.Secret)
	if c.Cert != "" {
		fmt.Fprintf(&b, "  tls:\n    certificate: %q\n    key: %q\n", c.Cert, c.Key)
	}
	switch {
	case c.Htpasswd != "":
		fmt.Fprintf(&b, "auth:\n  htpasswd:\n    realm: berth-test\n    path: %q\n", c.Htpasswd)
	case c.TokenRealm != "":
		fmt.Fprintf(&b, "auth:\n  token:\n    realm: %q\n    service: %q\n    issuer: %q\n    rootcertbundle: %q\n",
			c.TokenRealm, c.TokenService, c.TokenIssuer, c.TokenRoots)
	}
	return b.String()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// registryContext is a context for fixture calls that must not hang a test.
func registryContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
