package cli

import (
	"strings"
	"testing"
)

// TestUsageErrors: mistakes in a command line get docker's words and exit
// codes: 125 for an unknown flag, 1 for wrong arguments or command.
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"pull"}, 1, "berth: 'berth pull' requires 1 argument\n\nUsage:  berth pull [OPTIONS] NAME[:TAG|@DIGEST]\n\nRun 'berth pull --help' for more information\n"},
		{[]string{"images", "a", "b"}, 1, "berth: 'berth images' requires at most 1 argument\n\nUsage:  berth images [OPTIONS] [REPOSITORY[:TAG]]\n\nRun 'berth images --help' for more information\n"},
		{[]string{"rmi"}, 1, "berth: 'berth rmi' requires at least 1 argument\n\nUsage:  berth rmi [OPTIONS] IMAGE [IMAGE...]\n\nSee 'berth rmi --help' for more information\n"},
		{[]string{"load", "x"}, 1, "berth: 'berth load' accepts no arguments\n\nUsage:  berth load [OPTIONS]\n\nRun 'berth load --help' for more information\n"},
		{[]string{"pull", "--nosuch", "x"}, 125, "unknown flag: --nosuch\n\nUsage:  berth pull [OPTIONS] NAME[:TAG|@DIGEST]\n\nRun 'berth pull --help' for more information\n"},
		{[]string{"nosuchcmd"}, 1, "berth: 'nosuchcmd' is not a berth command.\nSee 'berth --help'\n"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, errs, code := berth(t, t.TempDir(), tc.args...)
			if code != tc.code || !strings.HasPrefix(errs, tc.want) || strings.Contains(errs, "daemon") {
				t.Errorf("berth %v: exit %d, stderr %q; want exit %d, stderr starting %q", tc.args, code, errs, tc.code, tc.want)
			}
		})
	}
}
