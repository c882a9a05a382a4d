package volume

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/errdefs"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := New(filepath.Join(t.TempDir(), "volumes"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// entries lists the store's directory, hidden entries included.
func entries(t *testing.T, s *Store) []string {
	t.Helper()
	es, err := os.ReadDir(s.Dir())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestCreateGetListRemove(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	before := time.Now().Add(-time.Second)
	v, err := s.Create(ctx, "data", CreateOptions{Labels: map[string]string{"a": "b"}, Options: map[string]string{}})
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(s.Dir(), "data", "_data")
	if v.Name != "data" || v.Driver != "local" || v.Scope != "local" || v.Mountpoint != want || v.Anonymous ||
		v.Labels["a"] != "b" || v.Options == nil || len(v.Options) != 0 || v.CreatedAt.Before(before) || v.CreatedAt.After(time.Now()) {
		t.Errorf("Create = %+v", v)
	}
	if fi, err := os.Stat(want); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o755 {
		t.Errorf("_data: %v %v", fi, err)
	}
	if _, err := s.Create(ctx, "other", CreateOptions{Driver: "local"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "data")
	if err != nil {
		t.Fatal(err)
	}
	if !got.CreatedAt.Equal(v.CreatedAt) || got.Mountpoint != want || got.Labels["a"] != "b" || got.Options == nil {
		t.Errorf("Get = %+v, want %+v", got, v)
	}
	ls, err := s.List(ctx)
	if err != nil || len(ls) != 2 || ls[0].Name != "data" || ls[1].Name != "other" || ls[1].Labels != nil {
		t.Fatalf("List = %+v, %v", ls, err)
	}
	if err := s.Remove(ctx, "data"); err != nil {
		t.Fatal(err)
	}
	_, err = s.Get(ctx, "data")
	if !errdefs.IsNotFound(err) || err.Error() != "get data: no such volume" {
		t.Errorf("Get after Remove: %v", err)
	}
	if err := s.Remove(ctx, "data"); !errdefs.IsNotFound(err) || err.Error() != "get data: no such volume" {
		t.Errorf("second Remove: %v", err)
	}
	if got := strings.Join(entries(t, s), " "); got != "other" {
		t.Errorf("store holds %q after Remove, want only other", got)
	}
}

func TestCreateAnonymous(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	a, err := s.Create(ctx, "", CreateOptions{Labels: map[string]string{"x": "y"}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Create(ctx, "", CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	hex64 := regexp.MustCompile(`^[0-9a-f]{64}$`)
	for _, v := range []Volume{a, b} {
		l, ok := v.Labels[AnonymousLabel]
		if !hex64.MatchString(v.Name) || !ok || l != "" || !v.Anonymous {
			t.Errorf("anonymous volume %+v", v)
		}
	}
	if a.Name == b.Name || a.Labels["x"] != "y" {
		t.Errorf("anonymous volumes %s and %s (labels %v)", a.Name, b.Name, a.Labels)
	}
	got, err := s.Get(ctx, a.Name)
	if err != nil || !got.Anonymous || got.Labels["x"] != "y" {
		t.Errorf("Get anonymous = %+v, %v", got, err)
	}
	named, _ := s.Create(ctx, "named", CreateOptions{})
	if named.Anonymous {
		t.Errorf("named volume is anonymous")
	}
}

func TestCreateInvalid(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	chars := `" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`
	tests := []struct {
		name    string
		o       CreateOptions
		want    string
		isClass func(error) bool
	}{
		{"a", CreateOptions{}, "create a: volume name is too short, names should be at least two alphanumeric characters", errdefs.IsInvalidArgument},
		{"../x", CreateOptions{}, `create ../x: "../x` + chars, errdefs.IsInvalidArgument},
		{"/abs/path", CreateOptions{}, `create /abs/path: "/abs/path` + chars, errdefs.IsInvalidArgument},
		{".hidden", CreateOptions{}, `create .hidden: ".hidden` + chars, errdefs.IsInvalidArgument},
		{"-dash", CreateOptions{}, `create -dash: "-dash` + chars, errdefs.IsInvalidArgument},
		{"a b", CreateOptions{}, `create a b: "a b` + chars, errdefs.IsInvalidArgument},
		{"ok", CreateOptions{Driver: "foo"}, `create ok: error looking up volume plugin foo: plugin "foo" not found`, errdefs.IsNotFound},
		{"ok", CreateOptions{Options: map[string]string{"bogus": "1"}}, `create ok: invalid option: "bogus"`, errdefs.IsInvalidArgument},
		{"ok", CreateOptions{Options: map[string]string{"type": "tmpfs"}}, `create ok: missing required option: "device"`, errdefs.IsInvalidArgument},
		{"ok", CreateOptions{Options: map[string]string{"device": "tmpfs"}}, `create ok: missing required option: "type"`, errdefs.IsInvalidArgument},
		{"ok", CreateOptions{Options: map[string]string{"o": "size=1m"}}, `create ok: missing required option: "device"`, errdefs.IsInvalidArgument},
		{"ok", CreateOptions{Options: map[string]string{"size": "1g"}}, `create ok: quota size requested but no quota support`, errdefs.IsInvalidArgument},
	}
	for _, tt := range tests {
		_, err := s.Create(ctx, tt.name, tt.o)
		if err == nil || err.Error() != tt.want || !tt.isClass(err) {
			t.Errorf("Create(%q, %+v) = %v, want %q", tt.name, tt.o, err, tt.want)
		}
	}
	if es := entries(t, s); len(es) != 0 {
		t.Errorf("failed creates left %v", es)
	}
	for _, name := range []string{"../x", "a", "", "x/y", "/etc"} {
		if _, err := s.Get(ctx, name); !errdefs.IsNotFound(err) {
			t.Errorf("Get(%q) = %v, want not found", name, err)
		}
	}
}

func TestCreateIdempotent(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	first, err := s.Create(ctx, "same", CreateOptions{Labels: map[string]string{"v": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(first.Mountpoint, "keep"), []byte("x"), 0o644)
	again, err := s.Create(ctx, "same", CreateOptions{Labels: map[string]string{"v": "2"}, Driver: "local"})
	if err != nil {
		t.Fatal(err)
	}
	if again.Labels["v"] != "1" || !again.CreatedAt.Equal(first.CreatedAt) {
		t.Errorf("second Create = %+v, want the first volume unchanged", again)
	}
	if _, err := os.Stat(filepath.Join(first.Mountpoint, "keep")); err != nil {
		t.Errorf("second Create touched the data: %v", err)
	}

	// Racing creators all get the one volume that won.
	var wg sync.WaitGroup
	got := make([]Volume, 16)
	errs := make([]error, 16)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = s.Create(ctx, "raced", CreateOptions{Labels: map[string]string{"i": string(rune('a' + i))}})
		}()
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil || !got[i].CreatedAt.Equal(got[0].CreatedAt) || got[i].Labels["i"] != got[0].Labels["i"] {
			t.Errorf("racer %d: %+v %v; racer 0: %+v", i, got[i], errs[i], got[0])
		}
	}
	if es := strings.Join(entries(t, s), " "); es != "raced same" {
		t.Errorf("store holds %q after the race", es)
	}
}

func TestMetadata(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	v, err := s.Create(ctx, "meta", CreateOptions{Labels: map[string]string{"k": "v"}, Options: map[string]string{"type": "tmpfs", "device": "tmpfs"}})
	if err != nil {
		t.Fatal(err)
	}
	vdir := filepath.Join(s.Dir(), "meta")
	es, _ := os.ReadDir(vdir)
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "_data lock volume.json" {
		t.Errorf("volume directory holds %v", names)
	}
	var rec record
	data, _ := os.ReadFile(filepath.Join(vdir, "volume.json"))
	if err := json.Unmarshal(data, &rec); err != nil || rec.Name != "meta" || rec.Options["type"] != "tmpfs" || rec.Labels["k"] != "v" {
		t.Errorf("volume.json = %s (%v)", data, err)
	}
	if fi, _ := os.Stat(filepath.Join(vdir, "volume.json")); fi.Mode().Perm() != 0o600 {
		t.Errorf("volume.json mode %v", fi.Mode())
	}

	// Leftovers of killed processes: a stale temporary volume and a
	// half-removed one go on the next List; a fresh temporary one (a
	// create in progress elsewhere) stays.
	stale := filepath.Join(s.Dir(), ".tmp-1234")
	fresh := filepath.Join(s.Dir(), ".tmp-5678")
	trash := filepath.Join(s.Dir(), ".trash-abcd")
	for _, d := range []string{stale, fresh, trash} {
		os.MkdirAll(filepath.Join(d, "_data"), 0o755)
	}
	old := time.Now().Add(-2 * time.Hour)
	os.Chtimes(stale, old, old)
	// A directory that is not a volume, and a broken record.
	os.MkdirAll(filepath.Join(s.Dir(), "novolume", "_data"), 0o755)
	os.MkdirAll(filepath.Join(s.Dir(), "broken", "_data"), 0o755)
	os.WriteFile(filepath.Join(s.Dir(), "broken", "volume.json"), []byte("{not json"), 0o600)
	if _, err := s.Get(ctx, "broken"); err == nil || errdefs.IsNotFound(err) || !strings.HasPrefix(err.Error(), "get broken: volume.json: ") {
		t.Errorf("Get of a broken record: %v", err)
	}
	os.Remove(filepath.Join(s.Dir(), "broken", "volume.json"))
	ls, err := s.List(ctx)
	if err != nil || len(ls) != 1 || ls[0].Name != v.Name {
		t.Errorf("List = %+v, %v", ls, err)
	}
	if got := strings.Join(entries(t, s), " "); got != ".tmp-5678 broken meta novolume" {
		t.Errorf("after List the store holds %q", got)
	}
}

func TestVolumeJSON(t *testing.T) {
	created := time.Date(2024, 1, 2, 3, 4, 5, 999, time.UTC)
	v := Volume{CreatedAt: created, Driver: "local", Mountpoint: "/var/lib/berth/volumes/x/_data", Name: "x", Scope: "local", Options: map[string]string{}}
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"CreatedAt":"` + created.Local().Format(time.RFC3339) + `","Driver":"local","Labels":null,"Mountpoint":"/var/lib/berth/volumes/x/_data","Name":"x","Options":{},"Scope":"local"}`
	if string(data) != want {
		t.Errorf("json:\n%s\nwant\n%s", data, want)
	}
	var back Volume
	if err := json.Unmarshal(data, &back); err != nil || !back.CreatedAt.Equal(created.Truncate(time.Second)) || back.Name != "x" || back.Labels != nil || back.Options == nil {
		t.Errorf("round trip = %+v, %v", back, err)
	}
	anon := []byte(`{"Name":"y","Labels":{"com.docker.volume.anonymous":""}}`)
	if err := json.Unmarshal(anon, &back); err != nil || !back.Anonymous || !back.CreatedAt.IsZero() {
		t.Errorf("anonymous = %+v, %v", back, err)
	}
	if data, _ := json.Marshal(Volume{Name: "z"}); strings.Contains(string(data), "CreatedAt") {
		t.Errorf("zero CreatedAt shows: %s", data)
	}
	if err := json.Unmarshal([]byte(`{"CreatedAt":"yesterday"}`), &back); err == nil {
		t.Errorf("bad CreatedAt accepted")
	}
}

func TestSize(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	v, _ := s.Create(ctx, "sized", CreateOptions{})
	os.WriteFile(filepath.Join(v.Mountpoint, "a"), make([]byte, 100), 0o644)
	os.Mkdir(filepath.Join(v.Mountpoint, "d"), 0o755)
	os.WriteFile(filepath.Join(v.Mountpoint, "d", "b"), make([]byte, 200), 0o644)
	os.Link(filepath.Join(v.Mountpoint, "d", "b"), filepath.Join(v.Mountpoint, "b-link"))
	os.Symlink("/etc", filepath.Join(v.Mountpoint, "etc")) // not followed
	n, err := s.Size(ctx, "sized")
	want := int64(300 + len("/etc"))
	if err != nil || n != want {
		t.Errorf("Size = %d, %v; want %d", n, err, want)
	}
	if _, err := s.Size(ctx, "nosuch"); !errdefs.IsNotFound(err) {
		t.Errorf("Size of nothing: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Size(cctx, "sized"); !errors.Is(err, context.Canceled) {
		t.Errorf("Size with a cancelled context: %v", err)
	}
}
