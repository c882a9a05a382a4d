package engine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/volume"
)

// volumes opens the volume store under Root/volumes. Opening is a mkdir,
// so each call opens it afresh rather than keeping it in the Engine.
func (e *Engine) volumes() (*volume.Store, error) {
	return volume.New(filepath.Join(e.root, "volumes"))
}

// VolumeCreate makes a volume, as `docker volume create`: an empty name
// makes an anonymous one, an existing name returns that volume.
func (e *Engine) VolumeCreate(ctx context.Context, name string, o volume.CreateOptions) (volume.Volume, error) {
	vols, err := e.volumes()
	if err != nil {
		return volume.Volume{}, err
	}
	return vols.Create(ctx, name, o)
}

// VolumeInspect returns the volumes called names, in order. A name that
// names no volume adds its error ("get x: no such volume") to the joined
// error returned beside the volumes that were found.
func (e *Engine) VolumeInspect(ctx context.Context, names ...string) ([]volume.Volume, error) {
	vols, err := e.volumes()
	if err != nil {
		return nil, err
	}
	var out []volume.Volume
	var errs []error
	for _, n := range names {
		v, err := vols.Get(ctx, n)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, v)
	}
	return out, errors.Join(errs...)
}

// volumeFilter is a parsed set of docker volume filters: every key's
// values are OR'ed (label's AND'ed, as docker's MatchKVList), the keys
// AND'ed.
type volumeFilter struct {
	names, drivers    []string
	labels, notLabels []string
	dangling          *bool
	all               *bool // prune only
}

// parseVolumeFilters reads "key=value" filters, accepting the keys docker
// accepts for `volume ls` (dangling, name, driver, label) or, with prune,
// for `volume prune` (label, label!, all).
func parseVolumeFilters(args []string, prune bool) (volumeFilter, error) {
	var f volumeFilter
	values := map[string][]string{}
	var keys []string
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return f, fmt.Errorf("bad format of filter (expected name=value): %w", errdefs.ErrInvalidArgument)
		}
		if _, seen := values[k]; !seen {
			keys = append(keys, k)
		}
		values[k] = append(values[k], v)
	}
	for _, k := range keys {
		vs := values[k]
		switch {
		case k == "name" && !prune:
			f.names = vs
		case k == "driver" && !prune:
			f.drivers = vs
		case k == "label":
			f.labels = vs
		case k == "label!" && prune:
			f.notLabels = vs
		case k == "dangling" && !prune:
			b, err := filterBool(k, vs)
			if err != nil {
				return f, err
			}
			f.dangling = &b
		case k == "all" && prune:
			if len(vs) > 1 {
				return f, errorfVolume(errdefs.ErrInvalidArgument, "invalid filter 'all=%s': only one value is expected", fmt.Sprint(vs))
			}
			b, err := strconv.ParseBool(vs[0])
			if err != nil {
				return f, errorfVolume(errdefs.ErrInvalidArgument, "invalid filter 'all': %v", err)
			}
			f.all = &b
		default:
			return f, errorfVolume(errdefs.ErrInvalidArgument, "invalid filter '%s'", k)
		}
	}
	return f, nil
}

// filterBool reads a boolean filter as docker's GetBoolOrDefault: true or
// 1, false or 0, and not both.
func filterBool(k string, vs []string) (bool, error) {
	var t, f bool
	for _, v := range vs {
		switch v {
		case "true", "1":
			t = true
		case "false", "0":
			f = true
		default:
			return false, errorfVolume(errdefs.ErrInvalidArgument, "invalid filter '%s=%s'", k, strings.Join(vs, ","))
		}
	}
	if t == f {
		return false, errorfVolume(errdefs.ErrInvalidArgument, "invalid filter '%s=%s'", k, strings.Join(vs, ","))
	}
	return t, nil
}

// matchKV is docker's MatchKVList: every "key" or "key=value" in want is
// among labels.
func matchKV(want []string, labels map[string]string) bool {
	for _, w := range want {
		k, v, hasValue := strings.Cut(w, "=")
		got, ok := labels[k]
		if !ok || (hasValue && got != v) {
			return false
		}
	}
	return true
}

// matchName is docker's filters.Match: equal, or a regular expression
// that matches somewhere in the name.
func matchName(patterns []string, name string) bool {
	for _, p := range patterns {
		if p == name {
			return true
		}
		if ok, err := regexp.MatchString(p, name); err == nil && ok {
			return true
		}
	}
	return false
}

