package testenv

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestStartRegistry(t *testing.T) {
	img := BusyboxImage(t)
	for _, tls := range []bool{false, true} {
		for _, auth := range []RegistryAuth{AuthNone, AuthBasic, AuthToken} {
			scheme := "http"
			if tls {
				scheme = "https"
			}
			t.Run(scheme+"/"+auth.String(), func(t *testing.T) {
				t.Parallel()
				reg := StartRegistry(t, RegistryOptions{TLS: tls, Auth: auth})
				if reg.Scheme != scheme {
					t.Errorf("Scheme = %q, want %q", reg.Scheme, scheme)
				}
				if !strings.HasPrefix(reg.Host, "127.0.0.1:") {
					t.Errorf("Host = %q, want 127.0.0.1:PORT", reg.Host)
				}

				// The raw API answers as the variant says.
				resp, err := (&http.Client{Transport: reg.Transport()}).Get(reg.URL("/v2/"))
				if err != nil {
					t.Fatalf("GET /v2/: %v", err)
				}
				resp.Body.Close()
				challenge := resp.Header.Get("WWW-Authenticate")
				switch auth {
				case AuthNone:
					if resp.StatusCode != http.StatusOK {
						t.Errorf("GET /v2/ = %d, want 200", resp.StatusCode)
					}
				case AuthBasic:
					if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(challenge, "Basic ") {
						t.Errorf("GET /v2/ = %d %q, want 401 Basic", resp.StatusCode, challenge)
					}
				case AuthToken:
					if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(challenge, reg.TokenURL) {
						t.Errorf("GET /v2/ = %d %q, want 401 Bearer realm=%s", resp.StatusCode, challenge, reg.TokenURL)
					}
				}

				d := PushImage(t, reg, "test/busybox:1", img)
				ref := pushRef(t, reg, "test/busybox:1")
				got, err := remote.Head(ref, reg.remoteOptions(t)...)
				if err != nil {
					t.Fatalf("HEAD %s after push: %v", ref, err)
				}
				if got.Digest.String() != d.String() {
					t.Errorf("HEAD %s = %s, want %s", ref, got.Digest, d)
				}
				if auth == AuthToken && reg.TokenRequests() == 0 {
					t.Errorf("token server issued no token")
				}
				if auth == AuthNone {
					return
				}
				for _, cred := range []authn.Authenticator{
					authn.Anonymous,
					&authn.Basic{Username: reg.Username, Password: "wrong"},
				} {
					opts := []remote.Option{remote.WithAuth(cred), remote.WithTransport(reg.Transport()), remote.WithContext(t.Context())}
					if err := remote.Write(pushRef(t, reg, "test/refused"), img, opts...); err == nil {
						t.Errorf("push with %v succeeded, want refusal", cred)
					}
					if _, err := remote.Head(ref, opts...); err == nil {
						t.Errorf("HEAD with %v succeeded, want refusal", cred)
					}
				}
			})
		}
	}
}

func TestRegistryLog(t *testing.T) {
	reg := StartRegistry(t, RegistryOptions{})
	http.Get(reg.URL("/v2/_catalog"))
	if !strings.Contains(reg.Log(), "/v2/_catalog") {
		t.Errorf("registry log does not show the request:\n%s", reg.Log())
	}
}
