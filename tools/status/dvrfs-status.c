/*
 * dvrfs-status: how far a secondary's store is filled, like rsync's
 * summary. Reads the store (read-only, also while the daemon runs) and,
 * when the store is mounted, the daemon's live counters from the mount
 * root's extended attributes.
 */
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "dvrfs_status.h"
#include "log.h"
#include "status_fmt.h"
#include "status_info.h"
#include "status_scan.h"
#include "store.h"

#define GAPS_SHOWN	10	/* per stream in the text report */
#define XATTR_MAX	(1024 * 1024)

struct row {
	char		 name[256];
	int		 here;		/* the store has the folder */
	struct sscan	 sc;
	uint64_t	 done;		/* complete bytes now (-w) */
	uint64_t	 total;
	uint64_t	 segs_done;
	uint64_t	 segs;
	double		 rate;		/* bytes/s, -1 unknown */
};

struct status {
	int		 json;
	int		 watch;
	char		 store_dir[PATH_MAX];
	char		 mnt[PATH_MAX];	/* "" when not mounted */
	struct sinfo_mount mi;
	int		 have_live;
	struct sinfo_live li;
	struct store	*store;
	struct row	*rows;
	size_t		 nrows;
	int64_t		 now;
	int64_t		 since;
	uint64_t	 hash_failures;
};

static volatile sig_atomic_t stop;

/* The mount has not walked the primary yet: nothing is "done". */
static int listing;

static double
pct(uint64_t done, uint64_t total)
{
	double p = sfmt_percent(done, total);

	if (!listing)
		return p;
	return total == 0 ? 0.0 : p > 99.9 ? 99.9 : p;
}

static void
usage(void)
{
	fprintf(stderr, "usage: dvrfs-status [-jw] MOUNTPOINT|STORE\n");
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
find_mount(struct status *st, const char *path)
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
locate(struct status *st, const char *arg)
{
	char db[PATH_MAX], real[PATH_MAX];
	struct stat sb;
	struct status m;

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
row_add(struct status *st, const char *name)
{
	struct row *v;

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
	struct status *st = arg;

	if (e->type != STORE_DIR)
		return 0;
	return row_add(st, e->name) == -1 ? -1 : 0;
}

/* The streams: dvrfs.json's list, or every top-level folder. */
static int
list_streams(struct status *st)
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
row_here(struct status *st, const struct row *r)
{
	struct store_ent e;

	return store_resolve(st->store, r->name, &e) == 0 &&
	    e.type == STORE_DIR;
}

/* Complete bytes of the stream's segments at or after since. */
static int
done_bytes(struct status *st, const struct row *r, int64_t since,
    struct store_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!r->here)
		return 0;
	return store_stats(st->store, r->name, since, out);
}

static void
read_live(struct status *st)
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
		listing = st->li.listing;
	} else {
		log_warnx("%s: %s is not a counters object", st->mnt,
		    DVRFS_XATTR_STATUS);
		sinfo_live_clear(&st->li);
	}
	free(v);
}

/*
 * One full report: walks every stream, and when mounted measures the
 * rate over about a second (complete bytes at the same since, before the
 * walk and after it).
 */
