package registry_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/internal/testenv"
	"github.com/berth-dev/berth/registry"
)

func TestAllowHTTP(t *testing.T) {
	tests := []struct {
		host     string
		insecure []string
		want     bool
	}{
		{"127.0.0.1:5000", nil, true},
		{"127.1.2.3", nil, true},
		{"[::1]:5000", nil, true},
		{"localhost:5000", nil, true},
		{"10.0.0.1:5000", nil, false}, // ggcr would fall back to http; Docker does not
		{"192.168.1.1", nil, false},
		{"registry.example.com", nil, false},
		{"registry.example.com:5000", []string{"registry.example.com:5000"}, true},
		{"registry.example.com:5000", []string{"registry.example.com"}, true},
		{"registry.example.com:5001", []string{"registry.example.com:5000"}, false},
		{"10.0.0.1:5000", []string{"10.0.0.0/8"}, true},
		{"11.0.0.1:5000", []string{"10.0.0.0/8"}, false},
	}
	for _, tt := range tests {
		if got := registry.AllowHTTP(tt.host, tt.insecure); got != tt.want {
			t.Errorf("AllowHTTP(%q, %q) = %v, want %v", tt.host, tt.insecure, got, tt.want)
		}
	}
}

// dialTo returns a transport that sends every connection to addr, so that
// requests for any host name reach a registry on 127.0.0.1.
func dialTo(addr string) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	var d net.Dialer
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}
	return tr
}

func TestPlainHTTP(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	d := testenv.PushImage(t, reg, "berth/img:1", testenv.BusyboxImage(t))
	_, port, _ := net.SplitHostPort(reg.Host)
	ctx := t.Context()

	// Loopback: plain HTTP without flags, for real.
	if got, err := registry.New().Resolve(ctx, reg.Host+"/berth/img:1"); err != nil || got.Digest != d {
		t.Errorf("Resolve over plain HTTP on loopback = %v, %v", got.Digest, err)
	}
	// Other names reach the same registry through dialTo; they may not
	// use plain HTTP unless listed.
	for _, host := range []string{"registry.example.com:" + port, "10.1.2.3:" + port} {
		ref := host + "/berth/img:1"
		c := registry.New(registry.WithTransport(dialTo(reg.Host)), registry.WithRetries(0))
		if _, err := c.Resolve(ctx, ref); err == nil {
			t.Errorf("Resolve(%s) over plain HTTP without WithInsecure succeeded", ref)
		}
		c = registry.New(registry.WithTransport(dialTo(reg.Host)), registry.WithInsecure(host))
		if got, err := c.Resolve(ctx, ref); err != nil || got.Digest != d {
			t.Errorf("Resolve(%s) with WithInsecure = %v, %v", ref, got.Digest, err)
		}
	}
}

func TestTLSCertsDir(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{TLS: true})
	d := testenv.PushImage(t, reg, "berth/img:1", testenv.BusyboxImage(t))
	ref := reg.Host + "/berth/img:1"
	if _, err := registry.New(registry.WithCertsDir(t.TempDir()), registry.WithRetries(0)).Resolve(t.Context(), ref); err == nil {
		t.Errorf("Resolve over TLS without the CA succeeded")
	}
	if got, err := registry.New(registry.WithCertsDir(reg.CertsDir)).Resolve(t.Context(), ref); err != nil || got.Digest != d {
		t.Errorf("Resolve over TLS with the CA in the certs dir = %v, %v", got.Digest, err)
	}
}

// failingReader fails the test if PushBlob reads it: the blob must come
// from a mount or be skipped.
type failingReader struct{ t *testing.T }

func (r failingReader) Read([]byte) (int, error) {
	r.t.Errorf("PushBlob read the blob; want a mount or a skip")
	return 0, errors.New("must not be read")
}

func TestCrossRepoMount(t *testing.T) {
	for _, auth := range []testenv.RegistryAuth{testenv.AuthNone, testenv.AuthToken} {
		t.Run(auth.String(), func(t *testing.T) {
			reg := testenv.StartRegistry(t, testenv.RegistryOptions{Auth: auth})
			c := registry.New(registry.WithDockerConfig(dockerConfig(t, reg, reg.Username, reg.Password)))
			p := push(t, c, reg.Host+"/src/img:1", testenv.BusyboxImage(t))
			ctx := t.Context()
			dst := reg.Host + "/dst/img"
			for _, b := range p.blobs {
				if ok, err := c.Exists(ctx, dst, b.desc); ok || err != nil {
					t.Fatalf("Exists(dst, %s) before mount = %v, %v", b.desc.Digest, ok, err)
				}
				if err := c.PushBlob(ctx, dst, b.desc, failingReader{t}, "nowhere/img", "src/img"); err != nil {
					t.Fatalf("PushBlob with mount: %v", err)
				}
				if ok, err := c.Exists(ctx, dst, b.desc); !ok || err != nil {
					t.Errorf("Exists(dst, %s) after mount = %v, %v", b.desc.Digest, ok, err)
				}
				// Already there: skipped without reading.
				if err := c.PushBlob(ctx, dst, b.desc, failingReader{t}); err != nil {
					t.Errorf("PushBlob of a present blob: %v", err)
				}
			}
			if !strings.Contains(reg.Log(), "from=src%2Fimg") && !strings.Contains(reg.Log(), "from=src/img") {
				t.Errorf("registry log shows no mount request")
			}
		})
	}
}

