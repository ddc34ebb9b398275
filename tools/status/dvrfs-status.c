/*
 * dvrfs-status: how far a secondary's store is filled, like rsync's
 * summary. Reads the store (read-only, also while the daemon runs) and,
 * when the store is mounted, the daemon's live counters from the mount
 * root's extended attributes. The outputs are in status_text.c (table,
 * -t), status_json.c (-j), status_prom.c (-p) and status_html.c (-H).
 */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "dvrfs_status.h"
#include "log.h"
#include "status_fmt.h"
#include "status_html.h"
#include "status_info.h"
#include "status_json.h"
#include "status_prom.h"
#include "status_report.h"
#include "status_scan.h"
#include "status_text.h"
#include "store.h"

#define XATTR_MAX	(1024 * 1024)
#define TLINE_WIDTH	72	/* cells of -t, off a terminal */

enum format { FMT_TABLE, FMT_JSON, FMT_PROM, FMT_TLINE, FMT_HTML };

struct status {
	enum format	 fmt;
	int		 watch;
	const char	*out;		/* -o or -H FILE, or NULL: stdout */
	struct srep	 r;
};

static volatile sig_atomic_t stop;

static void
usage(void)
{
	fprintf(stderr, "usage: dvrfs-status [-jptw] [-H file | -o file] "
	    "MOUNTPOINT|STORE\n");
}

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static double
mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * An extended attribute of path as a malloc'd NUL-terminated string, or
 * NULL with errno (ENODATA/ENOTSUP when path has no such attribute).
 */
static char *
xattr_get(const char *path, const char *name, size_t *lenp)
{
	ssize_t n, got;
	char *buf;

	for (;;) {
		if ((n = getxattr(path, name, NULL, 0)) < 0)
			return NULL;
		if (n > XATTR_MAX) {
			errno = EFBIG;
			return NULL;
		}
		if ((buf = malloc((size_t)n + 1)) == NULL)
			return NULL;
		got = getxattr(path, name, buf, (size_t)n);
		if (got >= 0) {
			buf[got] = '\0';
			if (lenp != NULL)
				*lenp = (size_t)got;
			return buf;
		}
		free(buf);
		if (errno != ERANGE)	/* ERANGE: it grew meanwhile */
			return NULL;
	}
}

/* Is path a dvrfs mount? Then fills st->store_dir and st->mnt. */
static int
find_mount(struct srep *st, const char *path)
{
	char *v;

	if ((v = xattr_get(path, DVRFS_XATTR_STORE, NULL)) == NULL)
		return -1;
	if (*v != '/' || strlen(v) >= sizeof(st->store_dir) ||
	    realpath(path, st->mnt) == NULL) {
		free(v);
		st->mnt[0] = '\0';
		return -1;
	}
	snprintf(st->store_dir, sizeof(st->store_dir), "%s", v);
	free(v);
	return 0;
}

/*
 * Works out the mode from the argument: a mount point (live), or a store
 * folder, which is live too when dvrfs.json's mount point still shows it.
 */
static int
locate(struct srep *st, const char *arg)
{
	char db[PATH_MAX], real[PATH_MAX];
	struct stat sb;
	struct srep m;

	if (find_mount(st, arg) == 0)
		return 0;
	if (realpath(arg, real) == NULL ||
	    (size_t)snprintf(db, sizeof(db), "%s/index.db", real) >=
	    sizeof(db) || stat(db, &sb) == -1 || !S_ISREG(sb.st_mode))
		return -1;
	snprintf(st->store_dir, sizeof(st->store_dir), "%s", real);
	if (sinfo_mount_load(real, &st->mi) == -1 && errno != ENOENT)
		log_warn("%s/" DVRFS_MOUNT_FILE, real);
	if (st->mi.mountpoint != NULL) {
		memset(&m, 0, sizeof(m));
		if (find_mount(&m, st->mi.mountpoint) == 0 &&
		    strcmp(m.store_dir, real) == 0)
			snprintf(st->mnt, sizeof(st->mnt), "%s", m.mnt);
	}
	return 0;
}

