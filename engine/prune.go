package engine

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/opencontainers/go-digest"
)

// PruneOptions select the images PruneImages removes, as the filters of
// `docker image prune` do.
type PruneOptions struct {
	// All removes every image no container uses; otherwise only dangling
	// images (no name: recorded under their ID) go.
	All bool
	// Filters are docker's prune filters: "until=<timestamp|duration>",
	// "label=<key>[=<value>]", "label!=<key>[=<value>]",
	// "dangling=true|false" (what All says otherwise).
	Filters []string
}

// PruneReport is what PruneImages removed, as docker reports it.
type PruneReport struct {
	Deleted []ImageDeleteItem // "untagged: …" and "deleted: sha256:…" lines, in order
	// SpaceReclaimed is the disk space freed in bytes: the layer snapshots
	// and blobs deleted, the image's and the garbage collector's.
	SpaceReclaimed int64
	GC             GCReport
}

// pruneFilter is the parsed PruneOptions.Filters.
type pruneFilter struct {
	until             time.Time
	labels, notLabels []string
	danglingOnly      bool
}

// parsePruneFilters checks the filters as docker's image prune does.
func parsePruneFilters(o PruneOptions, now time.Time) (pruneFilter, error) {
	f := pruneFilter{danglingOnly: !o.All}
	for _, s := range o.Filters {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return f, fmt.Errorf("bad format of filter (expected name=value): %w", errdefs.ErrInvalidArgument)
		}
		switch {
		case k == "until":
			t, err := parseTimestamp(v, now)
			if err != nil {
				return f, err
			}
			f.until = t
		case k == "label":
			f.labels = append(f.labels, v)
		case k == "label!":
			f.notLabels = append(f.notLabels, v)
		case k == "dangling":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return f, fmt.Errorf("invalid filter 'dangling=%s': %w", v, errdefs.ErrInvalidArgument)
			}
			f.danglingOnly = b
		default:
			return f, fmt.Errorf("invalid filter '%s': %w", k, errdefs.ErrInvalidArgument)
		}
	}
	return f, nil
}

// parseTimestamp reads docker's --filter until= value: a Go duration
// before now ("24h"), Unix seconds ("1700000000[.nanos]"), or an RFC 3339
// date or date-time, in UTC when it carries no zone.
func parseTimestamp(v string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(-d), nil
	}
	if sec, frac, _ := strings.Cut(v, "."); sec != "" {
		if s, err := strconv.ParseInt(sec, 10, 64); err == nil {
			ns := int64(0)
			if frac != "" {
				if ns, err = strconv.ParseInt((frac + "000000000")[:9], 10, 64); err != nil {
					return time.Time{}, fmt.Errorf("invalid timestamp %q: %w", v, errdefs.ErrInvalidArgument)
				}
			}
			return time.Unix(s, ns), nil
		}
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02T15", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("failed to parse value as time or duration: %q: %w", v, errdefs.ErrInvalidArgument)
}

// matchLabel reports whether labels have "key" or "key=value".
func matchLabel(labels map[string]string, want string) bool {
	k, v, hasValue := strings.Cut(want, "=")
	got, ok := labels[k]
	return ok && (!hasValue || got == v)
}

// match reports whether the image s passes the filter.
func (f pruneFilter) match(s ImageSummary) bool {
	if !f.until.IsZero() && !s.Created.Before(f.until) {
		return false
	}
	for _, l := range f.labels {
		if !matchLabel(s.Labels, l) {
			return false
		}
	}
	for _, l := range f.notLabels {
		if matchLabel(s.Labels, l) {
			return false
		}
	}
	return true
}

// PruneImages removes unused images as `docker image prune` does: the
// dangling ones, or with All every image no container uses, that the
// filters select; each as `rmi -f <ID>` would (untagging all its names).
// Then it collects garbage (GC) and reports the total space reclaimed.
func (e *Engine) PruneImages(ctx context.Context, o PruneOptions) (PruneReport, error) {
	var rep PruneReport
	f, err := parsePruneFilters(o, time.Now())
	if err != nil {
		return rep, err
	}
	all, err := e.ListImages(ctx)
	if err != nil {
		return rep, err
	}
	named := map[digest.Digest]bool{} // images with at least one name
	byID := map[digest.Digest]ImageSummary{}
	var order []digest.Digest
	for _, s := range all {
		if !Dangling(s.Record) {
			named[s.ID] = true
		}
		if _, ok := byID[s.ID]; !ok {
			order = append(order, s.ID)
			byID[s.ID] = s
		}
	}
	// Images whose records cannot be read (content lost) are not listed;
	// their dangling records go too, so that prune leaves no <none> behind.
	recs, err := e.records(ctx)
	if err != nil {
		return rep, err
	}
	for _, r := range recs {
		if _, ok := byID[r.Config]; !ok && Dangling(r) {
			order = append(order, r.Config)
			byID[r.Config] = ImageSummary{Record: r, ID: r.Config}
		}
	}
	used, err := e.usedImages(ctx)
	if err != nil {
		return rep, err
	}
	for _, id := range order {
		s := byID[id]
		if f.danglingOnly && named[id] {
			continue
		}
		if used[id] {
			continue // docker: "images without at least one container associated to them"
		}
		if !f.match(s) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		sizes := e.chainUsage(ctx, id)
		items, err := e.RemoveImage(ctx, id.String(), true)
		for _, it := range items {
			rep.SpaceReclaimed += sizes[it.Deleted]
		}
		rep.Deleted = append(rep.Deleted, items...)
		if err != nil && !errdefs.IsNotFound(err) && !errdefs.IsConflict(err) { // a container made since
			return rep, fmt.Errorf("prune %s: %w", shortID(id), err)
		}
	}
	gc, err := e.GC(ctx)
	rep.GC = gc
	rep.SpaceReclaimed += gc.Reclaimed
	return rep, err
}

// chainUsage is the disk usage of each of image id's layer snapshots, by
// chain ID, measured before they go.
func (e *Engine) chainUsage(ctx context.Context, id digest.Digest) map[digest.Digest]int64 {
	out := map[digest.Digest]int64{}
	recs, err := e.records(ctx)
	if err != nil {
		return out
	}
	for _, r := range recs {
		if r.Config != id {
			continue
		}
		img, err := e.ResolveImage(ctx, r)
		if err != nil {
			continue
		}
		for _, c := range img.ChainIDs {
			if u, err := e.snapshots.Usage(ctx, c.String()); err == nil {
				out[c] = u
			}
		}
		break
	}
	return out
}
