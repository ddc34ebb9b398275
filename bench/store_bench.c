/*
 * store_bench: speed of the local store's index.
 *
 *   store_bench DIR [RECORDS]
 *
 * Builds (or reuses) an index of RECORDS segment records in DIR, then
 * prints, one "name value" per line: the index build time, store_open
 * time, look-ups per second by (parent, name), RSS bytes per record,
 * durable block marks per second (4 KiB blocks, a separate store), and
 * one pass of the size cap over every record made local (a copy of the
 * index): its time, and the longest a writer waited meanwhile against
 * the longest it waited before it.
 */
#include <sys/resource.h>
#include <sys/time.h>

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store.h"

#define STREAMS	10
#define CHUNK	20000

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * CPU seconds this thread has run: a rate per CPU second does not move
 * with what else shares the machine's cores.
 */
static double
cpu_now(void)
{
	struct rusage ru;

	getrusage(RUSAGE_THREAD, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	    (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static long
rss_bytes(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb * 1024;
}

/* Segment k of a stream: 15 per minute, from 2026-01-01. */
static void
seg_name(uint64_t k, char *buf, size_t sz)
{
	uint64_t min = k / 15, sec = (k % 15) * 4;

	snprintf(buf, sz, "2026/01/%02u/%02u/%02u/%02u.ts",
	    (unsigned)(1 + min / 1440), (unsigned)(min / 60 % 24),
	    (unsigned)(min % 60), (unsigned)sec);
}

static int
build(const char *dir, uint64_t records)
{
	static const char h[] = "ab54a98ceb1f0ad2ed4e1e2cd1ab4ff0"
	    "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2";
	struct store_remote *v = calloc(CHUNK, sizeof(*v));
	char (*names)[40] = calloc(CHUNK, sizeof(*names));
	uint64_t per = records / STREAMS, k, n;
	struct store *s;
	char sdir[32];
	int i;

	if ((s = store_open(dir, NULL)) == NULL)
		return -1;
	for (i = 0; i < STREAMS; i++) {
		snprintf(sdir, sizeof(sdir), "stream%d", i);
		for (k = 0; k < per; k += n) {
			for (n = 0; n < CHUNK && k + n < per; n++) {
				seg_name(k + n, names[n], sizeof(names[n]));
				v[n] = (struct store_remote){ names[n],
				    STORE_FILE, 1048576 + (k + n) % 4096,
				    1767225600 + (int64_t)(k + n) * 4, h, NULL };
			}
			if (store_apply_listing(s, sdir, v, n, 1, 0, 0,
			    NULL) == -1) {
				store_close(s);
				return -1;
			}
		}
	}
	store_close(s);
	free(v);
	free(names);
	return 0;
}

struct target {
	uint64_t	 parent;
	char		 name[16];
};

static double
marks(const char *dir)
{
	struct store_conf c = { .block_size = 4096 };
	char path[4096];
	static uint8_t buf[4096];
	struct store_remote r;
	struct store *s;
	uint64_t ids[8], b;
	double t0, t;
	int i, n = 0;

	snprintf(path, sizeof(path), "%s.marks", dir);
	if ((s = store_open(path, &c)) == NULL)
		return -1;
	for (i = 0; i < 8; i++) {
		char nm[32];

		snprintf(nm, sizeof(nm), "m/%d", i);
		r = (struct store_remote){ nm, STORE_FILE, 4096 * 4000000ULL, 1,
		    "0000000000000000000000000000000000000000000000000000000000000000",
		    NULL };
		if (store_apply_event(s, &r, 0, &ids[i], NULL) == -1)
			return -1;
	}
	memset(buf, 7, sizeof(buf));
	t0 = now();
	for (b = 0; now() - t0 < 3; b++)
		for (i = 0; i < 8; i++, n++)
			if (store_write_block(s, ids[i], b, buf,
			    sizeof(buf)) == -1)
				return -1;
	store_sync(s);
	t = now() - t0;
	store_close(s);
	return n / t;
}

struct writer {
	struct store	*s;
	atomic_int	 phase;		/* 0 before the pass, 1 in it, 2 stop */
	double		 max_s[2];	/* longest feed event of each phase */
	int		 n;
};

/* A feed event every millisecond, each a write of the index. */
static void *
writer_run(void *arg)
{
	struct writer *w = arg;
	struct store_remote r;
	uint64_t id;
	char nm[32];
	double t0, t;
	int ph;

	while ((ph = atomic_load(&w->phase)) < 2) {
		snprintf(nm, sizeof(nm), "w/%d.ts", w->n++);
		r = (struct store_remote){ nm, STORE_FILE, 100, 1, NULL, NULL };
		t0 = now();
		if (store_apply_event(w->s, &r, 0, &id, NULL) == -1)
			break;
		t = now() - t0;
		if (t > w->max_s[ph])
			w->max_s[ph] = t;
		usleep(1000);
	}
	return NULL;
}

/* Runs sql on the index at path. */
static int
db_exec(const char *path, const char *sql)
{
	sqlite3 *db;
	int rc;

	if (sqlite3_open(path, &db) != SQLITE_OK)
		return -1;
	rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : -1;
}

/*
 * The size cap: a copy of the index with every record local (in the
 * index only: the data files are not there, and the background check
 * is told it checked them all) and read once at scattered times. A
 * first open builds the size cap's index; the second has a cap 1 %
 * under what the records hold, so one pass evicts 3 % of them (down to
 * 98 % of the cap). A writer measures its longest wait, 2 s before the
 * pass and during it.
 */
static int
evict(const char *dir)
{
	char src[4096], copy[2048], cmd[8192];
	struct store_conf c = { 0 };
	struct writer w = { 0 };
	struct store *s;
	pthread_t th;
	double t0;
	uint64_t local;
	ssize_t n;

	if (snprintf(copy, sizeof(copy), "%s.evict", dir) >=
	    (int)sizeof(copy) || snprintf(cmd, sizeof(cmd), "rm -rf '%s' &&"
	    " mkdir -p '%s' && cp '%s/index.db' '%s/index.db'", copy, copy,
	    dir, copy) >= (int)sizeof(cmd) || system(cmd) != 0 ||
	    snprintf(src, sizeof(src), "%s/index.db", copy) >=
	    (int)sizeof(src))
		return -1;
	if (db_exec(src, "UPDATE entries SET state=2, have=size,"
	    " atime=id*2654435761%1000000 WHERE type=102;"
	    "INSERT OR REPLACE INTO settings(key, value) SELECT 'check_from',"
	    " max(id) FROM entries") == -1)
		return -1;
	if ((s = store_open(copy, NULL)) == NULL ||
	    store_local_bytes(s, &local) == -1)
		return -1;
	store_close(s);
	c.max_bytes = local - local / 100;
	if ((s = store_open(copy, &c)) == NULL)
		return -1;
	w.s = s;
	if (pthread_create(&th, NULL, writer_run, &w) != 0)
		return -1;
	sleep(2);
	atomic_store(&w.phase, 1);
	t0 = now();
	n = store_expire(s, 0, 0);
	printf("evict_pass_s %.3f\n", now() - t0);
	atomic_store(&w.phase, 2);
	pthread_join(th, NULL);
	printf("evict_files %zd\n", n);
	printf("evict_write_max_ms %.1f\n", w.max_s[1] * 1000);
	printf("evict_write_idle_max_ms %.1f\n", w.max_s[0] * 1000);
	store_close(s);
	if (snprintf(cmd, sizeof(cmd), "rm -rf '%s'", copy) >= (int)sizeof(cmd))
		return -1;
	return n > 0 && system(cmd) == 0 ? 0 : -1;
}

int
main(int argc, char *argv[])
{
	uint64_t records = argc > 2 ? strtoull(argv[2], NULL, 10) : 1000000;
	struct target *tg;
	struct store_ent e;
	struct store *s;
	double t0, t, c0;
	long rss0, rss;
	size_t ntg = 100000, i, n;
	char path[4096];

	if (argc < 2 || records < STREAMS) {
		fprintf(stderr, "usage: store_bench dir [records]\n");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/index.db", argv[1]);
	if (access(path, F_OK) == -1) {
		t0 = now();
		if (build(argv[1], records) == -1) {
			perror("build");
			return 1;
		}
		printf("build_s %.2f\n", now() - t0);
		fflush(stdout);
	}

	rss0 = rss_bytes();
	t0 = now();
	if ((s = store_open(argv[1], NULL)) == NULL) {
		perror("store_open");
		return 1;
	}
	printf("open_s %.4f\n", now() - t0);

	/* Random segments, their folders resolved before the clock runs. */
	srandom(1);
	tg = calloc(ntg, sizeof(*tg));
	for (i = 0; i < ntg; i++) {
		uint64_t k = (uint64_t)random() % (records / STREAMS);
		char rel[80], seg[40], *slash;

		seg_name(k, seg, sizeof(seg));
		snprintf(rel, sizeof(rel), "stream%ld/%s", random() % STREAMS,
		    seg);
		slash = strrchr(rel, '/');
		*slash = '\0';
		if (store_resolve(s, rel, &e) == -1) {
			fprintf(stderr, "resolve %s: %s\n", rel,
			    strerror(errno));
			return 1;
		}
		tg[i].parent = e.id;
		snprintf(tg[i].name, sizeof(tg[i].name), "%s", slash + 1);
	}
	n = 0;
	c0 = cpu_now();
	t0 = now();
	do {
		for (i = 0; i < ntg; i++, n++)
			if (store_lookup(s, tg[i].parent, tg[i].name,
			    &e) == -1) {
				perror("lookup");
				return 1;
			}
		t = now() - t0;
	} while (t < 3);
	printf("lookups_per_s %.0f\n", n / t);
	printf("lookups_per_cpu_s %.0f\n", n / (cpu_now() - c0));
	rss = rss_bytes();
	printf("rss_bytes %ld\n", rss);
	printf("rss_per_record %.1f\n", (double)rss / records);
	printf("rss_growth_per_record %.1f\n", (double)(rss - rss0) / records);
	store_close(s);
	printf("marks_per_s %.0f\n", marks(argv[1]));
	fflush(stdout);
	if (evict(argv[1]) == -1) {
		perror("evict");
		return 1;
	}
	free(tg);
	return 0;
}
