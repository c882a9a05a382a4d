package command

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/berth-dev/berth/runtime"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

type createFlags struct {
	bundle, pidFile, consoleSocket string
	noPivot, noNewKeyring          bool
	preserveFDs                    int
}

func (c *createFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVarP(&c.bundle, "bundle", "b", "", "path to the root of the bundle directory, defaults to the current directory")
	f.StringVar(&c.pidFile, "pid-file", "", "specify the file to write the process id to")
	f.StringVar(&c.consoleSocket, "console-socket", "", "path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal")
	f.BoolVar(&c.noPivot, "no-pivot", false, "do not use pivot root to jail process inside rootfs")
	f.BoolVar(&c.noNewKeyring, "no-new-keyring", false, "accepted for runc compatibility")
	f.IntVar(&c.preserveFDs, "preserve-fds", 0, "pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)")
}

// dialConsole connects to the console socket and returns it as a file
// that can be passed to init.
func dialConsole(path string) (*os.File, error) {
	if path == "" {
		return nil, nil
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	c, err := net.Dial("unix", abs)
	if err != nil {
		return nil, fmt.Errorf("connect to console socket: %w", err)
	}
	defer c.Close()
	return c.(*net.UnixConn).File()
}

func (c *createFlags) opts(id string) (runtime.CreateOpts, error) {
	con, err := dialConsole(c.consoleSocket)
	if err != nil {
		return runtime.CreateOpts{}, err
	}
	return runtime.CreateOpts{
		ID: id, Bundle: c.bundle, PidFile: c.pidFile, Console: con, NoPivot: c.noPivot,
		PreserveFDs: c.preserveFDs + listenFDs(), Stdio: [3]*os.File{os.Stdin, os.Stdout, os.Stderr},
	}, nil
}

// listenFDs honours systemd socket activation as runc does: LISTEN_FDS
// more fds pass through.
func listenFDs() int {
	var n int
	if os.Getenv("LISTEN_FDS") != "" {
		fmt.Sscan(os.Getenv("LISTEN_FDS"), &n)
	}
	return n
}

func createCmd(g *globals) *cobra.Command {
	var c createFlags
	cmd := &cobra.Command{
		Use:   "create [flags] <container-id>",
		Short: "create a container",
		Args:  exactArgs(1, "container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.runtime()
			if err != nil {
				return err
			}
			o, err := c.opts(args[0])
			if err != nil {
				return err
			}
			return r.Create(cmd.Context(), o)
		},
	}
	c.add(cmd)
	return cmd
}

func startCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "start <container-id>",
		Short: "executes the user defined process in a created container",
		Args:  exactArgs(1, "container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.runtime()
			if err != nil {
				return err
			}
			return r.Start(cmd.Context(), args[0])
		},
	}
}

func runCmd(g *globals) *cobra.Command {
	var c createFlags
	var detach, keep bool
	cmd := &cobra.Command{
		Use:   "run [flags] <container-id>",
		Short: "create and run a container",
		Args:  exactArgs(1, "container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.runtime()
			if err != nil {
				return err
			}
			return run(cmd.Context(), r, &c, args[0], detach, keep)
		},
	}
	c.add(cmd)
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "detach from the container's process")
	cmd.Flags().BoolVar(&keep, "keep", false, "do not delete the container after it exits")
	return cmd
}

// run is create + start, and unless detached: forward signals, proxy the
// terminal, wait for the container's init, delete the container and
// return its exit status.
func run(ctx context.Context, r *runtime.Runtime, c *createFlags, id string, detach, keep bool) error {
	terminal := bundleTerminal(c.bundle)
	var proxy *ttyProxy
	if terminal && c.consoleSocket == "" {
		if detach {
			return fmt.Errorf("cannot allocate a tty in detached mode without --console-socket")
		}
		var err error
		if proxy, err = newTTYProxy(); err != nil {
			return err
		}
		defer proxy.close()
	}
	if !detach {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("become subreaper: %w", err)
		}
	}
	o, err := c.opts(id)
	if err != nil {
		return err
	}
	if proxy != nil {
		o.Console = proxy.remote
	}
	var sigs chan os.Signal
	var sigsReady <-chan struct{}
	if !detach {
		sigs, sigsReady = notifyForwarded()
	}
	if err := r.Create(ctx, o); err != nil {
		return err
	}
	if proxy != nil {
		if err := proxy.attach(); err != nil {
			r.Delete(ctx, id, true)
			return err
		}
	}
	// The pid is read before start: a short-lived process may be
	// stopped (and reported with pid 0) by the time start returns.
	st, err := r.State(id)
	if err != nil {
		return err
	}
	if err := r.Start(ctx, id); err != nil {
		r.Delete(ctx, id, true)
		return err
	}
	if detach {
		return nil
	}
	<-sigsReady
	code := waitForward(st.Pid, sigs, proxy)
	if proxy != nil {
		proxy.drain()
	}
	if !keep {
		if err := r.Delete(ctx, id, true); err != nil {
			return err
		}
	}
	return exitError(code)
}

// bundleTerminal reports whether the bundle's process asks for a terminal.
func bundleTerminal(bundle string) bool {
	if bundle == "" {
		bundle = "."
	}
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return false
	}
	var s struct {
		Process *struct {
			Terminal bool `json:"terminal"`
		} `json:"process"`
	}
	return json.Unmarshal(data, &s) == nil && s.Process != nil && s.Process.Terminal
}

// forwarded are the signals a foreground run or exec passes on to the
// container's process: what a user or a supervisor sends to a command.
var forwarded = []os.Signal{
	unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGABRT, unix.SIGUSR1, unix.SIGUSR2,
	unix.SIGALRM, unix.SIGTERM, unix.SIGCONT, unix.SIGWINCH, unix.SIGPWR,
}

// notifyForwarded starts catching the forwarded signals. Go enables each
// signal with a round trip to a thread-locked goroutine, so this runs
// beside the container's creation; the channel closes once it is done.
func notifyForwarded() (chan os.Signal, <-chan struct{}) {
	sigs := make(chan os.Signal, 64)
	ready := make(chan struct{})
	go func() {
		signal.Notify(sigs, forwarded...)
		close(ready)
	}()
	return sigs, ready
}

// waitForward reaps children until pid exits, forwarding every signal
// that reaches us to it, and returns its exit status as a shell reports it.
func waitForward(pid int, sigs chan os.Signal, proxy *ttyProxy) int {
	done := make(chan int, 1)
	go func() {
		for {
			var ws unix.WaitStatus
			got, err := unix.Wait4(-1, &ws, 0, nil)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "berth-runtime: wait for container process %d: %v\n", pid, err)
				done <- 255
				return
			}
			if got != pid {
				continue // an orphan reparented to us, reaped
			}
			switch {
			case ws.Exited():
				done <- ws.ExitStatus()
			case ws.Signaled():
				done <- 128 + int(ws.Signal())
			default:
				continue
			}
			return
		}
	}()
	for {
		select {
		case code := <-done:
			return code
		case s := <-sigs:
			sig := s.(unix.Signal)
			switch sig {
			case unix.SIGCHLD, unix.SIGURG, unix.SIGPIPE:
			case unix.SIGWINCH:
				if proxy != nil {
					proxy.resize()
				}
			default:
				unix.Kill(pid, sig)
			}
		}
	}
}