static int
row_add(struct srep *st, const char *name)
{
	struct srow *v;

	if (strlen(name) >= sizeof(v->name))
		return 0;
	if ((v = realloc(st->rows, (st->nrows + 1) * sizeof(*v))) == NULL)
		return -1;
	st->rows = v;
	v = &st->rows[st->nrows++];
	memset(v, 0, sizeof(*v));
	snprintf(v->name, sizeof(v->name), "%s", name);
	v->rate = -1;
	sscan_init(&v->sc, st->since);
	return 0;
}

static int
add_top(void *arg, const struct store_ent *e)
{
	struct srep *st = arg;

	if (e->type != STORE_DIR)
		return 0;
	return row_add(st, e->name) == -1 ? -1 : 0;
}

/* The streams: dvrfs.json's list, or every top-level folder. */
static int
list_streams(struct srep *st)
{
	char after[256] = "";
	ssize_t n;
	size_t i;

	if (st->mi.streams != NULL) {
		for (i = 0; i < st->mi.nstreams; i++)
			if (row_add(st, st->mi.streams[i]) == -1)
				return -1;
		return 0;
	}
	for (;;) {
		n = store_readdir(st->store, STORE_ROOT_ID, after, 4096,
		    add_top, st);
		if (n < 0)
			return -1;
		if (n < 4096 || st->nrows == 0)
			return 0;
		snprintf(after, sizeof(after), "%s",
		    st->rows[st->nrows - 1].name);
	}
}

/* Does the store have the stream's folder (yet)? */
static int
row_here(struct srep *st, const struct srow *r)
{
	struct store_ent e;

	return store_resolve(st->store, r->name, &e) == 0 &&
	    e.type == STORE_DIR;
}

/* Complete bytes of the stream's segments at or after since. */
static int
done_bytes(struct srep *st, const struct srow *r, int64_t since,
    struct store_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!r->here)
		return 0;
	return store_stats(st->store, r->name, since, out);
}

static void
read_live(struct srep *st)
{
	char *v;
	size_t len;

	if (st->mnt[0] == '\0')
		return;
	if ((v = xattr_get(st->mnt, DVRFS_XATTR_STATUS, &len)) == NULL)
		return;
	sinfo_live_clear(&st->li);
	st->have_live = 0;
	if (sinfo_live_parse(v, len, &st->li) == 0) {
		st->have_live = 1;
		st->listing = st->li.listing;
	} else {
		log_warnx("%s: %s is not a counters object", st->mnt,
		    DVRFS_XATTR_STATUS);
		sinfo_live_clear(&st->li);
	}
	free(v);
}

struct walker {
	struct srep	*st;
	struct store	*store;
	size_t		 first;		/* walks rows first, first + step, … */
	size_t		 step;
	int		 rc;
	int		 err;
};

static void *
walker(void *arg)
{
	struct walker *w = arg;
	struct srow *r;
	size_t i;

	w->rc = 0;
	for (i = w->first; i < w->st->nrows && !stop; i += w->step) {
		r = &w->st->rows[i];
		if (r->here && sscan_walk(w->store, r->name, &r->sc) == -1) {
			w->err = errno;
			log_warn("%s", r->name);
			w->rc = -1;
			break;
		}
	}
	return NULL;
}

/*
 * Walks every stream's segments: the streams shared between two threads,
 * each with its own handle on the store, when there are two processors.
 */
static int
walk_rows(struct srep *st)
{
	struct store_conf conf = { .readonly = 1 };
	struct walker w[2] = { { st, st->store, 0, 1, 0, 0 } };
	pthread_t t;
	int two;

	two = st->nrows > 1 && sysconf(_SC_NPROCESSORS_ONLN) > 1 &&
	    (w[1].store = store_open(st->store_dir, &conf)) != NULL;
	if (two) {
		w[0].step = 2;
		w[1] = (struct walker){ st, w[1].store, 1, 2, 0, 0 };
		if (pthread_create(&t, NULL, walker, &w[1]) != 0) {
			store_close(w[1].store);
			two = 0;
			w[0].step = 1;
		}
	}
	walker(&w[0]);
	if (two) {
		pthread_join(t, NULL);
		store_close(w[1].store);
		if (w[0].rc == 0 && w[1].rc == -1) {
			errno = w[1].err;
			return -1;
		}
	}
	errno = w[0].err;
	return w[0].rc;
}

