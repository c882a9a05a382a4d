package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
)

// The flag value types of `berth run` and `berth create`. Each is the
// counterpart of a docker/cli opts type (ListOpts, MapOpts, MemBytes, …)
// and its Set returns docker's message, which pflag prints as
//
//	invalid argument "abc" for "-m, --memory" flag: invalid size: 'abc'

// listValue collects a repeatable flag's values, each checked (and
// possibly rewritten) by validate when it is not nil.
type listValue struct {
	values   []string
	validate func(string) (string, error)
}

func newList(validate func(string) (string, error)) *listValue {
	return &listValue{validate: validate}
}

func (l *listValue) Set(v string) error {
	if l.validate != nil {
		var err error
		if v, err = l.validate(v); err != nil {
			return err
		}
	}
	l.values = append(l.values, v)
	return nil
}

func (l *listValue) String() string {
	if len(l.values) == 0 {
		return ""
	}
	return fmt.Sprintf("%v", l.values)
}

func (*listValue) Type() string { return "list" }

// orEmpty is the values, never nil (docker sends DNS fields that way).
func (l *listValue) orEmpty() []string {
	if l.values == nil {
		return []string{}
	}
	return l.values
}

// mapValue collects KEY=VALUE flags into a map; a later key wins.
type mapValue struct {
	values   map[string]string
	validate func(string) (string, error)
}

func newMap(validate func(string) (string, error)) *mapValue {
	return &mapValue{values: map[string]string{}, validate: validate}
}

func (m *mapValue) Set(v string) error {
	if m.validate != nil {
		var err error
		if v, err = m.validate(v); err != nil {
			return err
		}
	}
	k, val, _ := strings.Cut(v, "=")
	m.values[k] = val
	return nil
}

func (m *mapValue) String() string { return fmt.Sprintf("%v", m.values) }
func (*mapValue) Type() string     { return "map" }

// memBytes is a size in bytes given in go-units' RAMInBytes syntax
// ("512m", "1g"); swap also takes -1, unlimited.
type memBytes struct {
	n    int64
	swap bool
}

func (m *memBytes) Set(v string) error {
	if m.swap && v == "-1" {
		m.n = -1
		return nil
	}
	n, err := units.RAMInBytes(v)
	m.n = n
	return err
}

func (m *memBytes) String() string {
	// pflag hides a default of "0" in the help text.
	if m.n == 0 {
		return "0"
	}
	return units.BytesSize(float64(m.n))
}

func (*memBytes) Type() string { return "bytes" }

// nanoCPUs is --cpus: a decimal number of CPUs kept in units of 1e-9.
type nanoCPUs int64

func (c *nanoCPUs) Set(v string) error {
	cpu, ok := new(big.Rat).SetString(v)
	if !ok {
		return fmt.Errorf("failed to parse %v as a rational number", v)
	}
	nano := cpu.Mul(cpu, big.NewRat(1e9, 1))
	if !nano.IsInt() {
		return errors.New("value is too precise")
	}
	if !nano.Num().IsInt64() {
		return fmt.Errorf("failed to parse %v as a rational number", v)
	}
	*c = nanoCPUs(nano.Num().Int64())
	return nil
}

func (c *nanoCPUs) String() string {
	if *c == 0 {
		return ""
	}
	return big.NewRat(int64(*c), 1e9).FloatString(3)
}

func (*nanoCPUs) Type() string { return "decimal" }

// ulimitValue is --ulimit name=soft[:hard], one entry per name.
type ulimitValue struct{ values map[string]*container.Ulimit }

func (u *ulimitValue) Set(v string) error {
	l, err := units.ParseUlimit(v)
	if err != nil {
		return err
	}
	if u.values == nil {
		u.values = map[string]*container.Ulimit{}
	}
	u.values[l.Name] = l
	return nil
}

func (u *ulimitValue) String() string {
	out := make([]string, 0, len(u.values))
	for _, l := range u.values {
		out = append(out, l.String())
	}
	slices.Sort(out)
	return fmt.Sprintf("%v", out)
}

func (*ulimitValue) Type() string { return "ulimit" }