// liar sits in front of a registry and damages the answers to blob GETs
// for one digest as mode says; other requests pass through.
type liar struct {
	upstream *url.URL
	digest   string
	mode     string
	fails    atomic.Int32 // 500s left to send in mode "500"
}

func (l *liar) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+l.digest) {
		httputil.NewSingleHostReverseProxy(l.upstream).ServeHTTP(w, r)
		return
	}
	resp, err := http.Get(l.upstream.String() + r.URL.Path)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	switch l.mode {
	case "corrupt":
		body[len(body)/2] ^= 0xff
		w.Write(body)
	case "extra":
		w.Header().Set("Transfer-Encoding", "chunked") // no length: the reader must stop it
		w.Write(body)
		w.(http.Flusher).Flush()
		w.Write([]byte("extra bytes"))
	case "short-length":
		w.Header().Set("Content-Length", fmt.Sprint(len(body)-10))
		w.Write(body[:len(body)-10])
	case "truncate":
		conn, buf, _ := w.(http.Hijacker).Hijack()
		fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(body))
		buf.Write(body[:len(body)/2])
		buf.Flush()
		conn.Close()
	case "500":
		if l.fails.Add(-1) >= 0 {
			http.Error(w, `{"errors":[{"code":"UNKNOWN","message":"flaky"}]}`, http.StatusInternalServerError)
			return
		}
		w.Write(body)
	}
}

func TestLyingRegistry(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	c0 := registry.New()
	p := push(t, c0, reg.Host+"/berth/img:1", testenv.BusyboxImage(t))
	layer := p.blobs[0]
	u, _ := url.Parse(reg.URL(""))

	fetch := func(c *registry.Client, host string) ([]byte, error) {
		rc, err := c.Fetch(t.Context(), host+"/berth/img", layer.desc)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return io.ReadAll(rc)
	}
	for _, mode := range []string{"corrupt", "extra", "short-length", "truncate"} {
		t.Run(mode, func(t *testing.T) {
			srv := httptest.NewServer(&liar{upstream: u, digest: layer.desc.Digest.String(), mode: mode})
			defer srv.Close()
			host := strings.TrimPrefix(srv.URL, "http://")
			data, err := fetch(registry.New(), host)
			if !errors.Is(err, registry.ErrVerify) || !errdefs.IsFailedPrecondition(err) {
				t.Errorf("Fetch through a %s liar: %d bytes, err %v; want ErrVerify", mode, len(data), err)
			}
		})
	}
	t.Run("500", func(t *testing.T) {
		l := &liar{upstream: u, digest: layer.desc.Digest.String(), mode: "500"}
		srv := httptest.NewServer(l)
		defer srv.Close()
		host := strings.TrimPrefix(srv.URL, "http://")
		l.fails.Store(2)
		if data, err := fetch(registry.New(registry.WithRetries(3)), host); err != nil || !bytes.Equal(data, layer.data) {
			t.Errorf("Fetch after two 500s with 3 retries: %v", err)
		}
		l.fails.Store(2)
		if _, err := fetch(registry.New(registry.WithRetries(0)), host); !errors.Is(err, errdefs.ErrUnavailable) {
			t.Errorf("Fetch after a 500 without retries = %v, want unavailable", err)
		}
	})
}

func TestCredentialHelper(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{Auth: testenv.AuthBasic})
	testenv.PushImage(t, reg, "berth/img:1", testenv.BusyboxImage(t))
	bin := t.TempDir()
	// docker-credential-helpers protocol: "get" reads the server URL on
	// stdin and prints JSON credentials.
	script := fmt.Sprintf("#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread server\n"+
		"echo \"$server\" >> %q\n"+
		"printf '{\"ServerURL\":\"%%s\",\"Username\":\"%s\",\"Secret\":\"%s\"}' \"$server\"\n",
		filepath.Join(bin, "asked"), reg.Username, reg.Password)
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-berthtest"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	for name, cfg := range map[string]any{
		"credHelpers": map[string]any{"credHelpers": map[string]string{reg.Host: "berthtest"}},
		"credsStore":  map[string]any{"credsStore": "berthtest"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writeJSON(t, filepath.Join(dir, "config.json"), cfg)
			os.Remove(filepath.Join(bin, "asked"))
			if _, err := registry.New(registry.WithDockerConfig(dir)).Resolve(t.Context(), reg.Host+"/berth/img:1"); err != nil {
				t.Errorf("Resolve with a credential helper: %v", err)
			}
			asked, _ := os.ReadFile(filepath.Join(bin, "asked"))
			if !strings.Contains(string(asked), reg.Host) {
				t.Errorf("helper asked for %q, want %s", asked, reg.Host)
			}
		})
	}
}
