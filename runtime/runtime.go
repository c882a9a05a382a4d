package runtime

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/runtime/cgroup"
)

// DefaultRoot is where container state lives unless --root says otherwise.
const DefaultRoot = "/run/berth-runtime"

// Runtime manages the containers whose state lives under Root.
type Runtime struct {
	Root          string
	SystemdCgroup bool // cgroupsPath is "slice:prefix:name"
	Log           *slog.Logger

	memo stateMemo // the state files this Runtime last wrote or read
}

// New returns a runtime keeping state under root, creating it if needed.
func New(root string, systemdCgroup bool, log *slog.Logger) (*Runtime, error) {
	if root == "" {
		root = DefaultRoot
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(root, 0o711); err != nil {
		return nil, fmt.Errorf("create state root: %w", err)
	}
	return &Runtime{Root: root, SystemdCgroup: systemdCgroup, Log: log}, nil
}

func (r *Runtime) cgroup(st *State) (cgroup.Manager, error) {
	if st.CgroupPath == "" {
		return nil, fmt.Errorf("container %s has no cgroup: %w", st.ID, errdefs.ErrNotFound)
	}
	return cgroup.New(st.CgroupPath)
}
