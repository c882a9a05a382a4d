// The C half of package nsexec; see nsexec.go for the protocol.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

#define MAXJOIN 16

static int sock = -1;

static void write_all(const void *buf, size_t n) {
	const char *p = buf;
	while (n > 0) {
		ssize_t w = write(sock, p, n);
		if (w < 0 && errno == EINTR) continue;
		if (w <= 0) _exit(1);
		p += w; n -= (size_t)w;
	}
}

static void read_all(void *buf, size_t n) {
	char *p = buf;
	while (n > 0) {
		ssize_t r = read(sock, p, n);
		if (r < 0 && errno == EINTR) continue;
		if (r <= 0) _exit(1);
		p += r; n -= (size_t)r;
	}
}

static void send_u32(char kind, uint32_t v) {
	char buf[5];
	buf[0] = kind;
	memcpy(buf + 1, &v, 4);
	write_all(buf, 5);
}

__attribute__((noreturn, format(printf, 1, 2)))
static void bail(const char *fmt, ...) {
	char msg[512];
	va_list ap;
	int saved = errno;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof msg - 64, fmt, ap);
	va_end(ap);
	if (n < 0) n = 0;
	if (n > (int)sizeof msg - 64) n = sizeof msg - 64;
	if (saved) n += snprintf(msg + n, 64, ": %s", strerror(saved));
	send_u32('E', (uint32_t)n);
	write_all(msg, (size_t)n);
	_exit(1);
}

static void wait_answer(char want) {
	char c;
	read_all(&c, 1);
	if (c != want) { errno = 0; bail("unexpected answer %c from the runtime", c); }
}

struct nsname { const char *name; int flag; };
static const struct nsname nsnames[] = {
	{"user", CLONE_NEWUSER}, {"pid", CLONE_NEWPID}, {"uts", CLONE_NEWUTS},
	{"ipc", CLONE_NEWIPC}, {"network", CLONE_NEWNET}, {"net", CLONE_NEWNET},
	{"cgroup", CLONE_NEWCGROUP}, {"time", CLONE_NEWTIME}, {"mount", CLONE_NEWNS},
	{"mnt", CLONE_NEWNS}, {NULL, 0},
};

static int nsflag(const char *name, size_t n) {
	for (const struct nsname *p = nsnames; p->name; p++)
		if (strlen(p->name) == n && memcmp(p->name, name, n) == 0) return p->flag;
	return 0;
}

struct join { int flag; int fd; char path[4096]; };

// join_all joins the namespaces in js: the user namespace first, so that
// the others are joined with its credentials, and the mount namespace last,
// since every path was opened before any setns.
static void join_all(struct join *js, int n) {
	static const int order[] = {CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWUTS, CLONE_NEWIPC,
		CLONE_NEWNET, CLONE_NEWCGROUP, CLONE_NEWTIME, CLONE_NEWNS};
	for (int i = 0; i < n; i++) {
		js[i].fd = open(js[i].path, O_RDONLY | O_CLOEXEC);
		if (js[i].fd < 0) bail("open namespace %s", js[i].path);
	}
	for (size_t o = 0; o < sizeof order / sizeof order[0]; o++)
		for (int i = 0; i < n; i++) {
			if (js[i].flag != order[o]) continue;
			if (setns(js[i].fd, js[i].flag) < 0) bail("setns %s", js[i].path);
			close(js[i].fd);
		}
}

void berth_nsexec(void) {
	const char *env = getenv("_BERTH_INIT");
	if (env == NULL || *env == '\0') return;
	sock = atoi(env);
	if (sock <= 2) return;

	uint32_t len;
	read_all(&len, 4);
	if (len > 1 << 20) bail("bootstrap too large (%u bytes)", len);
	char *buf = malloc(len + 1);
	if (buf == NULL) bail("allocate bootstrap");
	read_all(buf, len);

	uint32_t flags = 0, do_fork = 0, pidfd_pid = 0, pidfd_flags = 0;
	char *timens = NULL;
	struct join js[MAXJOIN];
	int njoin = 0;
	for (uint32_t off = 0; off + 8 <= len;) {
		uint16_t type; uint32_t rlen;
		memcpy(&type, buf + off, 2);
		memcpy(&rlen, buf + off + 4, 4);
		off += 8;
		if (rlen > len - off) bail("bootstrap record %u overruns", type);
		char *data = buf + off;
		off += rlen;
		switch (type) {
		case 1: if (rlen == 4) memcpy(&flags, data, 4); break;
		case 4: if (rlen == 4) memcpy(&do_fork, data, 4); break;
		case 3:
			if (rlen == 8) { memcpy(&pidfd_pid, data, 4); memcpy(&pidfd_flags, data + 4, 4); }
			break;
		case 5:
			timens = strndup(data, rlen);
			break;
		case 2: {
			char *colon = memchr(data, ':', rlen);
			if (colon == NULL) bail("bad join record");
			if (njoin == MAXJOIN) bail("too many namespaces to join");
			size_t plen = rlen - (size_t)(colon + 1 - data);
			if (plen >= sizeof js[0].path) bail("namespace path too long");
			js[njoin].flag = nsflag(data, (size_t)(colon - data));
			if (js[njoin].flag == 0) { errno = 0; bail("unknown namespace type %.*s", (int)(colon - data), data); }
			memcpy(js[njoin].path, colon + 1, plen);
			js[njoin].path[plen] = '\0';
			njoin++;
			break;
		}
		}
	}

	// Joining: one setns on a pidfd enters every namespace of a process at
	// once (Linux 5.8); the per-path joins are the fallback.
	int joined = 0;
	if (pidfd_pid != 0) {
		int pfd = (int)syscall(SYS_pidfd_open, (pid_t)pidfd_pid, 0);
		if (pfd >= 0) {
			if (setns(pfd, (int)pidfd_flags) == 0) joined = 1;
			close(pfd);
		}
	}
	if (!joined) join_all(js, njoin);
	// setns keeps our ids, which a joined user namespace may not map (the
	// host's root): become its root, as a new one's root does below.
	int joined_user = joined && (pidfd_flags & CLONE_NEWUSER);
	for (int i = 0; !joined && i < njoin; i++)
		if (js[i].flag == CLONE_NEWUSER) joined_user = 1;
	if (joined_user) {
		if (setresgid(0, 0, 0) < 0) bail("setresgid to root in the joined user namespace");
		if (setresuid(0, 0, 0) < 0) bail("setresuid to root in the joined user namespace");
	}

	if (flags & CLONE_NEWUSER) {
		if (unshare(CLONE_NEWUSER) < 0) bail("unshare user namespace");
		send_u32('U', (uint32_t)getpid());
		wait_answer('A');
		if (setresgid(0, 0, 0) < 0) bail("setresgid to root in the user namespace");
		if (setresuid(0, 0, 0) < 0) bail("setresuid to root in the user namespace");
	}
	int rest = (int)(flags & ~(uint32_t)(CLONE_NEWUSER | CLONE_NEWCGROUP));
	if (rest && unshare(rest) < 0) bail("unshare namespaces 0x%x", rest);
	if (timens != NULL && *timens) {
		int fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
		if (fd < 0) bail("open timens_offsets");
		if (write(fd, timens, strlen(timens)) < 0) bail("write timens_offsets");
		close(fd);
	}
	free(buf);

	if (!do_fork) {
		send_u32('P', (uint32_t)getpid());
		return;
	}
	pid_t child = fork();
	if (child < 0) bail("fork into the new namespaces");
	if (child == 0) return; // the container's init continues into Go
	send_u32('P', (uint32_t)child);
	_exit(0);
}
