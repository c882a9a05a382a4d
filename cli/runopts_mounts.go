package cli

import (
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/mount"
)

// splitVolumes sorts -v values as docker's client does: one with a
// source ("/host:/ctr", "./rel:/ctr", "name:/ctr", with options) is a
// bind for HostConfig.Binds, a relative host path made absolute; one with
// a target only ("/ctr") is an anonymous volume for Config.Volumes. The
// daemon side (is the target absolute, are the options valid) is the
// engine's, with the daemon's messages.
func splitVolumes(specs []string) (binds []string, volumes map[string]struct{}, err error) {
	volumes = map[string]struct{}{}
	for _, v := range specs {
		volumes[v] = struct{}{}
	}
	for _, v := range specs {
		if _, ok := volumes[v]; !ok {
			continue // a duplicate of a bind already taken
		}
		spec, err := parseVolumeSpec(v)
		if err != nil {
			return nil, nil, err
		}
		if spec.source == "" {
			continue
		}
		bind := v
		if spec.bind {
			if host, target, ok := strings.Cut(v, ":"); ok {
				if !filepath.IsAbs(host) && strings.HasPrefix(host, ".") {
					if abs, err := filepath.Abs(host); err == nil {
						host = abs
					}
				}
				bind = host + ":" + target
			}
		}
		binds = append(binds, bind)
		delete(volumes, v)
	}
	return binds, volumes, nil
}

// volumeSpec is what docker/cli's volumespec.Parse makes of a -v value:
// its source, and whether that source is a host path.
type volumeSpec struct {
	source, target string
	bind           bool
}

// parseVolumeSpec splits [source:]target[:options] at colons, as
// docker/cli's volumespec.Parse does (a one-letter field followed by a
// colon is a Windows drive and stays joined to the next).
func parseVolumeSpec(spec string) (volumeSpec, error) {
	var v volumeSpec
	switch len(spec) {
	case 0:
		return v, errors.New("invalid empty volume spec")
	case 1, 2:
		v.target = spec
		return v, nil
	}
	const end = rune(0)
	var buf []rune
	for _, c := range spec + string(end) {
		switch {
		case c == ':' && len(buf) == 1 && unicode.IsLetter(buf[0]):
			buf = append(buf, c)
		case c == ':' || c == end:
			var err error
			switch field := string(buf); {
			case field == "":
				err = errors.New("empty section between colons")
			case v.source == "" && c == end:
				v.target = field
			case v.source == "":
				v.source = field
			case v.target == "":
				v.target = field
			case c == ':':
				err = errors.New("too many colons")
			}
			if err != nil {
				return v, fmt.Errorf("invalid spec: %s: %w", spec, err)
			}
			buf = buf[:0]
		default:
			buf = append(buf, c)
		}
	}
	v.bind = isFilePath(v.source)
	return v, nil
}

// isFilePath is volumespec's test of a source for a host path rather than
// a volume name.
func isFilePath(source string) bool {
	if source == "" {
		return false
	}
	switch source[0] {
	case '.', '/', '~':
		return true
	}
	r := []rune(source)
	if len(r) == 1 {
		return false
	}
	return strings.HasPrefix(source, `\\`) || (unicode.IsLetter(r[0]) && r[1] == ':')
}

// parseTmpfs maps each --tmpfs /path[:options] to its options.
func parseTmpfs(values []string) map[string]string {
	tmpfs := map[string]string{}
	for _, t := range values {
		k, v, _ := strings.Cut(t, ":")
		tmpfs[k] = v
	}
	return tmpfs
}

// mountValue is --mount, docker/cli's MountOpt: a CSV of key=value fields
// into one mount.Mount per flag.
type mountValue struct{ values []mount.Mount }

func (*mountValue) Type() string { return "mount" }

func (m *mountValue) String() string {
	out := make([]string, 0, len(m.values))
	for _, v := range m.values {
		out = append(out, fmt.Sprintf("%s %s %s", v.Type, v.Source, v.Target))
	}
	return strings.Join(out, ", ")
}

func (m *mountValue) Set(value string) error {
	value = strings.TrimSpace(value)
	if value == "" {
		return errors.New("value is empty")
	}
	fields, err := csv.NewReader(strings.NewReader(value)).Read()
	if err != nil {
		return err
	}
	mnt := mount.Mount{Type: mount.TypeVolume}
	for _, field := range fields {
		if err := setMountField(&mnt, field); err != nil {
			return err
		}
	}
	if err := validateMount(&mnt); err != nil {
		return err
	}
	m.values = append(m.values, mnt)
	return nil
}