/*
 * One full report: walks every stream. When mounted, the rates are the
 * mount's own (what its crawler copied over the last seconds); a mount
 * that does not report them is measured over about a second (complete
 * bytes at the same since, before the walk and after it).
 */
static int
collect(struct srep *st)
{
	struct store_stats *a = NULL, b;
	double t0, dt;
	size_t i;
	int rc = -1, measure;

	if ((a = calloc(st->nrows + 1, sizeof(*a))) == NULL)
		return -1;
	/* Before the walk: whether the mount had walked the primary yet. */
	if (st->mnt[0] != '\0')
		read_live(st);
	measure = st->mnt[0] != '\0' && !(st->have_live &&
	    st->li.rates != NULL);
	t0 = mono();
	for (i = 0; i < st->nrows; i++) {
		struct srow *r = &st->rows[i];

		r->here = row_here(st, r);
		if (measure && done_bytes(st, r, st->since, &a[i]) == -1)
			goto out;
		if (st->mnt[0] != '\0' && !measure)
			r->rate = sinfo_live_rate(&st->li, r->name);
	}
	if (walk_rows(st) == -1)
		goto out;
	if (measure) {
		while (!stop && (dt = mono() - t0) < 1.0)
			usleep((useconds_t)((1.0 - dt) * 1e6) + 1000);
		dt = mono() - t0;
		for (i = 0; i < st->nrows; i++) {
			if (done_bytes(st, &st->rows[i], st->since, &b) == -1)
				goto out;
			st->rows[i].rate = b.complete_bytes > a[i].complete_bytes ?
			    (double)(b.complete_bytes - a[i].complete_bytes) / dt :
			    0.0;
		}
	}
	st->hash_failures = store_hash_failures(st->store);
	if (store_local_bytes(st->store, &st->store_bytes) == -1)
		st->store_bytes = 0;
	rc = 0;
out:
	free(a);
	return rc;
}

static void
watch_line(const struct srep *rep, const struct srow *r, int tty)
{
	const struct sscan *sc = &r->sc;
	char rt[24], e[24];

	printf("%s%-12s %15" PRIu64 " %6.1f%% %10s %8s  %" PRIu64 "/%" PRIu64
	    " segments%s\n", tty ? "\r" : "", r->name, sc->bytes_done,
	    srep_pct(rep, sc->bytes_done, sc->bytes), sfmt_rate(r->rate, rt,
	    sizeof(rt)), sfmt_duration(sfmt_eta(sc->bytes_done, sc->bytes,
	    r->rate), e, sizeof(e)), sc->segs_done, sc->segs,
	    tty ? "\033[K" : "");
}

static void
watch_json(const struct srep *rep)
{
	json_t *j;

	if ((j = sjson_watch(rep)) != NULL)
		json_dumpf(j, stdout, JSON_COMPACT | JSON_REAL_PRECISION(6));
	putchar('\n');
	json_decref(j);
}

/* Sleeps what is left of the second that started at monotonic t. */
static void
rest_of_second(double t)
{
	struct timespec ts;
	double left = t + 1.0 - mono();

	if (left < 0.05)
		left = 0.05;
	ts.tv_sec = (time_t)left;
	ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
	nanosleep(&ts, NULL);
}

/* A new scan of every stream for the next frame of -w. */
static void
rescan(struct srep *st)
{
	size_t i;

	st->now = time(NULL);
	st->since = st->now - st->mi.depth;
	for (i = 0; i < st->nrows; i++) {
		sscan_clear(&st->rows[i].sc);
		sscan_init(&st->rows[i].sc, st->since);
	}
}

