package spec

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// An account is one entry of /etc/passwd or /etc/group: name, id, and the
// primary gid and home (passwd) or member names (group).
type account struct {
	name    string
	id      uint32
	gid     uint32
	home    string
	members []string
}

// readAccounts parses a passwd (fields name:x:uid:gid:gecos:home:shell)
// or group (name:x:gid:members) file, skipping malformed lines as runc
// does. A missing file is empty.
func readAccounts(open func() (io.ReadCloser, error), passwd bool) ([]account, error) {
	f, err := open()
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []account
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		p := strings.Split(line, ":")
		if passwd && len(p) < 6 || len(p) < 3 {
			continue
		}
		id, err := strconv.ParseUint(p[2], 10, 31)
		if err != nil {
			continue
		}
		a := account{name: p[0], id: uint32(id)}
		if passwd {
			gid, err := strconv.ParseUint(p[3], 10, 31)
			if err != nil {
				continue
			}
			a.gid, a.home = uint32(gid), p[5]
		} else if len(p) > 3 && p[3] != "" {
			a.members = strings.Split(p[3], ",")
		}
		out = append(out, a)
	}
	return out, sc.Err()
}

// parseID parses a numeric uid or gid in Docker's range.
func parseID(s string) (uint32, bool) {
	n, err := strconv.ParseUint(s, 10, 31)
	return uint32(n), err == nil
}

// resolveUser turns a --user value and --group-add list into a process
// user, as runc's user.GetExecUser does for Docker, and returns the home
// directory for HOME.
func resolveUser(spec string, groupAdd []string, users Users) (specs.User, string, error) {
	var u specs.User
	home := "/"
	name, group, hasGroup := strings.Cut(spec, ":")
	var passwd, groups []account
	uid, uidNumeric := parseID(name)
	_, gidNumeric := parseID(group)
	if users != nil {
		var err error
		if passwd, err = readAccounts(users.Passwd, true); err != nil {
			return u, "", fmt.Errorf("read passwd: %w", err)
		}
		if groups, err = readAccounts(users.Group, false); err != nil {
			return u, "", fmt.Errorf("read group: %w", err)
		}
	} else if name != "" && !uidNumeric || hasGroup && !gidNumeric {
		return u, "", fmt.Errorf("no account files to resolve user %q: %w", spec, errdefs.ErrInvalidArgument)
	}
	if name == "" {
		name = "0"
		uidNumeric = true
	}
	matched := ""
	found := false
	for _, a := range passwd {
		if uidNumeric && a.id == uid || !uidNumeric && a.name == name {
			u.UID, u.GID, home, matched, found = a.id, a.gid, a.home, a.name, true
			break
		}
	}
	switch {
	case !found && !uidNumeric:
		return u, "", invalid("unable to find user %s: no matching entries in passwd file", name)
	case !found:
		u.UID = uid
	}
	if hasGroup {
		gid, err := lookupGroup(group, groups)
		if err != nil {
			return u, "", err
		}
		u.GID = gid
	} else if matched != "" {
		for _, g := range groups {
			for _, m := range g.members {
				if m == matched && g.id != u.GID {
					u.AdditionalGids = append(u.AdditionalGids, g.id)
				}
			}
		}
	}
	for _, g := range groupAdd {
		gid, err := lookupGroup(g, groups)
		if err != nil {
			return u, "", err
		}
		u.AdditionalGids = append(u.AdditionalGids, gid)
	}
	return u, home, nil
}

// lookupGroup resolves a group name or number against the group file; a
// number need not be listed.
func lookupGroup(g string, groups []account) (uint32, error) {
	gid, numeric := parseID(g)
	for _, a := range groups {
		if numeric && a.id == gid || !numeric && a.name == g {
			return a.id, nil
		}
	}
	if numeric {
		return gid, nil
	}
	return 0, invalid("unable to find group %s: no matching entries in group file", g)
}

// ExecUser resolves the --user of `exec` against the container's account
// files (users may be nil for a numeric uid[:gid]). It returns the user
// and its home directory.
func ExecUser(user string, users Users) (specs.User, string, error) {
	return resolveUser(user, nil, users)
}

// MergeEnv sets each KEY=VALUE of over in base, replacing a variable base
// already has: how `exec -e` adds to the container's environment.
func MergeEnv(base, over []string) []string { return mergeEnv(slices.Clone(base), over) }
