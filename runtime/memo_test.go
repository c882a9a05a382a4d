package runtime

import (
	"os"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestStateMemo: a Runtime reuses the state it decoded only while the
// file is the same; a state written by another process (another Runtime
// here) is read anew, and changing a loaded State changes nothing kept.
func TestStateMemo(t *testing.T) {
	root := t.TempDir()
	a, err := New(root, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(root, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(a.dir("c1"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := a.save(&State{ID: "c1", Pid: 1, Config: &specs.Spec{Hostname: "one"}}); err != nil {
		t.Fatal(err)
	}
	st, err := a.load("c1")
	if err != nil || st.Config.Hostname != "one" {
		t.Fatalf("load after save: %+v, %v", st, err)
	}
	st.Pid = 99 // a caller's change to its copy
	if st, _ := a.load("c1"); st.Pid != 1 {
		t.Fatalf("memo changed through a loaded copy: pid %d", st.Pid)
	}
	for i, host := range []string{"two", "three"} {
		if err := b.save(&State{ID: "c1", Pid: 2 + i, Config: &specs.Spec{Hostname: host}}); err != nil {
			t.Fatal(err)
		}
		st, err := a.load("c1")
		if err != nil || st.Config.Hostname != host || st.Pid != 2+i {
			t.Fatalf("round %d: a sees %+v, %v after b wrote %q", i, st, err, host)
		}
	}
	if err := os.Remove(b.dir("c1") + "/state.json"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.load("c1"); err == nil {
		t.Fatal("load of a removed state succeeded from the memo")
	}
}
