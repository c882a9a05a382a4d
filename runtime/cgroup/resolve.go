package cgroup

import (
	"path"
	"strings"
)

// Resolve turns a spec's linux.cgroupsPath into an absolute cgroup path
// (e.g. "/berth/abc").
//
//   - Empty: "/berth/<id>"; with systemd, "/system.slice/berth-<id>.scope".
//   - Absolute: the path, cleaned.
//   - Relative: joined to a base taken from this process's own cgroup, as
//     runc's fs drivers do. On a unified host the base is the parent of the
//     caller's cgroup (runc fs2: the caller's own cgroup usually has processes
//     in it, so controllers cannot be enabled for its children). On a v1 host
//     runc joins the path with the caller's cgroup in each hierarchy
//     separately; berth keeps one path for all hierarchies (so that a later
//     process, in another cgroup, finds the same directories), and uses the
//     caller's cgroup in the cgroup2 tree of a hybrid host, else in the
//     name=systemd hierarchy, else "/". ".." never climbs above the base.
//   - With systemd, "slice:prefix:name" becomes the path systemd would give
//     the unit: "/<expanded slice>/<prefix>-<name>.scope" (a name ending in
//     ".slice" is used as is). The slice expands the systemd way, so
//     "user-1000.slice" is "/user.slice/user-1000.slice"; an empty slice is
//     "system.slice" and "-.slice" is the root; a slice not ending in
//     ".slice" is taken as one directory ("slice:prefix:name" is
//     "/slice/prefix-name.scope"). No systemd call is made.
//     A plain path (no colon) is accepted and treated as above.
func Resolve(cgroupsPath, id string, systemd bool) (string, error) {
	return resolve(cgroupsPath, id, systemd, relativeBase)
}

// resolve is Resolve with the base for relative paths supplied by the
// caller (tests use a fixed one).
func resolve(cgroupsPath, id string, systemd bool, base func() (string, error)) (string, error) {
	if cgroupsPath == "" {
		if id == "" || strings.Contains(id, "/") || id == "." || id == ".." {
			return "", invalidf("container id %q cannot name a cgroup", id)
		}
		if systemd {
			return "/system.slice/berth-" + id + ".scope", nil
		}
		return "/berth/" + id, nil
	}
	if systemd && strings.Contains(cgroupsPath, ":") {
		return resolveSystemd(cgroupsPath)
	}
	if strings.ContainsRune(cgroupsPath, 0) {
		return "", invalidf("cgroup path %q contains a NUL byte", cgroupsPath)
	}
	if path.IsAbs(cgroupsPath) {
		return path.Clean(cgroupsPath), nil
	}
	b, err := base()
	if err != nil {
		return "", err
	}
	return path.Join(b, path.Clean("/"+cgroupsPath)), nil
}

// resolveSystemd expands "slice:prefix:name".
func resolveSystemd(p string) (string, error) {
	parts := strings.Split(p, ":")
	if len(parts) != 3 {
		return "", invalidf("systemd cgroup path %q is not slice:prefix:name", p)
	}
	slice, prefix, name := parts[0], parts[1], parts[2]
	if name == "" || strings.Contains(name, "/") || strings.Contains(prefix, "/") {
		return "", invalidf("systemd cgroup path %q has a bad unit name", p)
	}
	if slice == "" {
		slice = "system.slice"
	}
	dir, err := expandSlice(slice)
	if err != nil {
		return "", err
	}
	unit := name
	if !strings.HasSuffix(name, ".slice") {
		unit = name + ".scope"
		if prefix != "" {
			unit = prefix + "-" + unit
		}
	}
	return path.Join(dir, unit), nil
}

// expandSlice turns a systemd slice name into its cgroup path: each dash
// opens a child slice ("a-b.slice" is "/a.slice/a-b.slice"); "-.slice" is
// the root slice; a name without the ".slice" suffix is one directory.
func expandSlice(slice string) (string, error) {
	const suffix = ".slice"
	if slice == "-" || slice == "-"+suffix {
		return "/", nil
	}
	if strings.Contains(slice, "/") || slice == "." || slice == ".." {
		return "", invalidf("invalid systemd slice %q", slice)
	}
	base, ok := strings.CutSuffix(slice, suffix)
	if !ok {
		return "/" + slice, nil // not a slice unit name: one directory, as given
	}
	if base == "" {
		return "", invalidf("invalid systemd slice %q", slice)
	}
	var b strings.Builder
	prefix := ""
	for _, c := range strings.Split(base, "-") {
		if c == "" {
			return "", invalidf("invalid systemd slice %q", slice)
		}
		b.WriteString("/" + prefix + c + suffix)
		prefix += c + "-"
	}
	return b.String(), nil
}

// relativeBase returns the cgroup that relative paths are joined to on
// this host (see Resolve).
func relativeBase() (string, error) {
	own, err := ownCgroups()
	if err != nil {
		return "", err
	}
	t, err := hostMounts()
	if err != nil {
		return "", err
	}
	return baseFor(own, t.unified()), nil
}

// baseFor picks the base for relative paths from the caller's cgroups as
// /proc/self/cgroup lists them.
func baseFor(own map[string]string, unified bool) string {
	if p, ok := own[""]; ok && path.IsAbs(p) {
		if unified {
			return path.Dir(p)
		}
		return p
	}
	if p, ok := own["name=systemd"]; ok && path.IsAbs(p) {
		return p
	}
	return "/"
}