static int
collect(struct status *st)
{
	struct store_stats *a = NULL, b;
	double t0, dt;
	size_t i;
	int rc = -1;

	if ((a = calloc(st->nrows + 1, sizeof(*a))) == NULL)
		return -1;
	/* Before the walk: whether the mount had walked the primary yet. */
	if (st->mnt[0] != '\0')
		read_live(st);
	t0 = mono();
	for (i = 0; i < st->nrows; i++) {
		struct row *r = &st->rows[i];

		r->here = row_here(st, r);
		if (st->mnt[0] != '\0' && done_bytes(st, r, st->since,
		    &a[i]) == -1)
			goto out;
	}
	for (i = 0; i < st->nrows; i++) {
		struct row *r = &st->rows[i];

		if (r->here && sscan_walk(st->store, r->name, &r->sc) == -1) {
			log_warn("%s", r->name);
			goto out;
		}
	}
	if (st->mnt[0] != '\0') {
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
	if (store_stats(st->store, "", 0, &b) == 0)
		st->hash_failures = b.hash_failures;
	rc = 0;
out:
	free(a);
	return rc;
}

/* The sum of all rows, as a row. */
static void
sum_rows(const struct status *st, struct row *t, int64_t *lag)
{
	const struct sscan *sc;
	size_t i;
	int have_rate = 0;

	memset(t, 0, sizeof(*t));
	snprintf(t->name, sizeof(t->name), "total");
	sscan_init(&t->sc, st->since);
	t->rate = 0;
	*lag = -1;
	for (i = 0; i < st->nrows; i++) {
		sc = &st->rows[i].sc;
		t->sc.segs += sc->segs;
		t->sc.bytes += sc->bytes;
		t->sc.segs_done += sc->segs_done;
		t->sc.bytes_done += sc->bytes_done;
		t->sc.bytes_partial += sc->bytes_partial;
		t->sc.ngaps += sc->ngaps;
		if (sc->oldest >= 0 && (t->sc.oldest < 0 ||
		    sc->oldest < t->sc.oldest))
			t->sc.oldest = sc->oldest;
		if (sc->newest > t->sc.newest)
			t->sc.newest = sc->newest;
		if (sc->newest_known > t->sc.newest_known)
			t->sc.newest_known = sc->newest_known;
		if (sc->newest >= 0 && sc->newest_known - sc->newest > *lag)
			*lag = sc->newest_known - sc->newest;
		if (st->rows[i].rate >= 0) {
			t->rate += st->rows[i].rate;
			have_rate = 1;
		}
	}
	if (!have_rate)
		t->rate = -1;
}

static int64_t
row_lag(const struct sscan *sc)
{
	if (sc->newest < 0 || sc->newest_known < 0)
		return -1;
	return sc->newest_known - sc->newest;
}

static json_t *
opt_int(int64_t v)
{
	return v < 0 ? json_null() : json_integer(v);
}

static json_t *
row_json(const struct row *r, int64_t lag, int with_gaps)
{
	const struct sscan *sc = &r->sc;
	json_t *o, *gaps;
	size_t i;

	o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:f, s:o, s:o, s:o, s:o, s:o}",
	    "bytes_done", (json_int_t)sc->bytes_done,
	    "bytes_total", (json_int_t)sc->bytes,
	    "bytes_partial", (json_int_t)sc->bytes_partial,
	    "segments_done", (json_int_t)sc->segs_done,
	    "segments_total", (json_int_t)sc->segs,
	    "percent", pct(sc->bytes_done, sc->bytes),
	    "rate_bps", r->rate < 0 ? json_null() : json_integer(
	    (json_int_t)(r->rate + 0.5)),
	    "eta_s", opt_int(sfmt_eta(sc->bytes_done, sc->bytes, r->rate)),
	    "live_lag_s", opt_int(lag),
	    "oldest", opt_int(sc->oldest),
	    "newest", opt_int(sc->newest));
	if (o == NULL || !with_gaps)
		return o;
	if ((gaps = json_array()) == NULL) {
		json_decref(o);
		return NULL;
	}
	for (i = 0; i < sc->ngaps; i++)
		json_array_append_new(gaps, json_pack("{s:I, s:I}", "start",
		    (json_int_t)sc->gaps[i].start, "end",
		    (json_int_t)sc->gaps[i].end));
	json_object_set_new(o, "gaps", gaps);
	return o;
}

