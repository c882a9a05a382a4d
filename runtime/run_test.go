package runtime_test

import (
	"strings"
	"testing"
)

func TestRunExitStatus(t *testing.T) {
	r := newRT(t)
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"true"}, 0, ""},
		{[]string{"false"}, 1, ""},
		{[]string{"sh", "-c", "echo hello; exit 42"}, 42, "hello\n"},
		{[]string{"sh", "-c", "sleep 100 & kill -9 $!; wait $!"}, 137, ""},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			res := r.runBundle(nil, tc.args...)
			if res.code != tc.code || res.stdout != tc.out {
				t.Errorf("run %v = exit %d, stdout %q (stderr %q); want exit %d, stdout %q", tc.args, res.code, res.stdout, res.stderr, tc.code, tc.out)
			}
		})
	}
	if out := r.must("list", "-q"); out != "" {
		t.Errorf("list after foreground runs = %q, want nothing", out)
	}
}
