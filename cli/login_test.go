package cli

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testenv"
)

// authsOf reads the auths of config.json in dir.
func authsOf(t *testing.T, dir string) map[string]struct{ Auth string } {
	t.Helper()
	var cf struct {
		Auths map[string]struct{ Auth string }
	}
	if data, err := os.ReadFile(filepath.Join(dir, "config.json")); err == nil {
		if err := json.Unmarshal(data, &cf); err != nil {
			t.Fatal(err)
		}
	}
	return cf.Auths
}

func TestLoginPushTLS(t *testing.T) {
	testenv.RequiresRoot(t)
	plain := testenv.StartRegistry(t, testenv.RegistryOptions{})
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{TLS: true, Auth: testenv.AuthBasic})
	testenv.PushImage(t, plain, "library/busybox:latest", testenv.BusyboxImage(t))
	cfgDir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", cfgDir)
	t.Setenv(CertsDirEnv, reg.CertsDir)

	root := t.TempDir()
	if _, errs, code := berth(t, root, "pull", "-q", plain.Host+"/library/busybox"); code != 0 {
		t.Fatalf("pull: %s", errs)
	}
	name := reg.Host + "/secure/busybox:1"
	tag(t, root, plain.Host+"/library/busybox", name)
	if _, errs, code := berth(t, root, "push", name); code != 1 {
		t.Fatalf("push before login: exit %d: %s", code, errs)
	}

	_, errs, code := berth(t, root, "login", "-u", reg.Username, "-p", "wrong", reg.Host)
	if code != 1 || !strings.Contains(errs, "401 Unauthorized") {
		t.Errorf("login with a wrong password: exit %d: %s", code, errs)
	}
	if _, ok := authsOf(t, cfgDir)[reg.Host]; ok {
		t.Errorf("failed login stored credentials")
	}

	out, errs, code := berth(t, root, "login", "-u", reg.Username, "-p", reg.Password, "https://"+reg.Host)
	if code != 0 || out != "Login Succeeded\n" {
		t.Fatalf("login: exit %d: %q %s", code, out, errs)
	}
	for _, want := range []string{"WARNING! Using --password via the CLI is insecure", "WARNING! Your credentials are stored unencrypted in '" + filepath.Join(cfgDir, "config.json") + "'"} {
		if !strings.Contains(errs, want) {
			t.Errorf("login stderr lacks %q: %s", want, errs)
		}
	}
	wantAuth := base64.StdEncoding.EncodeToString([]byte(reg.Username + ":" + reg.Password))
	if got := authsOf(t, cfgDir)[reg.Host].Auth; got != wantAuth {
		t.Errorf("config.json auth for %s = %q, want %q", reg.Host, got, wantAuth)
	}

	out, errs, code = berth(t, root, "push", name)
	if code != 0 || !strings.Contains(out, "1: digest: sha256:") {
		t.Fatalf("push after login: exit %d: %s\n%s", code, errs, out)
	}
	fresh := t.TempDir()
	if _, errs, code := berth(t, fresh, "pull", "-q", name); code != 0 {
		t.Fatalf("pull back over TLS: %s", errs)
	}
	if a, b := imageID(t, root, name), imageID(t, fresh, name); a != b {
		t.Errorf("pulled back ID %s, pushed %s", b, a)
	}

	out, _, code = berth(t, root, "logout", reg.Host)
	if code != 0 || out != "Removing login credentials for "+reg.Host+"\n" {
		t.Errorf("logout: exit %d: %q", code, out)
	}
	if _, ok := authsOf(t, cfgDir)[reg.Host]; ok {
		t.Errorf("logout left the credentials")
	}
	if _, _, code := berth(t, t.TempDir(), "pull", "-q", name); code != 1 {
		t.Errorf("pull after logout: exit %d, want 1", code)
	}
	out, _, code = berth(t, root, "logout", reg.Host)
	if code != 0 || out != "Not logged in to "+reg.Host+"\n" {
		t.Errorf("second logout: exit %d: %q", code, out)
	}
	if _, errs, code := berth(t, root, "login", reg.Host); code != 1 || !strings.Contains(errs, "non TTY") {
		t.Errorf("login without credentials: exit %d: %s", code, errs)
	}
}

func TestLoginCredsStore(t *testing.T) {
	testenv.RequiresRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{TLS: true, Auth: testenv.AuthBasic})
	cfgDir, bin := t.TempDir(), t.TempDir()
	t.Setenv("DOCKER_CONFIG", cfgDir)
	t.Setenv(CertsDirEnv, reg.CertsDir)
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	// A credential helper that records what docker's protocol sends it.
	script := "#!/bin/sh\ncat > " + bin + "/$1.in\n"
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-berthtest"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(`{"credsStore":"berthtest"}`), 0o600)
	out, errs, code := berth(t, t.TempDir(), "login", "-u", reg.Username, "-p", reg.Password, reg.Host)
	if code != 0 || out != "Login Succeeded\n" || strings.Contains(errs, "unencrypted") {
		t.Fatalf("login: exit %d: %q %s", code, out, errs)
	}
	stored, _ := os.ReadFile(filepath.Join(bin, "store.in"))
	if !strings.Contains(string(stored), `"Secret":"`+reg.Password+`"`) || !strings.Contains(string(stored), reg.Host) {
		t.Errorf("helper store got %s", stored)
	}
	if a := authsOf(t, cfgDir)[reg.Host].Auth; a != "" {
		t.Errorf("config.json holds the password with a credsStore: %q", a)
	}
	if _, errs, code := berth(t, t.TempDir(), "logout", reg.Host); code != 0 {
		t.Fatalf("logout: %s", errs)
	}
	if erased, _ := os.ReadFile(filepath.Join(bin, "erase.in")); strings.TrimSpace(string(erased)) != reg.Host {
		t.Errorf("helper erase got %q", erased)
	}
}
