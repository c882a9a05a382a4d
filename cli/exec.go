package cli

import (
	"errors"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/berth-dev/berth/engine"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

func execCmd(g *globals) *cobra.Command {
	var detach, interactive, tty, privileged bool
	var env, envFile []string
	var user, workdir, detachKeys string
	cmd := &cobra.Command{
		Use:   "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
		Short: "Execute a command in a running container",
		Args:  minArgs(2),
		RunE: withEngine(g, func(cmd *cobra.Command, e *engine.Engine, args []string) error {
			vars, err := envList(env, envFile)
			if err != nil {
				return err // docker's exec exits 1 for what it cannot send
			}
			if err := engine.SetSubreaper(); err != nil {
				return statusError{125, err}
			}
			o := engine.ExecOptions{Cmd: args[1:], Env: vars, User: user, WorkingDir: workdir, Tty: tty, Privileged: privileged}
			var stdin io.Reader
			if interactive && !detach {
				stdin = os.Stdin
			}
			stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
			if detach {
				stdout, stderr = nil, nil
			}
			wait, release := func() {}, func() {}
			if tty {
				var hold func(*os.File) error
				if detach {
					hold = e.HoldTerminal
				}
				console, done, err := ptyRelay(stdin, stdout, hold)
				if err != nil {
					return statusError{125, err}
				}
				o.Console, wait = console, done
				o.ConsoleSize = terminalSize(os.Stdout)
				if stdin == os.Stdin {
					defer rawTerminal(os.Stdin)()
				}
			} else {
				files, rel, done, err := stdioFiles(stdin, stdout, stderr)
				if err != nil {
					return statusError{125, err}
				}
				o.Stdio, wait, release = files, done, rel
			}
			pid, err := e.Exec(cmd.Context(), args[0], o)
			if o.Console != nil {
				o.Console.Close()
			}
			release() // the process has its own copies now, or none
			if err != nil {
				wait()
				return statusError{execExitCode(err), err}
			}
			if detach {
				wait()
				return nil
			}
			code, err := engine.WaitExec(pid)
			wait()
			if err != nil {
				return statusError{125, err}
			}
			if code != 0 {
				return statusError{code, quiet{}}
			}
			return nil
		}),
	}
	f := cmd.Flags()
	f.SetInterspersed(false)
	f.BoolVarP(&detach, "detach", "d", false, "Detached mode: run command in the background")
	f.BoolVarP(&interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	f.BoolVarP(&tty, "tty", "t", false, "Allocate a pseudo-TTY")
	f.BoolVar(&privileged, "privileged", false, "Give extended privileges to the command")
	f.StringArrayVarP(&env, "env", "e", nil, "Set environment variables")
	f.StringArrayVar(&envFile, "env-file", nil, "Read in a file of environment variables")
	f.StringVarP(&user, "user", "u", "", "Username or UID (format: \"<name|uid>[:<group|gid>]\")")
	f.StringVarP(&workdir, "workdir", "w", "", "Working directory inside the container")
	f.StringVar(&detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	return cmd
}

// execExitCode is docker exec's exit status for an exec that did not run:
// 127 and 126 for a command not found or not executable, 126 for another
// failure to start it (the exec's exit code in docker), and 1 for an
// error before that (no such container, not running, paused), which
// docker's CLI gets from the daemon's exec create.
func execExitCode(err error) int {
	code := engine.ExitCodeOf(err)
	if code != 125 {
		return code
	}
	if strings.HasPrefix(err.Error(), "OCI runtime exec failed") {
		return 126
	}
	return 1
}

// envList is -e and --env-file, read as run reads them.
func envList(env, files []string) ([]string, error) {
	out, err := readKVFiles(files, os.LookupEnv)
	if err != nil {
		return nil, err
	}
	for _, v := range env {
		v, err := validateEnv(v)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// stdioFiles gives a process stdio files for the streams: an *os.File
// that is not a terminal is passed as it is; any other reader or writer
// goes through a pipe copied by a goroutine. release closes the pipe ends
// the process got (once it has them, or failed to start); wait waits for
// the copies that write out.
func stdioFiles(in io.Reader, out, errw io.Writer) (files [3]*os.File, release, wait func(), err error) {
	var wg sync.WaitGroup
	var ours []*os.File // the child's ends of our pipes
	release = func() {
		for _, f := range ours {
			f.Close()
		}
	}
	if in != nil {
		// A terminal is never handed to the container: a process
		// holding it could push input into berth's terminal (TIOCSTI).
		if f, ok := in.(*os.File); ok && !isTerminal(f) {
			files[0] = f
		} else {
			r, w, err := os.Pipe()
			if err != nil {
				return files, release, nil, err
			}
			files[0] = r
			ours = append(ours, r)
			go func() { io.Copy(w, in); w.Close() }()
		}
	}
	for i, wr := range []io.Writer{out, errw} {
		if wr == nil {
			continue
		}
		if f, ok := wr.(*os.File); ok && !isTerminal(f) {
			files[i+1] = f
			continue
		}
		r, w, err := os.Pipe()
		if err != nil {
			release()
			return files, func() {}, nil, err
		}
		files[i+1] = w
		ours = append(ours, w)
		wg.Add(1)
		go func() { defer wg.Done(); io.Copy(wr, r); r.Close() }()
	}
	return files, release, wg.Wait, nil
}

// ptyRelay makes the console socket an exec with a tty needs: it
// receives the terminal's master and copies in to it and it to out; with
// hold (a detached exec) it hands the master over to hold instead.
func ptyRelay(in io.Reader, out io.Writer, hold func(*os.File) error) (*os.File, func(), error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	local := os.NewFile(uintptr(fds[0]), "console-local")
	remote := os.NewFile(uintptr(fds[1]), "console-remote")
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer local.Close()
		master, err := recvFD(local)
		if err != nil {
			return
		}
		defer master.Close()
		if hold != nil {
			hold(master) // a detached process keeps its terminal
			return
		}
		if ws, err := unix.IoctlGetWinsize(int(os.Stdout.Fd()), unix.TIOCGWINSZ); err == nil {
			unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, ws)
		}
		if in != nil {
			go io.Copy(master, in)
		}
		if out != nil {
			io.Copy(out, master) // ends with EIO when the process's side closes
		}
	}()
	return remote, func() { <-done }, nil
}

// recvFD receives one file descriptor sent over a unix socket.
func recvFD(sock *os.File) (*os.File, error) {
	buf := make([]byte, 64)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, 0)
	if err != nil {
		return nil, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) == 0 {
		return nil, errors.New("no terminal received")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) == 0 {
		return nil, errors.New("no terminal received")
	}
	return os.NewFile(uintptr(fds[0]), "pty-master"), nil
}

// terminalSize is f's window size as [height, width], or zeros when f is
// not a terminal.
func terminalSize(f *os.File) [2]uint {
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return [2]uint{}
	}
	return [2]uint{uint(ws.Row), uint(ws.Col)}
}
