package engine

import (
	"testing"

	"github.com/berth-dev/berth/shim"
	"github.com/moby/moby/api/types/container"
)

func TestRestartOnBoot(t *testing.T) {
	for _, tc := range []struct {
		policy container.RestartPolicy
		st     shim.State
		want   bool
	}{
		{container.RestartPolicy{}, shim.State{ExitCode: 255}, false},
		{container.RestartPolicy{Name: "no"}, shim.State{ExitCode: 255}, false},
		{container.RestartPolicy{Name: "always"}, shim.State{ExitCode: 255}, true},
		{container.RestartPolicy{Name: "always"}, shim.State{ExitCode: 137, ManualStop: true}, true},
		{container.RestartPolicy{Name: "always"}, shim.State{ExitCode: 0}, true},
		{container.RestartPolicy{Name: "unless-stopped"}, shim.State{ExitCode: 255}, true},
		{container.RestartPolicy{Name: "unless-stopped"}, shim.State{ExitCode: 0}, true},
		{container.RestartPolicy{Name: "unless-stopped"}, shim.State{ExitCode: 143, ManualStop: true}, false},
		{container.RestartPolicy{Name: "on-failure"}, shim.State{ExitCode: 255, RestartCount: 40}, true},
		{container.RestartPolicy{Name: "on-failure"}, shim.State{ExitCode: 0}, false},
		{container.RestartPolicy{Name: "on-failure"}, shim.State{ExitCode: 137, ManualStop: true}, false},
		{container.RestartPolicy{Name: "on-failure", MaximumRetryCount: 3}, shim.State{ExitCode: 1, RestartCount: 2}, true},
		{container.RestartPolicy{Name: "on-failure", MaximumRetryCount: 3}, shim.State{ExitCode: 1, RestartCount: 3}, false},
	} {
		if got := restartOnBoot(tc.policy, tc.st); got != tc.want {
			t.Errorf("%+v %+v: %v, want %v", tc.policy, tc.st, got, tc.want)
		}
	}
}
