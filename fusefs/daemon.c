#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crawler.h"
#include "daemon.h"
#include "dvrfs_status.h"
#include "fetcher.h"
#include "fs.h"
#include "log.h"
#include "options.h"
#include "status.h"
#include "store.h"

struct mount {
	const struct dvrfs_opts *o;
	struct store	*store;
	struct fetcher	*fetcher;
	struct fs	*fs;
	struct crawler	*crawler;
	struct fuse_session *se;
	int		 mounted;
	int		 handlers;
};

/* Prints why the mount failed: on the terminal, one line. */
static void
say(const char *progname, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
say(const char *progname, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/*
 * Asks the primary for the export's root. A wrong key or a missing
 * export fail the mount; an unreachable primary does too, unless the
 * store already knows the tree and can serve it meanwhile.
 */
static int
probe_primary(struct mount *m, const char *progname)
{
	const struct dvrfs_opts *o = m->o;
	struct fetcher_stats st;
	struct store_ent root;
	int e, rc;

	/* The reason goes on the terminal once, not the retries. */
	if (!o->verbose)
		log_set_level(LOG_LVL_ERR);
	rc = fetcher_list(m->fetcher, "", 0, FETCH_VIEWER, o->timeout * 1000);
	e = errno;
	if (!o->verbose)
		log_set_level(LOG_LVL_INFO);
	if (rc == 0)
		return 0;
	switch (e) {
	case EACCES:
		say(progname, "%s: the primary refused the cluster key "
		    "(401); check cluster_key= on both sides", o->fsname);
		return -1;
	case ENOENT:
		say(progname, "%s: the primary does not export %s", o->fsname,
		    o->export);
		return -1;
	case EBADMSG:
		fetcher_stats(m->fetcher, &st);
		if (st.bad_signatures > 0)
			say(progname, "%s: the primary's answers are not signed "
			    "with the cluster key (X-M4F-Signature); check "
			    "cluster_key= on both sides, and that m4f-origin "
			    "signs its answers", o->fsname);
		else
			say(progname, "%s: port %d does not speak M4F (is "
			    "m4f-origin running there?)", o->fsname, o->port);
		return -1;
	}
	if (store_get(m->store, STORE_ROOT_ID, &root) == 0 && root.listed != 0) {
		log_warnx("%s: primary unreachable (%s); serving the local "
		    "store until it is back", o->fsname, strerror(e));
		return 0;
	}
	say(progname, "%s: cannot reach the primary at %s:%d: %s", o->fsname,
	    o->host, o->port, strerror(e));
	return -1;
}

static char *
live_status(void *arg)
{
	struct mount *m = arg;

	return status_json(m->fs, m->fetcher, m->crawler, m->store);
}

static int
open_parts(struct mount *m, const char *progname)
{
	const struct dvrfs_opts *o = m->o;
	struct store_conf sc = { .block_size = o->block_size,
	    .max_bytes = o->max_size };
	struct fetcher_conf fc = {
		.tls = o->tls, .host = o->host, .port = o->port,
		.replication_port = o->replication_port, .export = o->export,
		.key = o->key, .keylen = o->keylen, .cafile = o->cafile,
		.transfers = o->transfers, .bwlimit = o->bwlimit,
	};
	struct fs_conf fsc = { .timeout_ms = o->timeout * 1000,
	    .readahead = o->readahead, .depth = o->depth, .status = live_status,
	    .status_arg = m };

	if ((m->store = store_open(o->store, &sc)) == NULL) {
		say(progname, "store=%s: %s", o->store, strerror(errno));
		return -1;
	}
	if ((m->fetcher = fetcher_new(&fc, m->store)) == NULL) {
		say(progname, "%s: %s", o->fsname, strerror(errno));
		return -1;
	}
	if (probe_primary(m, progname) == -1)
		return -1;
	if (status_write_mount(o, o->store) == -1)
		log_warn("%s/" DVRFS_MOUNT_FILE, o->store);
	if ((m->fs = fs_new(m->store, m->fetcher, &fsc)) == NULL) {
		say(progname, "%s", strerror(errno));
		return -1;
	}
	return 0;
}

static int
mount_fuse(struct mount *m, const char *progname)
{
	const struct dvrfs_opts *o = m->o;
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	char fopts[1024];
	int n;

	n = snprintf(fopts, sizeof(fopts), "ro,fsname=%s,subtype=dvrfs%s",
	    o->fsname, o->allow_other ? ",allow_other" : "");
	if (n < 0 || (size_t)n >= sizeof(fopts) || strchr(o->fsname, ',')) {
		say(progname, "%s: unusable as a file system name", o->fsname);
		return -1;
	}
	if (fuse_opt_add_arg(&args, progname) == -1 ||
	    fuse_opt_add_arg(&args, "-o") == -1 ||
	    fuse_opt_add_arg(&args, fopts) == -1 ||
	    (o->debug && fuse_opt_add_arg(&args, "-d") == -1))
		goto nomem;
	m->se = fuse_session_new(&args, fs_ops(), sizeof(*fs_ops()), m->fs);
	fuse_opt_free_args(&args);
	if (m->se == NULL) {
		say(progname, "cannot start a FUSE session");
		return -1;
	}
	if (fuse_set_signal_handlers(m->se) == -1) {
		say(progname, "cannot set signal handlers");
		return -1;
	}
	m->handlers = 1;
	if (fuse_session_mount(m->se, o->mountpoint) == -1) {
		say(progname, "%s: cannot mount (is /dev/fuse there, and the "
		    "folder empty and not mounted?)", o->mountpoint);
		return -1;
	}
	m->mounted = 1;
	return 0;
nomem:
	fuse_opt_free_args(&args);
	say(progname, "out of memory");
	return -1;
}

/* The primary changed: tell the kernel, and the crawler of new files. */
static void
on_change(void *arg, const struct fetcher_change *c)
{
	struct mount *m = arg;

	fs_changed(m->fs, c);
	if (!c->deleted && !c->reset && c->listing == NULL)
		crawler_added(m->crawler, c->id);
}

static int
start_work(struct mount *m)
{
	const struct dvrfs_opts *o = m->o;
	struct crawler_conf cc = {
		.depth = o->depth,
		.streams = (const char *const *)o->streams,
		.stream_depth = o->stream_depth,
		.replicate = o->replicate,
		.transfers = o->transfers,
	};

	if (fs_start(m->fs, m->se) == -1)
		return -1;
	if ((m->crawler = crawler_new(m->fetcher, m->store, &cc)) == NULL)
		return -1;
	if (fetcher_follow(m->fetcher, on_change, m) == -1)
		log_warn("cannot follow the primary's changes");
	return 0;
}

static void
release(struct mount *m)
{
	if (m->mounted)
		fuse_session_unmount(m->se);
	if (m->handlers)
		fuse_remove_signal_handlers(m->se);
	if (m->se != NULL)
		fuse_session_destroy(m->se);
	crawler_stop(m->crawler);
	fetcher_free(m->fetcher);
	crawler_free(m->crawler);
	fs_free(m->fs);
	store_close(m->store);
}

/*
 * Forks. The parent waits for one status byte from the child on a pipe
 * and exits with it; the child returns the pipe's write end.
 */
static int
detach(void)
{
	int p[2], status;
	unsigned char b;
	pid_t pid;

	if (pipe(p) == -1)
		return -1;
	if ((pid = fork()) == -1)
		return -1;
	if (pid > 0) {
		close(p[1]);
		if (read(p[0], &b, 1) == 1)
			_exit(b);
		/* The child died before it could tell. */
		if (waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
		    WEXITSTATUS(status) != 0)
			_exit(WEXITSTATUS(status));
		_exit(OPT_EXIT_FAIL);
	}
	close(p[0]);
	setsid();
	return p[1];
}

static void
tell_parent(int fd, unsigned char status)
{
	int null;

	if (fd < 0)
		return;
	if (write(fd, &status, 1) != 1)
		log_warn("status pipe");
	close(fd);
	if (status == 0 && (null = open("/dev/null", O_RDWR)) >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		if (null > 2)
			close(null);
		log_syslog();
	}
}

#define READ_AHEAD_KB	1024

/*
 * The kernel reads ahead at most 128 KiB in a FUSE mount, whatever the
 * daemon asks for: raises the mount's own read_ahead_kb (root only), so
 * that a segment is read in one or two requests, not eight. Runs once the
 * loop serves the mount (the stat goes through it); arg is the mount
 * point.
 */
static void *
tune_readahead(void *arg)
{
	const char *mountpoint = arg;
	char path[128], cur[32];
	struct stat st;
	ssize_t n;
	int fd;

	if (stat(mountpoint, &st) == -1)
		return NULL;
	snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb",
	    major(st.st_dev), minor(st.st_dev));
	if ((fd = open(path, O_RDWR | O_CLOEXEC)) == -1)
		return NULL;
	if ((n = read(fd, cur, sizeof(cur) - 1)) > 0) {
		cur[n] = '\0';
		if (atoi(cur) < READ_AHEAD_KB) {
			n = snprintf(cur, sizeof(cur), "%d\n", READ_AHEAD_KB);
			if (pwrite(fd, cur, (size_t)n, 0) != n)
				log_debug("%s: %s", path, strerror(errno));
		}
	}
	close(fd);
	return NULL;
}

/* The watcher of a mount's end; stop is set when the loop has returned. */
struct watch {
	struct mount	*m;
	atomic_int	 stop;
};

/*
 * Once the session ends (umount, SIGTERM), readers still waiting on the
 * primary are let go at once: the loop waits for its workers, and the
 * daemon must be gone within a couple of seconds whatever is in flight.
 */
static void *
watch_exit(void *arg)
{
	struct watch *w = arg;
	struct timespec nap = { 0, 50 * 1000000L };

	while (!atomic_load(&w->stop) && !fuse_session_exited(w->m->se))
		nanosleep(&nap, NULL);
	fetcher_cancel(w->m->fetcher);
	return NULL;
}

int
daemon_run(const struct dvrfs_opts *o, const char *progname)
{
	struct mount m = { .o = o };
	struct fuse_loop_config *cfg = NULL;
	struct watch w = { 0 };
	pthread_attr_t ta;
	pthread_t tuner, watcher;
	struct stat st;
	int fd = -1, rc = OPT_EXIT_FAIL, watching;

	if (stat(o->mountpoint, &st) == -1 || !S_ISDIR(st.st_mode)) {
		say(progname, "%s: not a folder", o->mountpoint);
		return OPT_EXIT_FAIL;
	}
	if (!o->foreground && (fd = detach()) == -1) {
		say(progname, "fork: %s", strerror(errno));
		return OPT_EXIT_FAIL;
	}
	if (open_parts(&m, progname) == -1 || mount_fuse(&m, progname) == -1)
		goto out;
	if (start_work(&m) == -1) {
		say(progname, "cannot start: %s", strerror(errno));
		goto out;
	}
	tell_parent(fd, 0);
	fd = -1;
	log_info("%s mounted on %s (store %s)", o->fsname, o->mountpoint,
	    o->store);
	if ((cfg = fuse_loop_cfg_create()) == NULL)
		goto out;
	fuse_loop_cfg_set_max_threads(cfg, 64);
	fuse_loop_cfg_set_idle_threads(cfg, 8);
	pthread_attr_init(&ta);
	pthread_attr_setdetachstate(&ta, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&tuner, &ta, tune_readahead, o->mountpoint) != 0)
		log_debug("read-ahead: %s", strerror(errno));
	pthread_attr_destroy(&ta);
	w.m = &m;
	watching = pthread_create(&watcher, NULL, watch_exit, &w) == 0;
	rc = fuse_session_loop_mt(m.se, cfg) == 0 ? 0 : OPT_EXIT_FAIL;
	atomic_store(&w.stop, 1);
	if (watching)
		pthread_join(watcher, NULL);
	fuse_loop_cfg_destroy(cfg);
	log_info("%s unmounted from %s", o->fsname, o->mountpoint);
out:
	if (fd >= 0)
		tell_parent(fd, OPT_EXIT_FAIL);
	release(&m);
	return rc;
}
