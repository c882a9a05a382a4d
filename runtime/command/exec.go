package command

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/runtime"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

type execFlags struct {
	process, consoleSocket, cwd, user, pidFile string
	apparmor, processLabel, cgroup             string
	env, caps, gids                            []string
	tty, detach, noNewPrivs, ignorePaused      bool
	preserveFDs                                int
}

func execCmd(g *globals) *cobra.Command {
	var e execFlags
	cmd := &cobra.Command{
		Use:   "exec [flags] <container-id> <command> [command options]  || -p process.json <container-id>",
		Short: "execute new process inside the container",
		Args:  minArgs(1, "container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.runtime()
			if err != nil {
				return err
			}
			return execute(cmd, r, &e, args)
		},
	}
	cmd.Flags().SetInterspersed(false)
	f := cmd.Flags()
	f.StringVarP(&e.process, "process", "p", "", "path to the process.json")
	f.StringVar(&e.consoleSocket, "console-socket", "", "path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal")
	f.StringVar(&e.cwd, "cwd", "", "current working directory in the container")
	f.StringArrayVarP(&e.env, "env", "e", nil, "set environment variables")
	f.BoolVarP(&e.tty, "tty", "t", false, "allocate a pseudo-TTY")
	f.StringVarP(&e.user, "user", "u", "", "UID (format: <uid>[:<gid>])")
	f.StringArrayVarP(&e.gids, "additional-gids", "g", nil, "additional gids")
	f.BoolVarP(&e.detach, "detach", "d", false, "detach from the container's process")
	f.StringVar(&e.pidFile, "pid-file", "", "specify the file to write the process id to")
	f.StringVar(&e.processLabel, "process-label", "", "set the asm process label for the process commonly used with selinux")
	f.StringVar(&e.apparmor, "apparmor", "", "set the apparmor profile for the process")
	f.BoolVar(&e.noNewPrivs, "no-new-privs", false, "set the no new privileges value for the process")
	f.StringArrayVarP(&e.caps, "cap", "c", nil, "add a capability to the bounding set for the process")
	f.IntVar(&e.preserveFDs, "preserve-fds", 0, "pass N additional file descriptors to the container")
	f.BoolVar(&e.ignorePaused, "ignore-paused", false, "allow exec in a paused container")
	f.StringVar(&e.cgroup, "cgroup", "", "accepted for runc compatibility; the process joins the container's cgroup")
	return cmd
}

// process builds the process to run: --process FILE, or the container's
// own process with the command line's args and overrides.
func (e *execFlags) build(r *runtime.Runtime, id string, args []string, cmd *cobra.Command) (*specs.Process, error) {
	if e.process != "" {
		var data []byte
		var err error
		if e.process == "-" {
			data, err = readAll(os.Stdin)
		} else {
			data, err = os.ReadFile(e.process)
		}
		if err != nil {
			return nil, fmt.Errorf("read process: %w", err)
		}
		var p specs.Process
		if err := json.Unmarshal(data, &p); err != nil {
			return nil, fmt.Errorf("parse process %s: %w", e.process, err)
		}
		return &p, nil
	}
	if len(args) == 0 {
		return nil, fmt.Errorf("exec: no command given")
	}
	spec, err := r.Spec(id)
	if err != nil {
		return nil, err
	}
	p := *spec.Process
	p.Args = args
	p.Terminal = e.tty
	p.ConsoleSize = nil
	p.Env = mergeEnv(p.Env, e.env)
	if e.cwd != "" {
		p.Cwd = e.cwd
	}
	if cmd.Flags().Changed("no-new-privs") {
		p.NoNewPrivileges = e.noNewPrivs
	}
	if len(e.caps) > 0 && p.Capabilities != nil {
		c := *p.Capabilities
		c.Bounding = append(append([]string{}, c.Bounding...), e.caps...)
		c.Effective = append(append([]string{}, c.Effective...), e.caps...)
		c.Permitted = append(append([]string{}, c.Permitted...), e.caps...)
		p.Capabilities = &c
	}
	if e.user != "" {
		u, g, hasG := strings.Cut(e.user, ":")
		uid, err := strconv.ParseUint(u, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("parse user %q: %w", e.user, err)
		}
		p.User.UID = uint32(uid)
		if hasG {
			gid, err := strconv.ParseUint(g, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("parse user %q: %w", e.user, err)
			}
			p.User.GID = uint32(gid)
		}
	}
	for _, s := range e.gids {
		gid, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("parse additional gid %q: %w", s, err)
		}
		p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(gid))
	}
	return &p, nil
}

// mergeEnv returns env with the variables of add set, replacing a
// variable of the same name (as runc does: the last one wins).
func mergeEnv(env, add []string) []string {
	out := append([]string{}, env...)
	for _, kv := range add {
		name, _, _ := strings.Cut(kv, "=")
		replaced := false
		for i, old := range out {
			if n, _, _ := strings.Cut(old, "="); n == name {
				out[i], replaced = kv, true
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return out
}

func execute(cmd *cobra.Command, r *runtime.Runtime, e *execFlags, args []string) error {
	ctx := cmd.Context()
	id := args[0]
	p, err := e.build(r, id, args[1:], cmd)
	if err != nil {
		return err
	}
	var proxy *ttyProxy
	con, err := dialConsole(e.consoleSocket)
	if err != nil {
		return err
	}
	if p.Terminal && con == nil {
		if e.detach {
			return fmt.Errorf("cannot allocate a tty in detached mode without --console-socket")
		}
		if proxy, err = newTTYProxy(); err != nil {
			return err
		}
		defer proxy.close()
		con = proxy.remote
	}
	if !e.detach {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("become subreaper: %w", err)
		}
	}
	var sigs chan os.Signal
	var sigsReady <-chan struct{}
	if !e.detach {
		sigs, sigsReady = notifyForwarded()
	}
	pid, err := r.Exec(ctx, id, p, runtime.ExecOpts{
		Console: con, PreserveFDs: e.preserveFDs, IgnorePaused: e.ignorePaused,
		Stdio: [3]*os.File{os.Stdin, os.Stdout, os.Stderr}, PidFile: e.pidFile,
	})
	if err != nil {
		return err
	}
	if proxy != nil {
		if err := proxy.attach(); err != nil {
			unix.Kill(pid, unix.SIGKILL)
			return err
		}
	}
	if e.detach {
		return nil
	}
	<-sigsReady
	code := waitForward(pid, sigs, proxy)
	if proxy != nil {
		proxy.drain()
	}
	return exitError(code)
}