static int
print_json(const struct status *st)
{
	json_t *j, *streams;
	struct row t;
	int64_t lag;
	size_t i;
	int rc;

	sum_rows(st, &t, &lag);
	streams = json_object();
	for (i = 0; i < st->nrows; i++)
		json_object_set_new(streams, st->rows[i].name,
		    row_json(&st->rows[i], row_lag(&st->rows[i].sc), 1));
	j = json_pack("{s:s, s:b, s:o, s:o, s:I, s:I, s:I, s:o, s:o}",
	    "store", st->store_dir,
	    "mounted", st->mnt[0] != '\0',
	    "mountpoint", st->mnt[0] ? json_string(st->mnt) : json_null(),
	    "spec", st->mi.spec ? json_string(st->mi.spec) : json_null(),
	    "depth_s", (json_int_t)st->mi.depth,
	    "now", (json_int_t)st->now,
	    "hash_failures", (json_int_t)st->hash_failures,
	    "total", row_json(&t, lag, 0),
	    "streams", streams);
	if (j == NULL)
		return -1;
	if (st->have_live) {
		json_object_set_new(j, "reads", json_pack("{s:I, s:I, s:I}",
		    "local", (json_int_t)st->li.reads_local,
		    "fetched", (json_int_t)st->li.reads_fetched,
		    "failed", (json_int_t)st->li.reads_failed));
		json_object_set(j, "counters", st->li.raw);
	}
	rc = json_dumpf(j, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
	json_decref(j);
	if (rc == -1)
		return -1;
	putchar('\n');
	return 0;
}

static void
print_row(const struct row *r, int64_t lag)
{
	char done[16], total[16], rate[24], eta[24], lg[24], o[32], n[32];
	char segs[48];
	const struct sscan *sc = &r->sc;

	snprintf(segs, sizeof(segs), "%" PRIu64 "/%" PRIu64, sc->segs_done,
	    sc->segs);
	printf("%-12s %8s %8s %6.1f%% %15s %10s %8s %7s  %-20s  %s\n",
	    r->name, sfmt_bytes(sc->bytes_done, done, sizeof(done)),
	    sfmt_bytes(sc->bytes, total, sizeof(total)),
	    pct(sc->bytes_done, sc->bytes), segs,
	    sfmt_rate(r->rate, rate, sizeof(rate)),
	    sfmt_duration(sfmt_eta(sc->bytes_done, sc->bytes, r->rate), eta,
	    sizeof(eta)),
	    lag < 0 ? "-" : sfmt_duration(lag, lg, sizeof(lg)),
	    sfmt_time(sc->oldest, o, sizeof(o)),
	    sfmt_time(sc->newest, n, sizeof(n)));
}

static void
print_text(const struct status *st)
{
	char a[32], b[32], c[32], d[32];
	const struct sscan *sc;
	struct row t;
	int64_t lag;
	size_t i, g;

	printf("store %s, ", st->store_dir);
	if (st->mnt[0] != '\0')
		printf("mounted on %s", st->mnt);
	else
		printf("not mounted");
	if (st->mi.spec != NULL)
		printf(st->mnt[0] ? " from %s" : " (last from %s)",
		    st->mi.spec);
	printf(", depth %s\n\n", sfmt_duration(st->mi.depth, a, sizeof(a)));
	printf("%-12s %8s %8s %7s %15s %10s %8s %7s  %-20s  %s\n", "stream",
	    "done", "total", "%", "segments", "rate", "eta", "lag",
	    "oldest", "newest");
	for (i = 0; i < st->nrows; i++)
		print_row(&st->rows[i], row_lag(&st->rows[i].sc));
	sum_rows(st, &t, &lag);
	print_row(&t, lag);

	if (t.sc.ngaps > 0)
		printf("\ngaps (missing here, present on the primary):\n");
	for (i = 0; i < st->nrows; i++) {
		sc = &st->rows[i].sc;
		for (g = 0; g < sc->ngaps && g < GAPS_SHOWN; g++)
			printf("  %-12s %s .. %s  %s\n", st->rows[i].name,
			    sfmt_time(sc->gaps[g].start, a, sizeof(a)),
			    sfmt_time(sc->gaps[g].end, b, sizeof(b)),
			    sfmt_duration(sc->gaps[g].end - sc->gaps[g].start,
			    c, sizeof(c)));
		if (sc->ngaps > GAPS_SHOWN)
			printf("  %-12s and %zu more\n", st->rows[i].name,
			    sc->ngaps - GAPS_SHOWN);
	}
	if (st->have_live)
		printf("\nreads: %" PRIu64 " local, %" PRIu64 " fetched, %"
		    PRIu64 " failed (%s local, %s fetched)\n",
		    st->li.reads_local, st->li.reads_fetched,
		    st->li.reads_failed,
		    sfmt_bytes(st->li.bytes_local, c, sizeof(c)),
		    sfmt_bytes(st->li.bytes_fetched, d, sizeof(d)));
	if (st->hash_failures > 0)
		printf("hash failures: %" PRIu64 "\n", st->hash_failures);
}

/* One frame of -w: totals per stream from the index, rate since last. */
static int
watch_frame(struct status *st, int64_t prev_since, double dt)
{
	struct store_stats cur, old;
	size_t i;

	for (i = 0; i < st->nrows; i++) {
		struct row *r = &st->rows[i];

		r->here = row_here(st, r);
		if (done_bytes(st, r, st->since, &cur) == -1)
			return -1;
		/* The rate compares like with like: the same since. */
		if (st->mnt[0] != '\0' && dt > 0) {
			if (prev_since == st->since)
				old = cur;
			else if (done_bytes(st, r, prev_since, &old) == -1)
				return -1;
			r->rate = old.complete_bytes > r->done ?
			    (double)(old.complete_bytes - r->done) / dt : 0.0;
		}
		r->done = cur.complete_bytes;
		r->total = cur.bytes;
		r->segs_done = cur.complete_files;
		r->segs = cur.files;
	}
	return 0;
}

static void
watch_line(const char *name, uint64_t done, uint64_t total, uint64_t sd,
    uint64_t s, double rate, int tty)
{
	char r[24], e[24];

	printf("%s%-12s %15" PRIu64 " %6.1f%% %10s %8s  %" PRIu64 "/%" PRIu64
	    " segments%s\n", tty ? "\r" : "", name, done,
	    pct(done, total), sfmt_rate(rate, r, sizeof(r)),
	    sfmt_duration(sfmt_eta(done, total, rate), e, sizeof(e)), sd, s,
	    tty ? "\033[K" : "");
}

static void
watch_json(const struct status *st, uint64_t done, uint64_t total,
    uint64_t sd, uint64_t s, double rate)
{
	json_t *j, *streams;
	size_t i;

	streams = json_object();
	for (i = 0; i < st->nrows; i++) {
		const struct row *r = &st->rows[i];

		json_object_set_new(streams, r->name, json_pack("{s:I, s:I, "
		    "s:I, s:I, s:f, s:o, s:o}", "bytes_done", (json_int_t)r->done,
		    "bytes_total", (json_int_t)r->total,
		    "segments_done", (json_int_t)r->segs_done,
		    "segments_total", (json_int_t)r->segs,
		    "percent", pct(r->done, r->total),
		    "rate_bps", r->rate < 0 ? json_null() :
		    json_integer((json_int_t)(r->rate + 0.5)),
		    "eta_s", opt_int(sfmt_eta(r->done, r->total, r->rate))));
	}
	j = json_pack("{s:I, s:b, s:{s:I, s:I, s:I, s:I, s:f, s:o, s:o}, s:o}",
	    "now", (json_int_t)st->now, "mounted", st->mnt[0] != '\0',
	    "total", "bytes_done", (json_int_t)done, "bytes_total",
	    (json_int_t)total, "segments_done", (json_int_t)sd,
	    "segments_total", (json_int_t)s, "percent", pct(done,
	    total), "rate_bps", rate < 0 ? json_null() :
	    json_integer((json_int_t)(rate + 0.5)), "eta_s",
	    opt_int(sfmt_eta(done, total, rate)), "streams", streams);
	if (j != NULL)
		json_dumpf(j, stdout, JSON_COMPACT | JSON_REAL_PRECISION(6));
	putchar('\n');
	json_decref(j);
}

/* -w: redraws until SIGINT or SIGTERM. */
static int
watch(struct status *st)
{
	struct timespec ts;
	int tty = isatty(STDOUT_FILENO), first = 1;
	uint64_t done, total, sd, s;
	int64_t prev_since = st->since;
	double last = mono(), now, rate, left;
	size_t i;

	while (!stop) {
		now = mono();
		st->now = time(NULL);
		st->since = st->now - st->mi.depth;
		if (watch_frame(st, prev_since, first ? 0 : now - last) == -1)
			return -1;
		prev_since = st->since;
		last = now;
		done = total = sd = s = 0;
		rate = -1;
		for (i = 0; i < st->nrows; i++) {
			done += st->rows[i].done;
			total += st->rows[i].total;
			sd += st->rows[i].segs_done;
			s += st->rows[i].segs;
			if (st->rows[i].rate >= 0)
				rate = (rate < 0 ? 0 : rate) + st->rows[i].rate;
		}
		if (st->json)
			watch_json(st, done, total, sd, s, rate);
		else {
			if (tty && !first)
				printf("\033[%zuA", st->nrows + 1);
			for (i = 0; i < st->nrows; i++)
				watch_line(st->rows[i].name, st->rows[i].done,
				    st->rows[i].total, st->rows[i].segs_done,
				    st->rows[i].segs, st->rows[i].rate, tty);
			watch_line("total", done, total, sd, s, rate, tty);
		}
		fflush(stdout);
		first = 0;
		/* A frame a second, however long the queries took. */
		left = now + 1.0 - mono();
		if (left < 0.05)
			left = 0.05;
		ts.tv_sec = (time_t)left;
		ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
		nanosleep(&ts, NULL);
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct status st;
	struct store_conf conf = { .readonly = 1 };
	struct sigaction sa;
	size_t i;
	int ch, rc = 1;

	log_init("dvrfs-status", LOG_LVL_WARN);
	memset(&st, 0, sizeof(st));
	while ((ch = getopt(argc, argv, "hjw")) != -1) {
		switch (ch) {
		case 'j': st.json = 1; break;
		case 'w': st.watch = 1; break;
		case 'h': usage(); return 0;
		default: usage(); return 1;
		}
	}
	if (argc - optind != 1) {
		usage();
		return 1;
	}
	if (locate(&st, argv[optind]) == -1) {
		fprintf(stderr, "dvrfs-status: %s: not a dvrfs mount point or "
		    "store\n", argv[optind]);
		goto out;
	}
	if (st.mnt[0] != '\0' && st.mi.spec == NULL &&
	    sinfo_mount_load(st.store_dir, &st.mi) == -1 && errno != ENOENT)
		log_warn("%s/" DVRFS_MOUNT_FILE, st.store_dir);
	if ((st.store = store_open(st.store_dir, &conf)) == NULL) {
		fprintf(stderr, "dvrfs-status: %s: %s\n", st.store_dir,
		    strerror(errno));
		goto out;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	st.now = time(NULL);
	st.since = st.now - st.mi.depth;
	if (list_streams(&st) == -1) {
		fprintf(stderr, "dvrfs-status: %s: %s\n", st.store_dir,
		    strerror(errno));
		goto out;
	}
	if (st.watch) {
		rc = watch(&st) == -1 ? 1 : 0;
		if (rc != 0)
			fprintf(stderr, "dvrfs-status: %s: %s\n", st.store_dir,
			    strerror(errno));
		goto out;
	}
	if (collect(&st) == -1) {
		fprintf(stderr, "dvrfs-status: %s: %s\n", st.store_dir,
		    strerror(errno));
		goto out;
	}
	if (st.json)
		rc = print_json(&st) == -1 ? 1 : 0;
	else {
		print_text(&st);
		rc = 0;
	}
out:
	for (i = 0; i < st.nrows; i++)
		sscan_clear(&st.rows[i].sc);
	free(st.rows);
	sinfo_live_clear(&st.li);
	sinfo_mount_clear(&st.mi);
	store_close(st.store);
	return rc;
}
