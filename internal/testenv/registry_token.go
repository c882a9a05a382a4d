package testenv

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// tokenServer is a minimal implementation of Docker's token protocol
// (distribution docs/spec/auth/token.md), enough for docker-registry's
// `auth: token:` backend:
//
//	client ── GET /v2/… ──────────────────────────▶ registry
//	       ◀─ 401 WWW-Authenticate: Bearer realm=R,service=S,scope=repository:x:pull
//	client ── GET R?service=S&scope=… (Basic user:pw) ▶ token server
//	       ◀─ {"token": JWT}     JWT header: alg ES256, x5c [signing cert]
//	                              claims: iss, sub, aud=S, exp, nbf, iat, jti,
//	                                      access [{type, name, actions}]
//	client ── GET /v2/… Authorization: Bearer JWT ─▶ registry
//
// The registry verifies x5c against its rootcertbundle (the self-signed
// signing certificate), the issuer and the audience. Requests without
// credentials get an anonymous token that grants nothing, so the registry
// refuses them as it would refuse docker pull without login; requests with
// wrong credentials get 401 from the token server itself.
type tokenServer struct {
	realm, host     string
	service, issuer string
	rootsFile       string
	user, password  string
	key             *ecdsa.PrivateKey
	certDER         []byte
	issued          atomic.Int64
}

func startTokenServer(t testing.TB, dir string, pki *testPKI, user, password string) (*tokenServer, error) {
	key, der, err := selfSignedCA(3, "berth test token signer")
	if err != nil {
		return nil, err
	}
	ts := &tokenServer{
		service:   "berth-test-registry",
		issuer:    "berth-test-token-issuer",
		rootsFile: filepath.Join(dir, "token-roots.pem"),
		user:      user,
		password:  password,
		key:       key,
		certDER:   der,
	}
	if err := os.WriteFile(ts.rootsFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, err
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(ts.serveToken))
	scheme := "http"
	if pki != nil {
		scheme = "https"
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{pki.serverCert}}
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	// The realm names localhost rather than 127.0.0.1: clients (ggcr among
	// them) refuse realms on loopback IP literals other than the registry's
	// own host:port, as a guard against SSRF.
	_, port, _ := strings.Cut(srv.Listener.Addr().String(), ":")
	ts.host = "localhost:" + port
	ts.realm = scheme + "://" + ts.host + "/token"
	return ts, nil
}

type accessClaim struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

func (ts *tokenServer) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/token" {
		http.NotFound(w, r)
		return
	}
	subject := ""
	if u, p, ok := r.BasicAuth(); ok {
		if u != ts.user || p != ts.password {
			w.Header().Set("WWW-Authenticate", `Basic realm="berth-test"`)
			http.Error(w, `{"details":"incorrect username or password"}`, http.StatusUnauthorized)
			return
		}
		subject = u
	}
	q := r.URL.Query()
	if q.Get("service") != ts.service {
		http.Error(w, "unknown service", http.StatusBadRequest)
		return
	}
	access := []accessClaim{}
	if subject != "" {
		for _, scope := range q["scope"] {
			// A scope may list several resources separated by spaces.
			for s := range strings.FieldsSeq(scope) {
				if a, ok := parseScope(s); ok {
					access = append(access, a)
				}
			}
		}
	}
	tok, err := ts.sign(subject, access)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	ts.issued.Add(1)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"token":        tok,
		"access_token": tok,
		"expires_in":   300,
		"issued_at":    time.Now().UTC().Format(time.RFC3339),
	})
}

// parseScope parses "repository:name:pull,push"; name may hold colons only
// in a registry host's port, so the type is before the first colon and the
// actions after the last.
func parseScope(s string) (accessClaim, bool) {
	typ, rest, ok := strings.Cut(s, ":")
	if !ok {
		return accessClaim{}, false
	}
	i := strings.LastIndex(rest, ":")
	if i < 0 {
		return accessClaim{}, false
	}
	var actions []string
	for a := range strings.SplitSeq(rest[i+1:], ",") {
		if a == "*" {
			actions = append(actions, "pull", "push", "delete")
		} else if a != "" {
			actions = append(actions, a)
		}
	}
	return accessClaim{Type: typ, Name: rest[:i], Actions: actions}, true
}

// sign makes an ES256 JWT for subject with access.
func (ts *tokenServer) sign(subject string, access []accessClaim) (string, error) {
	now := time.Now()
	header, err := json.Marshal(map[string]any{
		"typ": "JWT",
		"alg": "ES256",
		"x5c": []string{base64.StdEncoding.EncodeToString(ts.certDER)},
	})
	if err != nil {
		return "", err
	}
	claims, err := json.Marshal(map[string]any{
		"iss":    ts.issuer,
		"sub":    subject,
		"aud":    ts.service,
		"exp":    now.Add(5 * time.Minute).Unix(),
		"nbf":    now.Add(-time.Second).Unix(),
		"iat":    now.Unix(),
		"jti":    randomHex(8),
		"access": access,
	})
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	payload := enc.EncodeToString(header) + "." + enc.EncodeToString(claims)
	sum := sha256.Sum256([]byte(payload))
	r, s, err := ecdsa.Sign(rand.Reader, ts.key, sum[:])
	if err != nil {
		return "", fmt.Errorf("signing token: %w", err)
	}
	// JWS ES256 signatures are r and s, each left-padded to 32 bytes.
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return payload + "." + enc.EncodeToString(sig), nil
}