// list is the ulimits sorted by name, as docker sends them.
func (u *ulimitValue) list() []*container.Ulimit {
	out := make([]*container.Ulimit, 0, len(u.values))
	for _, l := range u.values {
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b *container.Ulimit) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Validators, docker/cli's opts.Validate*.

// validateEnv takes KEY's value from berth's own environment when -e
// gives a bare KEY.
func validateEnv(v string) (string, error) {
	k, _, hasValue := strings.Cut(v, "=")
	if k == "" {
		return "", errors.New("invalid environment variable: " + v)
	}
	if hasValue {
		return v, nil
	}
	if val, ok := os.LookupEnv(k); ok {
		return k + "=" + val, nil
	}
	return v, nil
}

func validateLabel(v string) (string, error) {
	k, _, _ := strings.Cut(v, "=")
	k = strings.TrimLeft(k, " \t")
	if k == "" {
		return "", fmt.Errorf("invalid label '%s': empty name", v)
	}
	if strings.ContainsAny(k, " \t") {
		return "", fmt.Errorf("label '%s' contains whitespaces", k)
	}
	return v, nil
}

// validateSysctl allows the namespaced sysctls docker's client allows.
func validateSysctl(v string) (string, error) {
	k, _, ok := strings.Cut(v, "=")
	if ok && k != "" {
		switch {
		case strings.HasPrefix(k, "net."), strings.HasPrefix(k, "fs.mqueue."):
			return v, nil
		}
		switch k {
		case "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
			"kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced":
			return v, nil
		}
	}
	return "", fmt.Errorf("sysctl '%s' is not allowed", v)
}

func validateIP(v string) (string, error) {
	if ip := net.ParseIP(strings.TrimSpace(v)); ip != nil {
		return ip.String(), nil
	}
	return "", fmt.Errorf("IP address is not correctly formatted: %s", v)
}

var (
	alphaRE  = regexp.MustCompile(`[a-zA-Z]`)
	domainRE = regexp.MustCompile(`^(:?(:?[a-zA-Z0-9]|(:?[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9]))(:?\.(:?[a-zA-Z0-9]|(:?[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])))*)\.?\s*$`)
)

// validateDNSSearch checks a search domain; "." stands for none.
func validateDNSSearch(v string) (string, error) {
	if v = strings.Trim(v, " "); v == "." {
		return v, nil
	}
	if alphaRE.FindString(v) == "" {
		return "", fmt.Errorf("%s is not a valid domain", v)
	}
	if ns := domainRE.FindStringSubmatch(v); len(ns) > 0 && len(ns[1]) < 255 {
		return ns[1], nil
	}
	return "", fmt.Errorf("%s is not a valid domain", v)
}

// validateExtraHost checks host:ip or host=ip (ip may be in brackets, or
// "host-gateway") and returns it as host:ip, the form the API takes.
func validateExtraHost(v string) (string, error) {
	k, ip, ok := strings.Cut(v, "=")
	if !ok {
		k, ip, ok = strings.Cut(v, ":")
	}
	if !ok || k == "" || strings.Contains(k, ":") {
		return "", fmt.Errorf("bad format for add-host: %q", v)
	}
	if ip != "host-gateway" {
		if len(ip) > 2 && ip[0] == '[' && ip[len(ip)-1] == ']' {
			ip = ip[1 : len(ip)-1]
		}
		if _, err := validateIP(ip); err != nil {
			return "", fmt.Errorf("invalid IP address in add-host: %q", ip)
		}
	}
	return k + ":" + ip, nil
}

// validateLink checks name[:alias].
func validateLink(v string) (string, error) {
	if v == "" {
		return v, errors.New("empty string specified for links")
	}
	if strings.Count(v, ":") > 1 {
		return v, errors.New("bad format for links: " + v)
	}
	return v, nil
}

// validateAttach lower-cases a stream name of -a.
func validateAttach(v string) (string, error) {
	s := strings.ToLower(v)
	if s == "stdin" || s == "stdout" || s == "stderr" {
		return s, nil
	}
	return v, errors.New("valid streams are STDIN, STDOUT and STDERR")
}

var deviceCgroupRuleRE = regexp.MustCompile(`^[acb] ([0-9]+|\*):([0-9]+|\*) [rwm]{1,3}$`)

func validateDeviceCgroupRule(v string) (string, error) {
	if deviceCgroupRuleRE.MatchString(v) {
		return v, nil
	}
	return v, fmt.Errorf("invalid device cgroup format '%s'", v)
}

// validDeviceMode is a non-empty combination of r, w and m, each once.
func validDeviceMode(mode string) bool {
	if mode == "" {
		return false
	}
	seen := map[rune]bool{}
	for _, c := range mode {
		if (c != 'r' && c != 'w' && c != 'm') || seen[c] {
			return false
		}
		seen[c] = true
	}
	return true
}

// parseDevice turns --device host[:container][:mode] into a mapping,
// with docker's checks of the form (validateLinuxPath, parseLinuxDevice).
func parseDevice(v string) (container.DeviceMapping, error) {
	if strings.Count(v, ":") > 2 {
		return container.DeviceMapping{}, fmt.Errorf("bad format for path: %s", v)
	}
	parts := strings.Split(v, ":")
	if parts[0] == "" {
		return container.DeviceMapping{}, fmt.Errorf("bad format for path: %s", v)
	}
	// ctr is the container path as given, which the check names.
	ctr := parts[0]
	d := container.DeviceMapping{CgroupPermissions: "rwm"}
	switch len(parts) {
	case 1:
		d.PathOnHost = path.Clean(parts[0])
		d.PathInContainer = d.PathOnHost
	case 2:
		if validDeviceMode(parts[1]) {
			d.PathOnHost = path.Clean(parts[0])
			d.PathInContainer = d.PathOnHost
			d.CgroupPermissions = parts[1]
		} else {
			ctr = parts[1]
			d.PathOnHost = parts[0]
			d.PathInContainer = path.Clean(parts[1])
		}
	case 3:
		if !validDeviceMode(parts[2]) {
			return container.DeviceMapping{}, fmt.Errorf("bad mode specified: %s", parts[2])
		}
		ctr = parts[1]
		d.PathOnHost, d.PathInContainer, d.CgroupPermissions = parts[0], parts[1], parts[2]
	}
	if !path.IsAbs(ctr) {
		return container.DeviceMapping{}, fmt.Errorf("%s is not an absolute path", ctr)
	}
	return d, nil
}

// isCDIName reports whether a --device names a CDI device
// (vendor.com/class=name) rather than a path.
func isCDIName(v string) bool {
	kind, name, ok := strings.Cut(v, "=")
	if !ok || name == "" {
		return false
	}
	vendor, class, ok := strings.Cut(kind, "/")
	return ok && vendor != "" && class != "" && !strings.Contains(class, "/")
}

// readKVFiles reads KEY=VALUE lines from files as docker/cli's kvfile
// does: a BOM, leading blanks, empty lines and # comments are dropped; a
// bare KEY takes lookup's value, or is dropped without one.
func readKVFiles(files []string, lookup func(string) (string, bool)) ([]string, error) {
	var out []string
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		lines, err := parseKVLines(data, lookup)
		if err != nil {
			return nil, fmt.Errorf("invalid env file (%s): %v", name, err)
		}
		out = append(out, lines...)
	}
	return out, nil
}

