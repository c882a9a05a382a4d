package berth_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPackageDocs requires a doc comment on every package, in one of its
// non-test files, that starts with "Package <name>" (or "Berth" for main).
func TestPackageDocs(t *testing.T) {
	dirs := map[string]bool{}
	filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && path != "." {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			dirs[filepath.Dir(path)] = true
		}
		return nil
	})
	for dir := range dirs {
		if dir == "." {
			continue
		}
		fset := token.NewFileSet()
		pkgs, err := parser.ParseDir(fset, dir, func(fi os.FileInfo) bool {
			return !strings.HasSuffix(fi.Name(), "_test.go")
		}, parser.ParseComments|parser.PackageClauseOnly)
		if err != nil {
			t.Errorf("parse %s: %v", dir, err)
			continue
		}
		for name, p := range pkgs {
			found := false
			for _, f := range p.Files {
				if f.Doc == nil {
					continue
				}
				text := f.Doc.Text()
				if strings.HasPrefix(text, "Package "+name) || (name == "main" && text != "") {
					found = true
				}
			}
			if !found {
				t.Errorf("package %s (%s) has no doc comment starting \"Package %s\"", name, dir, name)
			}
		}
	}
}