/*
 * -w and -w -j: progress lines a second apart, each frame a report as
 * collect() makes one (the rates the mount's, or measured over the
 * frame's second when it publishes none).
 */
static int
watch_lines(struct srep *st, int json)
{
	int tty = isatty(STDOUT_FILENO), first = 1;
	struct stotal t;
	double now;
	size_t i;

	while (!stop) {
		now = mono();
		rescan(st);
		if (collect(st) == -1)
			return -1;
		if (stop)
			break;
		if (json)
			watch_json(st);
		else {
			if (tty && !first)
				printf("\033[%zuA", st->nrows + 1);
			for (i = 0; i < st->nrows; i++)
				watch_line(st, &st->rows[i], tty);
			srep_total(st, &t);
			watch_line(st, &t.row, tty);
		}
		fflush(stdout);
		first = 0;
		rest_of_second(now);
	}
	return 0;
}

/* Columns of the terminal on stdout, or 0. */
static size_t
tty_columns(void)
{
	struct winsize ws;

	if (!isatty(STDOUT_FILENO) ||
	    ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == -1)
		return 0;
	return ws.ws_col;
}

/* The report in the chosen format into f. */
static int
render(const struct status *s, FILE *f)
{
	size_t cols, width = TLINE_WIDTH;
	json_t *j;
	int rc = 0;

	switch (s->fmt) {
	case FMT_TABLE:
		stext_table(f, &s->r);
		break;
	case FMT_TLINE:
		/* "NAME         |" before the bar and "|" after it. */
		if ((cols = tty_columns()) > 24)
			width = cols - 15;
		stext_timeline(f, &s->r, width);
		break;
	case FMT_JSON:
		if ((j = sjson_report(&s->r)) == NULL)
			return errno = ENOMEM, -1;
		rc = json_dumpf(j, f, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
		json_decref(j);
		fputc('\n', f);
		break;
	case FMT_PROM:
		sprom_report(f, &s->r);
		break;
	case FMT_HTML:
		shtml_report(f, &s->r, s->watch);
		break;
	}
	return rc;
}

/*
 * Writes the report to s->out through a temporary name in the same
 * folder and a rename, so that a reader (nginx, node_exporter) sees the
 * old file or the new one, never a part. No fsync: a status page that a
 * crash loses is written again a second later.
 */
static int
write_file(const struct status *s)
{
	char tmp[PATH_MAX], *dir, *base, *buf = NULL;
	size_t len = 0;
	FILE *f;
	int fd = -1, made = 0, rc = -1, e;

	if ((f = open_memstream(&buf, &len)) == NULL)
		return -1;
	if (render(s, f) == -1 || ferror(f)) {
		fclose(f);
		goto out;
	}
	if (fclose(f) == EOF)
		goto out;
	base = strrchr(s->out, '/');
	dir = base == NULL ? "" : (char *)s->out;
	base = base == NULL ? (char *)s->out : base + 1;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%.*s.%s.%ld.tmp",
	    (int)(base - dir), dir, base, (long)getpid()) >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		goto out;
	}
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0644)) == -1)
		goto out;
	made = 1;
	if (write(fd, buf, len) != (ssize_t)len) {
		if (errno == 0)
			errno = ENOSPC;
		goto out;
	}
	e = close(fd);
	fd = -1;
	if (e == -1 || rename(tmp, s->out) == -1)
		goto out;
	rc = 0;
out:
	e = errno;
	if (fd != -1)
		close(fd);
	if (rc == -1 && made)
		unlink(tmp);
	free(buf);
	errno = e;
	return rc;
}

/* The report to -o/-H's file or stdout; says what failed on stderr. */
static int
emit(struct status *s)
{
	const char *to = s->out != NULL ? s->out : "stdout";
	int rc;

	if (s->out != NULL)
		rc = write_file(s);
	else if ((rc = render(s, stdout)) == 0 && (fflush(stdout) == EOF ||
	    ferror(stdout)))
		rc = -1;
	if (rc == -1)
		fprintf(stderr, "dvrfs-status: %s: %s\n", to, strerror(errno));
	return rc;
}

