package engine

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/errdefs"
)

// ContainerPruneReport is what PruneContainers removed.
type ContainerPruneReport struct {
	Deleted []string // full IDs, in the order removed
	// SpaceReclaimed is the size of the removed containers' writable
	// layers.
	SpaceReclaimed uint64
}

// PruneContainers removes every container that is not running (created,
// exited) and that the filters select, as `docker container prune` does:
// "until=<timestamp|duration>" (created before), "label=<key>[=<value>]"
// and "label!=<key>[=<value>]". Its volumes stay. A container that cannot
// be removed (it started meanwhile) is skipped, as Docker skips it.
func (e *Engine) PruneContainers(ctx context.Context, filters []string) (ContainerPruneReport, error) {
	var rep ContainerPruneReport
	for _, f := range filters {
		k, _, _ := strings.Cut(f, "=")
		if k != "until" && k != "label" && k != "label!" && strings.Contains(f, "=") {
			return rep, errorf(errdefs.ErrInvalidArgument, "invalid filter '%s'", k)
		}
	}
	pf, err := parsePruneFilters(PruneOptions{All: true, Filters: filters}, time.Now())
	if err != nil {
		return rep, err
	}
	all, err := e.Containers(ctx)
	if err != nil {
		return rep, err
	}
	for _, c := range all {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		if c.Running() || !pf.until.IsZero() && c.Created.After(pf.until) {
			continue
		}
		if !matchLabels(c.Config.Labels, pf.labels, pf.notLabels) {
			continue
		}
		rw, _ := e.snapshots.Usage(ctx, c.Snapshot)
		if err := e.RemoveContainer(ctx, c.ID, RemoveOptions{}); err != nil {
			e.log.WarnContext(ctx, "prune container", "id", c.ID, "err", err)
			continue
		}
		rep.Deleted = append(rep.Deleted, c.ID)
		if rw > 0 {
			rep.SpaceReclaimed += uint64(rw)
		}
	}
	e.Event(ctx, "container", "prune", "", map[string]string{"reclaimed": strconv.FormatUint(rep.SpaceReclaimed, 10)})
	return rep, nil
}

// matchLabels reports whether labels have every one of want and none of
// notWant ("key" or "key=value").
func matchLabels(labels map[string]string, want, notWant []string) bool {
	for _, l := range want {
		if !matchLabel(labels, l) {
			return false
		}
	}
	for _, l := range notWant {
		if matchLabel(labels, l) {
			return false
		}
	}
	return true
}
