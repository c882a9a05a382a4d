package engine

import (
	"reflect"
	"testing"
)

func TestParsePS(t *testing.T) {
	// ps -e -o cmd,ppid,pid,wchan:14,args as moby's comment shows it:
	// commands with spaces in the first column, thread rows (ps -m) with
	// PID "-".
	out := `CMD                          PPID   PID WCHAN          COMMAND
/bin/bash /st 28808             1 15468 wait           /bin/bash /st 28808
redis-server *:28808        15468 15497 ep_poll        redis-server *:28808
-                               -     - -              -
sleep 100000                    1 29383 hrtimer_nanosl sleep 100000
-                               -     - -              -
/bin/sh /ocmd                   1 29402 wait           /bin/sh /ocmd
`
	top, err := parsePS([]byte(out), []int{15497, 29402})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"CMD", "PPID", "PID", "WCHAN", "COMMAND"}; !reflect.DeepEqual(top.Titles, want) {
		t.Fatalf("titles %q", top.Titles)
	}
	want := [][]string{
		{"redis-server *:28808", "15468", "15497", "ep_poll", "redis-server *:28808"},
		{"-", "-", "-", "-", "-"},
		{"/bin/sh /ocmd", "1", "29402", "wait", "/bin/sh /ocmd"},
	}
	if !reflect.DeepEqual(top.Processes, want) {
		t.Fatalf("processes %q\nwant %q", top.Processes, want)
	}
	for _, bad := range []string{"USER COMMAND\nroot sh\n", "PID CMD\nx sh\n", ""} {
		if _, err := parsePS([]byte(bad), []int{1}); err == nil {
			t.Errorf("parsePS(%q): no error", bad)
		}
	}
}

func TestValidatePSArgs(t *testing.T) {
	for args, ok := range map[string]bool{
		"-ef": true, "-o pid,args": true, "-o pid=PID": true, "-o user=PID": false, "aux -o comm=PIDX": false,
	} {
		if err := validatePSArgs(args); (err == nil) != ok {
			t.Errorf("validatePSArgs(%q) = %v", args, err)
		}
	}
	if got := psPidsArg([]int{1, 22, 333}); got != "-q1,22,333" {
		t.Errorf("psPidsArg = %q", got)
	}
}
