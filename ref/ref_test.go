package ref_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/ref"
	"github.com/opencontainers/go-digest"
)

var (
	hex64 = strings.Repeat("a", 64)
	dgst  = "sha256:" + hex64
)

func TestParse(t *testing.T) {
	tests := []struct {
		in                   string
		want, familiar, repo string
		domain, path, tag    string
		digest               digest.Digest
		wantErr              string // substring of the error; "" means no error
	}{
		{in: "busybox", want: "docker.io/library/busybox:latest", familiar: "busybox:latest",
			repo: "docker.io/library/busybox", domain: "docker.io", path: "library/busybox", tag: "latest"},
		{in: "busybox:1.36", want: "docker.io/library/busybox:1.36", familiar: "busybox:1.36",
			repo: "docker.io/library/busybox", domain: "docker.io", path: "library/busybox", tag: "1.36"},
		{in: "user/app", want: "docker.io/user/app:latest", familiar: "user/app:latest",
			repo: "docker.io/user/app", domain: "docker.io", path: "user/app", tag: "latest"},
		{in: "docker.io/busybox", want: "docker.io/library/busybox:latest", familiar: "busybox:latest",
			repo: "docker.io/library/busybox", domain: "docker.io", path: "library/busybox", tag: "latest"},
		{in: "index.docker.io/library/busybox:x", want: "docker.io/library/busybox:x", familiar: "busybox:x",
			repo: "docker.io/library/busybox", domain: "docker.io", path: "library/busybox", tag: "x"},
		{in: "localhost:5000/x:1", want: "localhost:5000/x:1", familiar: "localhost:5000/x:1",
			repo: "localhost:5000/x", domain: "localhost:5000", path: "x", tag: "1"},
		{in: "localhost/x", want: "localhost/x:latest", familiar: "localhost/x:latest",
			repo: "localhost/x", domain: "localhost", path: "x", tag: "latest"},
		{in: "127.0.0.1:5000/a/b/c:v2", want: "127.0.0.1:5000/a/b/c:v2", familiar: "127.0.0.1:5000/a/b/c:v2",
			repo: "127.0.0.1:5000/a/b/c", domain: "127.0.0.1:5000", path: "a/b/c", tag: "v2"},
		{in: "[::1]:5000/x", want: "[::1]:5000/x:latest", familiar: "[::1]:5000/x:latest",
			repo: "[::1]:5000/x", domain: "[::1]:5000", path: "x", tag: "latest"},
		{in: "localhost:5000/a/b@" + dgst, want: "localhost:5000/a/b@" + dgst, familiar: "localhost:5000/a/b@" + dgst,
			repo: "localhost:5000/a/b", domain: "localhost:5000", path: "a/b", digest: digest.Digest(dgst)},
		{in: "busybox@" + dgst, want: "docker.io/library/busybox@" + dgst, familiar: "busybox@" + dgst,
			repo: "docker.io/library/busybox", domain: "docker.io", path: "library/busybox", digest: digest.Digest(dgst)},
		{in: "busybox:1@" + dgst, want: "docker.io/library/busybox:1@" + dgst, familiar: "busybox:1@" + dgst,
			repo: "docker.io/library/busybox", domain: "docker.io", path: "library/busybox", tag: "1", digest: digest.Digest(dgst)},
		{in: "ghcr.io/o/r:Tag_1.x-y", want: "ghcr.io/o/r:Tag_1.x-y", familiar: "ghcr.io/o/r:Tag_1.x-y",
			repo: "ghcr.io/o/r", domain: "ghcr.io", path: "o/r", tag: "Tag_1.x-y"},

		{in: "", wantErr: "invalid reference format"},
		{in: "UPPER", wantErr: "invalid reference format: repository name (library/UPPER) must be lowercase"},
		{in: "user/App:1", wantErr: "invalid reference format: repository name (user/App) must be lowercase"},
		{in: ":tag", wantErr: "invalid reference format"},
		{in: "busybox:", wantErr: "invalid reference format"},
		{in: "busybox@sha256:abc", wantErr: "invalid reference format"},
		{in: "busybox@sha256:" + strings.Repeat("a", 63), wantErr: "invalid checksum digest length"},
		{in: "busybox@sha256:" + strings.Repeat("A", 64), wantErr: "invalid checksum digest format"},
		{in: "busybox@md5:" + strings.Repeat("a", 32), wantErr: "unsupported digest algorithm"},
		{in: hex64, wantErr: "cannot specify 64-byte hexadecimal strings"},
		{in: "a//b", wantErr: "invalid reference format"},
		{in: "busybox:" + strings.Repeat("t", 129), wantErr: "invalid reference format"},
		{in: "-bad", wantErr: "invalid reference format"},
		{in: "busybox latest", wantErr: "invalid reference format"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ref.Parse(tt.in)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Parse(%q) = %q, want error %q", tt.in, got, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Parse(%q) error = %q, want it to contain %q", tt.in, err, tt.wantErr)
				}
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Errorf("Parse(%q) error %v does not wrap errdefs.ErrInvalidArgument", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			checks := []struct{ name, got, want string }{
				{"String", got.String(), tt.want},
				{"Familiar", got.Familiar(), tt.familiar},
				{"Repository", got.Repository(), tt.repo},
				{"Domain", got.Domain(), tt.domain},
				{"Path", got.Path(), tt.path},
				{"Tag", got.Tag(), tt.tag},
				{"Digest", got.Digest().String(), tt.digest.String()},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("Parse(%q).%s() = %q, want %q", tt.in, c.name, c.got, c.want)
				}
			}
			if got.IsDigested() != (tt.digest != "") {
				t.Errorf("Parse(%q).IsDigested() = %v", tt.in, got.IsDigested())
			}
			again, err := ref.Parse(got.Familiar())
			if err != nil || again != got {
				t.Errorf("Parse(Familiar()) = %v, %v; want %v", again, err, got)
			}
		})
	}
}

