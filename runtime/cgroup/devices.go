package cgroup

import (
	"math"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Device access bits, as the kernel's BPF_DEVCG_ACC_* constants.
const (
	accMknod = 1
	accRead  = 2
	accWrite = 4
	accAll   = accMknod | accRead | accWrite
)

// Device types, as the kernel's BPF_DEVCG_DEV_* constants; devAll matches
// both.
const (
	devAll   = 0
	devBlock = 1
	devChar  = 2
)

// deviceRule is a validated linux.resources.devices entry.
type deviceRule struct {
	allow  bool
	typ    int   // devAll, devBlock or devChar
	major  int64 // -1: any
	minor  int64 // -1: any
	access int   // accMknod|accRead|accWrite
}

// wildcard reports whether the rule matches every device.
func (r deviceRule) wildcard() bool {
	return r.typ == devAll && r.major == -1 && r.minor == -1
}

// parseDeviceRules validates the spec's device rules. An empty type is
// "a", an empty access is "rwm", a nil or negative major/minor is a
// wildcard; "u" (unbuffered char device) is "c".
func parseDeviceRules(in []specs.LinuxDeviceCgroup) ([]deviceRule, error) {
	out := make([]deviceRule, 0, len(in))
	for i, d := range in {
		r := deviceRule{allow: d.Allow, major: -1, minor: -1}
		switch d.Type {
		case "", "a":
			r.typ = devAll
		case "b":
			r.typ = devBlock
		case "c", "u":
			r.typ = devChar
		default:
			return nil, invalidf("device rule %d: type %q", i, d.Type)
		}
		for _, n := range []struct {
			p   *int64
			dst *int64
		}{{d.Major, &r.major}, {d.Minor, &r.minor}} {
			if n.p == nil || *n.p < 0 {
				continue
			}
			if *n.p > math.MaxInt32 {
				return nil, invalidf("device rule %d: number %d out of range", i, *n.p)
			}
			*n.dst = *n.p
		}
		access := d.Access
		if access == "" {
			access = "rwm"
		}
		for _, c := range access {
			switch c {
			case 'r':
				r.access |= accRead
			case 'w':
				r.access |= accWrite
			case 'm':
				r.access |= accMknod
			default:
				return nil, invalidf("device rule %d: access %q", i, d.Access)
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// v1Lines renders rules as (file, line) writes for v1's devices.allow and
// devices.deny, in order. A rule list starts from "deny everything", as on
// v2 (and as runc's device emulator starts), so unless the first rule
// matches every device with every access a "deny a" comes first. The
// kernel reads a type "a" line as "every device, every access" whatever
// follows it, so a rule of type "a" that is narrower than that is written
// as one "b" and one "c" line.
func v1Lines(rules []deviceRule) [][2]string {
	var out [][2]string
	if len(rules) > 0 && !(rules[0].wildcard() && rules[0].access == accAll) {
		out = append(out, [2]string{"devices.deny", "a"})
	}
	for _, r := range rules {
		out = append(out, ruleLines(r)...)
	}
	return out
}

// ruleLines renders one rule for v1 (see v1Lines).
func ruleLines(r deviceRule) [][2]string {
	file := "devices.deny"
	if r.allow {
		file = "devices.allow"
	}
	var acc strings.Builder
	for _, a := range []struct {
		bit int
		c   byte
	}{{accRead, 'r'}, {accWrite, 'w'}, {accMknod, 'm'}} {
		if r.access&a.bit != 0 {
			acc.WriteByte(a.c)
		}
	}
	major, minor := &r.major, &r.minor
	switch {
	case r.wildcard() && r.access == accAll:
		return [][2]string{{file, "a"}}
	case r.typ == devAll:
		return [][2]string{
			{file, deviceString("b", major, minor, acc.String())},
			{file, deviceString("c", major, minor, acc.String())},
		}
	case r.typ == devBlock:
		return [][2]string{{file, deviceString("b", major, minor, acc.String())}}
	default:
		return [][2]string{{file, deviceString("c", major, minor, acc.String())}}
	}
}

// allowListUnchanged reports whether the v1 devices.list text current
// already says what rules would write, for the usual shape of a rule list:
// deny everything, then allow entries. Rewriting such a list means a
// moment of "deny a" during which the container's processes cannot open
// their devices, so a runc update that repeats the rules skips it.
func allowListUnchanged(current string, rules []deviceRule) bool {
	if len(rules) == 0 || !rules[0].wildcard() || rules[0].access != accAll || rules[0].allow {
		return false
	}
	want := map[string]string{}
	for _, r := range rules[1:] {
		for _, l := range ruleLines(r) {
			if l[0] != "devices.allow" || l[1] == "a" {
				return false
			}
			addAccess(want, l[1])
		}
	}
	have := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(current), "\n") {
		if line != "" {
			addAccess(have, line)
		}
	}
	if len(have) != len(want) {
		return false
	}
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// addAccess merges a devices.list line ("c 1:3 rwm") into m, keyed by
// "c 1:3", as the kernel merges exceptions for the same device.
func addAccess(m map[string]string, line string) {
	f := strings.Fields(line)
	if len(f) != 3 {
		m[line] = "?"
		return
	}
	k := f[0] + " " + f[1]
	acc := m[k] + f[2]
	var norm strings.Builder
	for _, c := range "rwm" {
		if strings.ContainsRune(acc, c) {
			norm.WriteRune(c)
		}
	}
	m[k] = norm.String()
}
