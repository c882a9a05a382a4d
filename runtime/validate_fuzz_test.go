package runtime

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoadBundle feeds config.json files to the parser and validator: any
// input gets a spec or an error, never a panic.
func FuzzLoadBundle(f *testing.F) {
	f.Add([]byte(`{"ociVersion":"1.0.2","process":{"args":["sh"],"cwd":"/"},"root":{"path":"rootfs"},"linux":{"namespaces":[{"type":"mount"}]}}`))
	f.Add([]byte(`{"process":{"args":[],"cwd":"rel"},"root":{"path":""}}`))
	f.Add([]byte(`{"linux":{"namespaces":[{"type":"bogus"},{"type":"mount","path":"/nonexistent"}],"devices":[{"path":"x","type":"q"}]}}`))
	f.Add([]byte(`{"process":{"args":["a"],"cwd":"/","rlimits":[{"type":"RLIMIT_NOFILE","soft":10,"hard":1}]},"root":{"path":"rootfs"},"linux":{"namespaces":[{"type":"mount"},{"type":"user"}],"personality":{"domain":"X"}}}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`[]`))
	dir := f.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "rootfs"), 0o755); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		s, bundle, rootfs, err := loadBundle(dir)
		if err != nil {
			if s != nil {
				t.Fatalf("loadBundle returned a spec with error %v", err)
			}
			return
		}
		// Whatever passed validation is complete enough to run.
		if s.Process == nil || len(s.Process.Args) == 0 || s.Linux == nil || s.Root == nil || bundle == "" || rootfs == "" {
			t.Fatalf("validated spec is incomplete: %+v", s)
		}
		if _, err := json.Marshal(s); err != nil {
			t.Fatalf("validated spec does not marshal: %v", err)
		}
	})
}