func TestExactDockerMessages(t *testing.T) {
	for in, want := range map[string]string{
		"":      "invalid reference format",
		"UPPER": "invalid reference format: repository name (library/UPPER) must be lowercase",
		"a:b:c": "invalid reference format",
	} {
		_, err := ref.Parse(in)
		if err == nil || err.Error() != want {
			t.Errorf("Parse(%q) error = %v, want exactly %q", in, err, want)
		}
	}
}

func TestWith(t *testing.T) {
	r := ref.MustParse("localhost:5000/x:1")
	tagged, err := r.WithTag("2")
	if err != nil || tagged.String() != "localhost:5000/x:2" {
		t.Errorf("WithTag(2) = %v, %v", tagged, err)
	}
	if r.Tag() != "1" {
		t.Errorf("WithTag modified its receiver: %v", r)
	}
	if _, err := r.WithTag("bad tag"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("WithTag(bad tag) error = %v, want ErrInvalidArgument", err)
	}
	d, err := r.WithDigest(digest.Digest(dgst))
	if err != nil || d.String() != "localhost:5000/x:1@"+dgst || !d.IsDigested() {
		t.Errorf("WithDigest = %v, %v", d, err)
	}
	if _, err := r.WithDigest("sha256:nothex"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("WithDigest(bad) error = %v, want ErrInvalidArgument", err)
	}
	if _, err := (ref.Reference{}).WithTag("x"); err == nil {
		t.Error("zero Reference WithTag: want error")
	}
	if got := ref.MustParse("user/app:1").FamiliarName(); got != "user/app" {
		t.Errorf("FamiliarName = %q", got)
	}
	if s := (ref.Reference{}).String(); s != "" {
		t.Errorf("zero String() = %q", s)
	}
}

func TestLooksLikeID(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"0123456789ab", true},
		{hex64, true},
		{"sha256:" + hex64, true},
		{"sha256:0123456789ab", true},
		{"0123456789a", false},  // too short
		{hex64 + "0", false},    // too long
		{"0123456789AB", false}, // upper case
		{"0123456789ag", false}, // not hex
		{"busybox", false},
		{"sha512:" + hex64, false},
		{"", false},
	}
	for _, tt := range tests {
		if got := ref.LooksLikeID(tt.in); got != tt.want {
			t.Errorf("LooksLikeID(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"busybox", "UPPER", "localhost:5000/a/b@" + dgst, "busybox:1@" + dgst,
		"[::1]:5000/x:y", "a/b/c/d:e", "docker.io/x", "index.docker.io/library/x", hex64, ":", "@", "a@b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ref.Parse(s)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("Parse(%q) error %v is not ErrInvalidArgument", s, err)
			}
			return
		}
		for _, form := range []string{r.String(), r.Familiar()} {
			again, err := ref.Parse(form)
			if err != nil {
				t.Fatalf("Parse(%q) = %q, but re-parsing %q fails: %v", s, r, form, err)
			}
			if again != r || again.String() != r.String() {
				t.Fatalf("Parse(%q) = %q, re-parse of %q = %q", s, r, form, again)
			}
		}
		if r.Tag() == "" && !r.IsDigested() {
			t.Fatalf("Parse(%q) = %q has neither tag nor digest", s, r)
		}
	})
}
