package berth_test

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/berth-dev/berth"

// layers places every package of the module on a level of DESIGN.md's
// picture. A package may import only packages on a lower level. A package
// missing from this table fails the test: place it before it lands.
var layers = map[string]int{
	// Error classes sit beneath everything.
	"errdefs": -1,
	// L0: values and storage shared by all.
	"mount": 0,
	"meta":  0,
	"ref":   0,
	// L1: kernel-facing pieces of the runtime and the store.
	"runtime/cgroup":  1,
	"runtime/seccomp": 1,
	"runtime/nsexec":  1,
	"content":         1,
	"archive":         1,
	// L2: the runtime and snapshots, built from the pieces below.
	"runtime":  2,
	"snapshot": 2,
	// L3: a test-only conformance suite, beside the subsystems.
	"snapshot/snapshottest": 3,
	// L3: one subsystem each.
	"spec": 3, "shim": 3, "image": 3, "registry": 3, "network": 3,
	"volume": 3, "logs": 3, "build": 3, "oci": 3, "events": 3,
	// L4: the one orchestrator.
	"engine": 4,
	// L5: translate requests.
	"cli": 5, "api": 5, "cri": 5, "compose": 5, "runtime/command": 5,
	// L6: wiring.
	"cmd/berth": 6,
	// Test-only helpers sit on top: only tests import them.
	"internal/testenv":       6,
	"bench":                  6,
	"bench/internal/mkimage": 6,
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
				t.Errorf("%s (L%d) imports %s (L%d): imports must point down", name, level, dep, dl)
			}
		}
	}
}