func parseKVLines(data []byte, lookup func(string) (string, bool)) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		b := sc.Bytes()
		if !utf8.Valid(b) {
			return nil, fmt.Errorf("invalid utf8 bytes at line %d: %v", n, b)
		}
		if n == 1 {
			b = bytes.TrimPrefix(b, []byte{0xEF, 0xBB, 0xBF})
		}
		line := strings.TrimLeftFunc(string(b), unicode.IsSpace)
		if line == "" || line[0] == '#' {
			continue
		}
		key, _, hasValue := strings.Cut(line, "=")
		if key == "" {
			return nil, fmt.Errorf("no variable name on line '%s'", line)
		}
		if strings.ContainsAny(key, " \t") {
			return nil, fmt.Errorf("variable '%s' contains whitespaces", key)
		}
		if hasValue {
			out = append(out, line)
		} else if lookup != nil {
			if v, ok := lookup(line); ok {
				out = append(out, key+"="+v)
			}
		}
	}
	return out, sc.Err()
}

// parseRestartPolicy reads name[:max-retries] as docker/cli does, then
// checks it as Docker's daemon does (container.ValidateRestartPolicy).
func parseRestartPolicy(s string) (container.RestartPolicy, error) {
	if s == "" {
		return container.RestartPolicy{Name: container.RestartPolicyDisabled}, nil
	}
	name, count, ok := strings.Cut(s, ":")
	if ok && name == "" {
		return container.RestartPolicy{}, errors.New("invalid restart policy format: no policy provided before colon")
	}
	p := container.RestartPolicy{Name: container.RestartPolicyMode(name)}
	if count != "" {
		n, err := strconv.Atoi(count)
		if err != nil {
			return container.RestartPolicy{}, errors.New("invalid restart policy format: maximum retry count must be an integer")
		}
		p.MaximumRetryCount = n
	}
	if err := container.ValidateRestartPolicy(p); err != nil {
		return container.RestartPolicy{}, errors.New(err.Error())
	}
	return p, nil
}

// parseSecurityOpts checks each --security-opt and, as docker/cli does,
// replaces seccomp=FILE by the file's compacted JSON and takes
// systempaths=unconfined as empty masked and read-only path lists.
func parseSecurityOpts(opts []string) (out, masked, readonly []string, err error) {
	for _, opt := range opts {
		if opt == "systempaths=unconfined" {
			masked, readonly = []string{}, []string{}
			continue
		}
		k, v, ok := strings.Cut(opt, "=")
		if !ok && k != "no-new-privileges" {
			k, v, ok = strings.Cut(opt, ":")
		}
		if (!ok || v == "") && k != "no-new-privileges" {
			return nil, nil, nil, fmt.Errorf("invalid --security-opt: %q", opt)
		}
		if k == "seccomp" && v != "builtin" && v != "unconfined" {
			f, err := os.ReadFile(v)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("opening seccomp profile (%s) failed: %w", v, err)
			}
			var b bytes.Buffer
			if err := json.Compact(&b, f); err != nil {
				return nil, nil, nil, fmt.Errorf("compacting json for seccomp profile (%s) failed: %w", v, err)
			}
			opt = "seccomp=" + b.String()
		}
		out = append(out, opt)
	}
	return out, masked, readonly, nil
}

func toAddrs(ips []string) []netip.Addr {
	if len(ips) == 0 {
		return nil
	}
	out := make([]netip.Addr, 0, len(ips))
	for _, ip := range ips {
		if a, err := netip.ParseAddr(ip); err == nil {
			out = append(out, a)
		}
	}
	return out
}