// keep reports whether v passes f; users is how many containers use v
// (asked only when f needs it).
func (f volumeFilter) keep(v volume.Volume, users func() (int, error)) (bool, error) {
	if len(f.names) > 0 && !matchName(f.names, v.Name) {
		return false, nil
	}
	if len(f.drivers) > 0 && !containsString(f.drivers, v.Driver) {
		return false, nil
	}
	if len(f.labels) > 0 && !matchKV(f.labels, v.Labels) {
		return false, nil
	}
	if len(f.notLabels) > 0 && matchKV(f.notLabels, v.Labels) {
		return false, nil
	}
	if f.dangling != nil && users != nil {
		n, err := users()
		if err != nil {
			return false, err
		}
		if (n == 0) != *f.dangling {
			return false, nil
		}
	}
	return true, nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// VolumeList returns the volumes that pass docker's `volume ls` filters:
// "dangling=true|false" (used by no container, or by one), "name=<regexp
// or name>", "label=<key>[=<value>]", "driver=local".
func (e *Engine) VolumeList(ctx context.Context, filters []string) ([]volume.Volume, error) {
	f, err := parseVolumeFilters(filters, false)
	if err != nil {
		return nil, err
	}
	vols, err := e.volumes()
	if err != nil {
		return nil, err
	}
	all, err := vols.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []volume.Volume
	for _, v := range all {
		ok, err := f.keep(v, func() (int, error) {
			users, err := e.volumeUsers(ctx, v.Name)
			return len(users), err
		})
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, v)
		}
	}
	return out, nil
}

// VolumeRemove removes the volume called name unless a container uses it
// (docker's "volume is in use", which force does not override: force only
// makes a missing volume no error).
func (e *Engine) VolumeRemove(ctx context.Context, name string, force bool) error {
	vols, err := e.volumes()
	if err != nil {
		return err
	}
	if _, err := vols.Get(ctx, name); err != nil {
		if force && errdefs.IsNotFound(err) {
			return nil
		}
		return err
	}
	users, err := e.volumeUsers(ctx, name)
	if err != nil {
		return err
	}
	if len(users) > 0 {
		return errorfVolume(errdefs.ErrConflict, "remove %s: volume is in use - [%s]", name, strings.Join(users, ", "))
	}
	err = vols.Remove(ctx, name)
	if force && errdefs.IsNotFound(err) {
		return nil
	}
	return err
}

// VolumePrune removes the local volumes no container uses, as docker ≥ 23
// does: only anonymous ones unless all (or the filter all=true); the
// filters are "label=…", "label!=…" and "all=…". Volumes with type/device
// options are kept, as docker keeps them: their data is not on this disk.
// It returns the names removed and the bytes their data took.
func (e *Engine) VolumePrune(ctx context.Context, all bool, filters []string) ([]string, uint64, error) {
	f, err := parseVolumeFilters(filters, true)
	if err != nil {
		return nil, 0, err
	}
	if f.all != nil {
		all = all || *f.all
	}
	if !all {
		f.labels = append(f.labels, volume.AnonymousLabel)
	}
	vols, err := e.volumes()
	if err != nil {
		return nil, 0, err
	}
	list, err := vols.List(ctx)
	if err != nil {
		return nil, 0, err
	}
	var removed []string
	var reclaimed uint64
	for _, v := range list {
		if err := ctx.Err(); err != nil {
			return removed, reclaimed, err
		}
		if v.Driver != volume.DefaultDriver || len(v.Options) > 0 {
			continue
		}
		if ok, _ := f.keep(v, nil); !ok {
			continue
		}
		users, err := e.volumeUsers(ctx, v.Name)
		if err != nil {
			return removed, reclaimed, err
		}
		if len(users) > 0 {
			continue
		}
		size, err := vols.Size(ctx, v.Name)
		if err != nil {
			e.log.WarnContext(ctx, "could not determine size of volume", "volume", v.Name, "err", err)
		}
		if err := vols.Remove(ctx, v.Name); err != nil {
			e.log.WarnContext(ctx, "could not remove volume", "volume", v.Name, "err", err)
			continue
		}
		removed = append(removed, v.Name)
		reclaimed += uint64(max(size, 0))
	}
	return removed, reclaimed, nil
}

// volumeError is an error whose message is exactly docker's, classified
// by an errdefs sentinel that does not show in it.
type volumeError struct {
	msg   string
	class error
}

func (e *volumeError) Error() string { return e.msg }
func (e *volumeError) Unwrap() error { return e.class }

func errorfVolume(class error, format string, args ...any) error {
	return &volumeError{msg: fmt.Sprintf(format, args...), class: class}
}
