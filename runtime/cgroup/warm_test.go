package cgroup

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestWarm: on a v1 host, a move into a fresh cgroup right after Warm
// does not wait out the RCU grace period a cold one waits for, and Warm
// leaves the caller where it was.
func TestWarm(t *testing.T) {
	requireRoot(t)
	tbl, err := hostMounts()
	if err != nil || tbl.unified() {
		t.Skip("v1 hierarchies only")
	}
	dir := warmDir(tbl)
	if dir == "" {
		t.Fatal("no v1 cgroup of our own found")
	}
	before, _ := os.ReadFile("/proc/self/cgroup")
	var cold, warm []time.Duration
	for i := 0; i < 6; i++ {
		m, err := New("/berth-test-warm-" + strconv.Itoa(os.Getpid()) + "-" + strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Create(nil); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Destroy() })
		time.Sleep(100 * time.Millisecond) // let any earlier writer's grace period pass
		stop := func() {}
		if i%2 == 1 {
			// Longer than the lock stays ready after one write.
			stop = Warm()
			time.Sleep(60 * time.Millisecond)
		}
		// A child to move: sleep, in our cgroups until moved.
		p, err := os.StartProcess("/bin/sleep", []string{"sleep", "5"}, &os.ProcAttr{})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		err = m.Apply(p.Pid)
		d := time.Since(start)
		stop()
		p.Kill()
		p.Wait()
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 1 {
			warm = append(warm, d)
		} else {
			cold = append(cold, d)
		}
	}
	after, _ := os.ReadFile("/proc/self/cgroup")
	if string(before) != string(after) {
		t.Fatalf("Warm moved the caller:\n%s\nnow\n%s", before, after)
	}
	t.Logf("Apply cold %v, after Warm %v (own cgroup %s)", cold, warm, filepath.Base(dir))
	// A cold move waits a grace period (milliseconds), a warmed one not:
	// compare the best of each so that one slow sample decides nothing.
	// Other processes moving tasks meanwhile (tests of other packages)
	// warm the lock for the cold moves too; then nothing can be told.
	if best(cold) < 3*time.Millisecond {
		t.Skipf("the cold moves were fast too (%v): the lock was warm from elsewhere", cold)
	}
	if best(warm) > best(cold)/2 {
		t.Fatalf("Apply after Warm took %v, cold %v", warm, cold)
	}
}

func best(ds []time.Duration) time.Duration {
	b := ds[0]
	for _, d := range ds[1:] {
		b = min(b, d)
	}
	return b
}