// setMountField applies one key[=value] field of --mount.
func setMountField(mnt *mount.Mount, field string) error {
	key, val, hasValue := strings.Cut(field, "=")
	if k := strings.TrimSpace(key); k != key {
		return fmt.Errorf("invalid option '%s' in '%s': option should not have whitespace", k, field)
	}
	if hasValue {
		v := strings.TrimSpace(val)
		if v == "" {
			return fmt.Errorf("invalid value for '%s': value is empty", key)
		}
		if v != val {
			return fmt.Errorf("invalid value for '%s' in '%s': value should not have whitespace", key, field)
		}
	}
	key = strings.ToLower(key)
	if !hasValue && !slices.Contains([]string{"readonly", "ro", "volume-nocopy", "bind-nonrecursive", "bind-create-src"}, key) {
		return fmt.Errorf("invalid field '%s' must be a key=value pair", field)
	}
	var err error
	switch key {
	case "type":
		mnt.Type = mount.Type(strings.ToLower(val))
	case "source", "src":
		mnt.Source = val
		if !filepath.IsAbs(val) && strings.HasPrefix(val, ".") {
			if abs, err := filepath.Abs(val); err == nil {
				mnt.Source = abs
			}
		}
	case "target", "dst", "destination":
		mnt.Target = val
	case "readonly", "ro":
		mnt.ReadOnly, err = parseMountBool(key, val, hasValue)
	case "consistency":
		mnt.Consistency = mount.Consistency(strings.ToLower(val))
	case "bind-propagation":
		bindOptions(mnt).Propagation = mount.Propagation(strings.ToLower(val))
	case "bind-nonrecursive":
		return errors.New("bind-nonrecursive is deprecated, use bind-recursive=disabled instead")
	case "bind-recursive":
		switch val {
		case "enabled":
		case "disabled":
			bindOptions(mnt).NonRecursive = true
		case "writable":
			bindOptions(mnt).ReadOnlyNonRecursive = true
		case "readonly":
			bindOptions(mnt).ReadOnlyForceRecursive = true
		default:
			return fmt.Errorf(`invalid value for %s: %s (must be "enabled", "disabled", "writable", or "readonly")`, key, val)
		}
	case "bind-create-src":
		bindOptions(mnt).CreateMountpoint, err = parseMountBool(key, val, hasValue)
	case "volume-subpath":
		volumeOptions(mnt).Subpath = val
	case "volume-nocopy":
		volumeOptions(mnt).NoCopy, err = parseMountBool(key, val, hasValue)
	case "volume-label":
		o := volumeOptions(mnt)
		o.Labels = setKV(o.Labels, val)
	case "volume-driver":
		volumeDriver(mnt).Name = val
	case "volume-opt":
		d := volumeDriver(mnt)
		d.Options = setKV(d.Options, val)
	case "image-subpath":
		if mnt.ImageOptions == nil {
			mnt.ImageOptions = &mount.ImageOptions{}
		}
		mnt.ImageOptions.Subpath = val
	case "tmpfs-size":
		n, err := units.RAMInBytes(val)
		if err != nil {
			return fmt.Errorf("invalid value for %s: %s", key, val)
		}
		tmpfsOptions(mnt).SizeBytes = n
	case "tmpfs-mode":
		n, err := strconv.ParseUint(val, 8, 32)
		if err != nil {
			return fmt.Errorf("invalid value for %s: %s", key, val)
		}
		tmpfsOptions(mnt).Mode = os.FileMode(n)
	default:
		return fmt.Errorf("unknown option '%s' in '%s'", key, field)
	}
	return err
}

// validateMount is docker/cli's client-side check of a --mount: options
// only of its type, and the bind-recursive combinations.
func validateMount(m *mount.Mount) error {
	if m.Type == "" {
		return errors.New("type is required")
	}
	for _, o := range []struct {
		set    bool
		prefix string
		typ    mount.Type
	}{
		{m.BindOptions != nil, "bind", mount.TypeBind},
		{m.VolumeOptions != nil, "volume", mount.TypeVolume},
		{m.ImageOptions != nil, "image", mount.TypeImage},
		{m.TmpfsOptions != nil, "tmpfs", mount.TypeTmpfs},
	} {
		if o.set && m.Type != o.typ {
			return fmt.Errorf("cannot mix '%s-*' options with mount type '%s'", o.prefix, m.Type)
		}
	}
	if b := m.BindOptions; b != nil {
		if b.ReadOnlyNonRecursive && !m.ReadOnly {
			return errors.New("option 'bind-recursive=writable' requires 'readonly' to be specified in conjunction")
		}
		if b.ReadOnlyForceRecursive {
			if !m.ReadOnly {
				return errors.New("option 'bind-recursive=readonly' requires 'readonly' to be specified in conjunction")
			}
			if b.Propagation != mount.PropagationRPrivate {
				return errors.New("option 'bind-recursive=readonly' requires 'bind-propagation=rprivate' to be specified in conjunction")
			}
		}
	}
	return nil
}

// parseMountBool is a --mount boolean: bare is true, else 1/true/0/false.
func parseMountBool(key, val string, hasValue bool) (bool, error) {
	if !hasValue {
		return true, nil
	}
	switch val {
	case "1", "true":
		return true, nil
	case "0", "false":
		return false, nil
	}
	return false, fmt.Errorf(`invalid value for '%s': invalid boolean value (%q): must be one of "true", "1", "false", or "0" (default "true")`, key, val)
}

func bindOptions(m *mount.Mount) *mount.BindOptions {
	if m.BindOptions == nil {
		m.BindOptions = &mount.BindOptions{}
	}
	return m.BindOptions
}

func volumeOptions(m *mount.Mount) *mount.VolumeOptions {
	if m.VolumeOptions == nil {
		m.VolumeOptions = &mount.VolumeOptions{}
	}
	return m.VolumeOptions
}

func volumeDriver(m *mount.Mount) *mount.Driver {
	o := volumeOptions(m)
	if o.DriverConfig == nil {
		o.DriverConfig = &mount.Driver{}
	}
	return o.DriverConfig
}

func tmpfsOptions(m *mount.Mount) *mount.TmpfsOptions {
	if m.TmpfsOptions == nil {
		m.TmpfsOptions = &mount.TmpfsOptions{}
	}
	return m.TmpfsOptions
}

// setKV sets k=v of kv in m, making m if needed; an empty key is ignored.
func setKV(m map[string]string, kv string) map[string]string {
	k, v, _ := strings.Cut(kv, "=")
	if k == "" {
		return m
	}
	if m == nil {
		m = map[string]string{}
	}
	m[k] = v
	return m
}
