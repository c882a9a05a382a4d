package berth_test

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/berth-dev/berth"

// layers places every package of the module on a level of DESIGN.md's
// picture, in tenths (25 is L2.5). A package may import only packages on
// a lower level. A package missing from this table fails the test: place
// it before it lands.
var layers = map[string]int{
	// Error classes sit beneath everything.
	"errdefs": -10,
	// L0: values and storage shared by all.
	"mount":      0,
	"meta":       0,
	"ref":        0,
	"linereader": 0,
	// L1: kernel-facing pieces of the runtime and the store.
	"runtime/cgroup":  10,
	"runtime/seccomp": 10,
	"runtime/nsexec":  10,
	"content":         10,
	"archive":         10,
	// L2: the runtime and snapshots, built from the pieces below.
	"runtime":  20,
	"snapshot": 20,
	// L3: a test-only conformance suite, beside the subsystems.
	"snapshot/snapshottest": 30,
	// L3: one subsystem each.
	"spec": 30, "shim": 30, "image": 30, "registry": 30, "network": 30,
	"volume": 30, "build": 30,
	// L2.5: what the shim builds on: the OCI runtime driver, the log
	// format it writes and the event log it appends to.
	"oci": 25, "logs": 25, "events": 25,
	// L2.5: the init --init puts at /sbin/docker-init (tini's job).
	"initproc": 25,
	// L4: the one orchestrator.
	"engine": 40,
	// L5: translate requests.
	"cli": 50, "api": 50, "cri": 50, "compose": 50, "runtime/command": 50,
	// L6: wiring.
	"cmd/berth": 60,
	// Test-only helpers sit on top: only tests import them.
	"internal/testenv":       60,
	"bench":                  60,
	"bench/internal/mkimage": 60,
	"tools":                  0,
}

type pkg struct {
	ImportPath string
	Imports    []string
	Name       string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var pkgs []pkg
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("decode go list: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func rel(path string) (string, bool) {
	if path == module {
		return "", true
	}
	r, ok := strings.CutPrefix(path, module+"/")
	return r, ok
}

// TestImportsPointDown keeps the arrows of DESIGN.md pointing down.
func TestImportsPointDown(t *testing.T) {
	for _, p := range listPackages(t) {
		name, _ := rel(p.ImportPath)
		if name == "" {
			continue // the root package holds only these tests
		}
		level, ok := layers[name]
		if !ok {
			t.Errorf("package %s has no layer in deps_test.go", name)
			continue
		}
		for _, imp := range p.Imports {
			dep, ours := rel(imp)
			if !ours {
				continue
			}
			dl, ok := layers[dep]
			if !ok {
				continue // reported on its own
			}
			if dl >= level && dep != "internal/testenv" {
				t.Errorf("%s (L%g) imports %s (L%g): imports must point down", name, float64(level)/10, dep, float64(dl)/10)
			}
		}
	}
}