/*
 * -w with -p, -t, -H or -o: a whole report a second, until SIGINT or
 * SIGTERM.
 * Returns 0, -1 with errno when the store cannot be read, or -2 when the
 * report could not be written (already said).
 */
static int
watch_reports(struct status *s)
{
	int tty = s->out == NULL && isatty(STDOUT_FILENO);
	double t;

	while (!stop) {
		t = mono();
		rescan(&s->r);
		if (collect(&s->r) == -1)
			return -1;
		if (stop)
			break;
		if (tty)
			fputs("\033[H\033[J", stdout);
		if (emit(s) == -1)
			return -2;
		rest_of_second(t);
	}
	return 0;
}

/* Sets the format; -1 when a second one is asked for. */
static int
set_fmt(struct status *s, enum format fmt)
{
	if (s->fmt != FMT_TABLE && s->fmt != fmt)
		return -1;
	s->fmt = fmt;
	return 0;
}

static int
options(struct status *s, int argc, char **argv)
{
	int ch, bad = 0;

	while ((ch = getopt(argc, argv, "H:hjo:ptw")) != -1) {
		switch (ch) {
		case 'H':
			bad |= set_fmt(s, FMT_HTML) == -1 || s->out != NULL;
			s->out = optarg;
			break;
		case 'j': bad |= set_fmt(s, FMT_JSON) == -1; break;
		case 'o':
			bad |= s->out != NULL;
			s->out = optarg;
			break;
		case 'p': bad |= set_fmt(s, FMT_PROM) == -1; break;
		case 't': bad |= set_fmt(s, FMT_TLINE) == -1; break;
		case 'w': s->watch = 1; break;
		case 'h': usage(); exit(0);
		default: return -1;
		}
	}
	if (bad || (s->out != NULL && *s->out == '\0'))
		return -1;
	return argc - optind == 1 ? 0 : -1;
}

int
main(int argc, char **argv)
{
	struct status s;
	struct srep *st = &s.r;
	struct store_conf conf = { .readonly = 1 };
	struct sigaction sa;
	const char *arg;
	size_t i;
	int rc = 1, w;

	log_init("dvrfs-status", LOG_LVL_WARN);
	memset(&s, 0, sizeof(s));
	if (options(&s, argc, argv) == -1) {
		usage();
		return 1;
	}
	arg = argv[optind];
	if (locate(st, arg) == -1) {
		fprintf(stderr, "dvrfs-status: %s: not a dvrfs mount point or "
		    "store\n", arg);
		goto out;
	}
	if (st->mnt[0] != '\0' && st->mi.spec == NULL &&
	    sinfo_mount_load(st->store_dir, &st->mi) == -1 && errno != ENOENT)
		log_warn("%s/" DVRFS_MOUNT_FILE, st->store_dir);
	if ((st->store = store_open(st->store_dir, &conf)) == NULL) {
		fprintf(stderr, "dvrfs-status: %s: %s\n", st->store_dir,
		    strerror(errno));
		goto out;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	st->now = time(NULL);
	st->since = st->now - st->mi.depth;
	if (list_streams(st) == -1)
		goto fail;
	if (s.watch && s.out == NULL && (s.fmt == FMT_TABLE ||
	    s.fmt == FMT_JSON)) {
		if (watch_lines(st, s.fmt == FMT_JSON) == -1)
			goto fail;
	} else if (s.watch) {
		if ((w = watch_reports(&s)) == -2)
			goto out;	/* said by emit() */
		if (w == -1)
			goto fail;
	} else if (collect(st) == -1)
		goto fail;
	else if (emit(&s) == -1)
		goto out;
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "dvrfs-status: %s: %s\n", st->store_dir,
	    strerror(errno));
out:
	for (i = 0; i < st->nrows; i++)
		sscan_clear(&st->rows[i].sc);
	free(st->rows);
	sinfo_live_clear(&st->li);
	sinfo_mount_clear(&st->mi);
	store_close(st->store);
	return rc;
}
