// docker-init in C, run from a constructor before the Go runtime starts
// (see initproc.go): a Go init cannot catch a signal sent while its
// runtime starts, and its runtime's default handler ends it with status 2.

#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#define USAGE "usage: docker-init [-v] [--] PROGRAM [ARGS...]\n"

// forwarded says whether init passes sig on to the command: all but
// SIGCHLD (its own), the synchronous faults and the terminal stops, which
// would stop init itself.
static int forwarded(int sig)
{
	switch (sig) {
	case SIGCHLD: case SIGFPE: case SIGILL: case SIGSEGV: case SIGBUS:
	case SIGTRAP: case SIGSYS: case SIGTTIN: case SIGTTOU: case SIGKILL: case SIGSTOP:
		return 0;
	}
	return 1;
}

// status is a wait status as a shell reports it: the code, or 128+n for
// a death by signal n.
static int status(int ws)
{
	if (WIFSIGNALED(ws))
		return 128 + WTERMSIG(ws);
	return WEXITSTATUS(ws);
}

static int init_main(int argc, char **argv)
{
	int i = 1;
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (strcmp(a, "-v") == 0 || strcmp(a, "-vv") == 0 || strcmp(a, "-vvv") == 0 ||
		    strcmp(a, "-s") == 0 || strcmp(a, "-g") == 0 || strcmp(a, "-w") == 0)
			continue; // tini's flags: berth always uses its own group and subreaps
		if (a[0] == '-' && a[1] != '\0') {
			fprintf(stderr, "[FATAL docker-init] unknown option \"%s\"\n" USAGE, a);
			return 1;
		}
		break;
	}
	if (i >= argc) {
		fprintf(stderr, "[FATAL docker-init] no command given\n" USAGE);
		return 1;
	}
	// Orphans come to us, not to whatever is PID 1 of this namespace.
	if (getpid() != 1)
		prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	// Every signal waits for sigwaitinfo from now on, before the child
	// exists: none sent in between is lost or acts on us.
	sigset_t all, orig;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &orig);
	pid_t child = fork();
	if (child < 0) {
		fprintf(stderr, "[FATAL docker-init] fork: %s\n", strerror(errno));
		return 1;
	}
	if (child == 0) {
		// The leader of a new process group, in the terminal's
		// foreground when stdin is one.
		setpgid(0, 0);
		struct termios t;
		if (tcgetattr(0, &t) == 0)
			tcsetpgrp(0, getpid());
		sigprocmask(SIG_SETMASK, &orig, NULL);
		execvp(argv[i], argv + i);
		int e = errno;
		fprintf(stderr, "[FATAL docker-init] exec %s failed: %s\n", argv[i], strerror(e));
		_exit(e == ENOENT ? 127 : 126);
	}
	setpgid(child, child);
	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&all, &si);
		if (sig < 0)
			continue;
		if (sig != SIGCHLD) {
			// The group first: the child leads it. A child that left
			// the group (its own setsid) still gets the signal itself.
			if (forwarded(sig) && kill(-child, sig) < 0)
				kill(child, sig);
			continue;
		}
		int done = 0, code = 0;
		for (;;) {
			int ws;
			pid_t p = waitpid(-1, &ws, WNOHANG);
			if (p < 0 && errno == EINTR)
				continue;
			if (p <= 0)
				break;
			if (p == child) {
				done = 1;
				code = status(ws);
			}
		}
		if (done)
			return code;
	}
}

// berth_docker_init runs in every berth process before the Go runtime:
// called by the name docker-init, berth is the init and never gets to Go.
__attribute__((constructor)) static void berth_docker_init(int argc, char **argv, char **envp)
{
	if (argc < 1 || argv == NULL || argv[0] == NULL)
		return;
	const char *base = strrchr(argv[0], '/');
	base = base ? base + 1 : argv[0];
	if (strcmp(base, "docker-init") != 0)
		return;
	exit(init_main(argc, argv));
}
