package engine

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/volume"
)

func volumeEngine(t *testing.T) *Engine {
	t.Helper()
	e, err := New(Config{Root: t.TempDir(), RunRoot: t.TempDir(), StorageDriver: "vfs"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func volumeNames(vs []volume.Volume) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Name)
	}
	return out
}

func TestVolumeCreateInspect(t *testing.T) {
	ctx := context.Background()
	e := volumeEngine(t)
	v, err := e.VolumeCreate(ctx, "data", volume.CreateOptions{Labels: map[string]string{"k": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(e.root, "volumes", "data", "_data"); v.Mountpoint != want {
		t.Errorf("Mountpoint = %s, want %s", v.Mountpoint, want)
	}
	got, err := e.VolumeInspect(ctx, "data", "nosuch", "data", "other")
	if !slices.Equal(volumeNames(got), []string{"data", "data"}) || got[0].Labels["k"] != "v" {
		t.Errorf("VolumeInspect = %v", got)
	}
	if err == nil || err.Error() != "get nosuch: no such volume\nget other: no such volume" || !errdefs.IsNotFound(err) {
		t.Errorf("VolumeInspect error = %v", err)
	}
	if _, err := e.VolumeInspect(ctx, "data"); err != nil {
		t.Errorf("VolumeInspect of one that exists: %v", err)
	}
}

func TestVolumeListFilters(t *testing.T) {
	ctx := context.Background()
	e := volumeEngine(t)
	for _, c := range []struct {
		name   string
		labels map[string]string
	}{
		{"web-data", map[string]string{"app": "web", "tier": "front"}},
		{"web-logs", map[string]string{"app": "web"}},
		{"sql", map[string]string{"app": "db", "tier": "back"}},
		{"plain", nil},
	} {
		if _, err := e.VolumeCreate(ctx, c.name, volume.CreateOptions{Labels: c.labels}); err != nil {
			t.Fatal(err)
		}
	}
	anon, err := e.VolumeCreate(ctx, "", volume.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// No name filter below can match a random hex name: none has a
	// pattern made of hex digits only.
	all := []string{anon.Name, "plain", "sql", "web-data", "web-logs"}
	slices.Sort(all)
	tests := []struct {
		filters []string
		want    []string
	}{
		{nil, all},
		{[]string{"name=web"}, []string{"web-data", "web-logs"}},
		{[]string{"name=^sql$"}, []string{"sql"}},
		{[]string{"name=sq", "name=plain"}, []string{"plain", "sql"}},
		{[]string{"name=[invalid"}, nil},
		{[]string{"label=app"}, []string{"sql", "web-data", "web-logs"}},
		{[]string{"label=app=web"}, []string{"web-data", "web-logs"}},
		{[]string{"label=app=web", "label=tier"}, []string{"web-data"}},
		{[]string{"label=" + volume.AnonymousLabel}, []string{anon.Name}},
		{[]string{"driver=local", "name=plain"}, []string{"plain"}},
		{[]string{"driver=other"}, nil},
		{[]string{"dangling=true"}, all}, // no container uses any
		{[]string{"dangling=1", "dangling=true"}, all},
		{[]string{"dangling=false"}, nil},
		{[]string{"dangling=0", "name=web"}, nil},
	}
	for _, tt := range tests {
		got, err := e.VolumeList(ctx, tt.filters)
		if err != nil || !slices.Equal(volumeNames(got), tt.want) {
			t.Errorf("VolumeList(%q) = %v, %v; want %v", tt.filters, volumeNames(got), err, tt.want)
		}
	}
	for _, tt := range []struct {
		filters []string
		want    string
	}{
		{[]string{"dangling=maybe"}, "invalid filter 'dangling=maybe'"},
		{[]string{"dangling=true", "dangling=false"}, "invalid filter 'dangling=true,false'"},
		{[]string{"until=1h"}, "invalid filter 'until'"},
		{[]string{"label!=app"}, "invalid filter 'label!'"},
		{[]string{"all=true"}, "invalid filter 'all'"},
		{[]string{"nonsense"}, "bad format of filter (expected name=value): invalid argument"},
	} {
		_, err := e.VolumeList(ctx, tt.filters)
		if err == nil || err.Error() != tt.want || !errdefs.IsInvalidArgument(err) {
			t.Errorf("VolumeList(%q) error = %v, want %q", tt.filters, err, tt.want)
		}
	}
}

// TestVolumeFilterDangling checks the dangling filter against a count of
// users, which the container code provides.
func TestVolumeFilterDangling(t *testing.T) {
	v := volume.Volume{Name: "x", Driver: "local"}
	for _, tt := range []struct {
		filter string
		users  int
		want   bool
	}{
		{"dangling=true", 0, true}, {"dangling=true", 2, false},
		{"dangling=false", 0, false}, {"dangling=false", 1, true},
	} {
		f, err := parseVolumeFilters([]string{tt.filter}, false)
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.keep(v, func() (int, error) { return tt.users, nil })
		if err != nil || got != tt.want {
			t.Errorf("%s with %d users: keep = %v, %v", tt.filter, tt.users, got, err)
		}
	}
}

func TestVolumeRemove(t *testing.T) {
	ctx := context.Background()
	e := volumeEngine(t)
	v, err := e.VolumeCreate(ctx, "gone", volume.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(v.Mountpoint, "f"), []byte("x"), 0o644)
	if err := e.VolumeRemove(ctx, "gone", false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(v.Mountpoint)); !os.IsNotExist(err) {
		t.Errorf("volume directory left: %v", err)
	}
	err = e.VolumeRemove(ctx, "gone", false)
	if !errdefs.IsNotFound(err) || err.Error() != "get gone: no such volume" {
		t.Errorf("VolumeRemove of nothing: %v", err)
	}
	if err := e.VolumeRemove(ctx, "gone", true); err != nil {
		t.Errorf("VolumeRemove -f of nothing: %v", err)
	}
	if err := e.VolumeRemove(ctx, "../../etc", false); !errdefs.IsNotFound(err) {
		t.Errorf("VolumeRemove of a path: %v", err)
	}
}

func TestVolumePrune(t *testing.T) {
	ctx := context.Background()
	e := volumeEngine(t)
	mk := func(name string, o volume.CreateOptions) string {
		t.Helper()
		v, err := e.VolumeCreate(ctx, name, o)
		if err != nil {
			t.Fatal(err)
		}
		return v.Name
	}
	anon1 := mk("", volume.CreateOptions{Labels: map[string]string{"keep": "yes"}})
	anon2 := mk("", volume.CreateOptions{})
	mk("named", volume.CreateOptions{Labels: map[string]string{"team": "a"}})
	mk("named2", volume.CreateOptions{})
	mk("tmp", volume.CreateOptions{Options: map[string]string{"type": "tmpfs", "device": "tmpfs"}})
	v2, _ := e.VolumeInspect(ctx, anon2)
	os.WriteFile(filepath.Join(v2[0].Mountpoint, "data"), make([]byte, 1000), 0o644)

	for _, tt := range []struct {
		filters []string
		want    string
	}{
		{[]string{"all=maybe"}, `invalid filter 'all': strconv.ParseBool: parsing "maybe": invalid syntax`},
		{[]string{"all=1", "all=0"}, "invalid filter 'all=[1 0]': only one value is expected"},
		{[]string{"dangling=true"}, "invalid filter 'dangling'"},
		{[]string{"until=24h"}, "invalid filter 'until'"},
	} {
		if _, _, err := e.VolumePrune(ctx, false, tt.filters); err == nil || err.Error() != tt.want || !errdefs.IsInvalidArgument(err) {
			t.Errorf("VolumePrune(%q) error = %v, want %q", tt.filters, err, tt.want)
		}
	}

	// Anonymous volumes only, and of those the ones label! lets through.
	removed, reclaimed, err := e.VolumePrune(ctx, false, []string{"label!=keep"})
	if err != nil || !slices.Equal(removed, []string{anon2}) || reclaimed != 1000 {
		t.Errorf("prune label!=keep = %v, %d, %v", removed, reclaimed, err)
	}
	removed, reclaimed, err = e.VolumePrune(ctx, false, nil)
	if err != nil || !slices.Equal(removed, []string{anon1}) || reclaimed != 0 {
		t.Errorf("prune = %v, %d, %v", removed, reclaimed, err)
	}
	// all: named ones too, but never one with mount options.
	removed, _, err = e.VolumePrune(ctx, true, []string{"label=team=a"})
	if err != nil || !slices.Equal(removed, []string{"named"}) {
		t.Errorf("prune -a --filter label=team=a = %v, %v", removed, err)
	}
	removed, _, err = e.VolumePrune(ctx, false, []string{"all=true"})
	if err != nil || !slices.Equal(removed, []string{"named2"}) {
		t.Errorf("prune --filter all=true = %v, %v", removed, err)
	}
	left, _ := e.VolumeList(ctx, nil)
	if got := strings.Join(volumeNames(left), " "); got != "tmp" {
		t.Errorf("after prune: %s", got)
	}
}
