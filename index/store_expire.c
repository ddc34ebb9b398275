/*
 * store_expire: retention by DVR time, the size cap, and statistics.
 * Calls store_sql.c, store_data.c (dropping local data) and store_ns.c
 * (store_resolve); see store_impl.h for the layering and the locks.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store.h"
#include "store_impl.h"

#define EXPIRE_BATCH	64	/* files dropped per transaction */

/* Drops the local data of id. s->wlock held, in a transaction. */
static int
drop(struct store *s, uint64_t id)
{
	struct ent e;
	char *rel;
	int r;

	if (store_get_c(&s->wr, id, &e) == -1)
		return errno == ENOENT ? 0 : -1;
	if ((rel = store_path_c(&s->wr, id)) == NULL)
		return -1;
	r = store_drop_local(s, &e, rel);
	free(rel);
	return r;
}

/*
 * Local bytes: what the index records of partial and complete files (a
 * counter, store_sql.c), on connection c whose lock the caller holds.
 */
static int
local_bytes(struct conn *c, uint64_t *out)
{
	sqlite3_stmt *st;
	sqlite3_int64 v = 0;
	int rc;

	if ((st = store_q(c, Q_LOCAL_BYTES)) == NULL)
		return -1;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return store_sqlerr(c, rc, "local bytes");
	if (v < 0) {
		log_warnx("index: local bytes %lld is corrupt", (long long)v);
		errno = EIO;
		return -1;
	}
	*out = (uint64_t)v;
	return 0;
}

/*
 * What a sweep drops, a batch per transaction: whoever else needs the
 * write lock (a listing, the feed, an install) waits for one batch, not
 * for a day of segments.
 */
struct sweep {
	int		 cap;		/* 0: retention, 1: the size cap */
	int64_t		 cutoff;	/* retention: files older than this */
	uint64_t	 dir;		/* retention: below it, 0 everywhere */
	uint64_t	 goal;		/* the cap: while local data is over it */
};

/*
 * One batch of w: up to EXPIRE_BATCH files older than the cutoff, or of
 * the least recently read files while the local data is over the goal.
 * s->wlock held, in a transaction. Returns how many, or -1.
 */
static ssize_t
sweep_some(struct store *s, const struct sweep *w)
{
	sqlite3_stmt *st;
	uint64_t *ids, total;
	size_t n, i;
	ssize_t r = 0;

	if ((st = store_q(&s->wr, w->cap ? Q_EVICT : w->dir ?
	    Q_EXPIRED_UNDER : Q_EXPIRED)) == NULL)
		return -1;
	if (w->cap)
		sqlite3_bind_int64(st, 1, EXPIRE_BATCH);
	else {
		sqlite3_bind_int64(st, 1, w->cutoff);
		if (w->dir)
			sqlite3_bind_int64(st, 2, (sqlite3_int64)w->dir);
		sqlite3_bind_int64(st, 3, EXPIRE_BATCH);
	}
	if (store_ids(&s->wr, st, &ids, &n) == -1)
		return -1;
	for (i = 0; i < n && r != -1; i++) {
		if (w->cap && local_bytes(&s->wr, &total) == -1)
			r = -1;
		else if (w->cap && total <= w->goal)
			break;
		else
			r = drop(s, ids[i]) == -1 ? -1 : r + 1;
	}
	free(ids);
	return r;
}

/* Runs w to its end. Returns the files dropped, or -1. */
static ssize_t
sweep(struct store *s, const struct sweep *w)
{
	ssize_t n, total = 0;
	int r;

	do {
		pthread_mutex_lock(&s->wlock);
		if ((r = store_begin(&s->wr)) == 0) {
			n = sweep_some(s, w);
			r = store_end(&s->wr, n == -1 ? -1 : 0);
		}
		pthread_mutex_unlock(&s->wlock);
		if (r == -1)
			return -1;
		total += n;
	} while (n == EXPIRE_BATCH);
	return total;
}

/* Drops everything older than cutoff below dir (0: everywhere). */
static ssize_t
expire_old(struct store *s, int64_t cutoff, uint64_t dir)
{
	struct sweep w = { .cutoff = cutoff, .dir = dir };

	return sweep(s, &w);
}

/*
 * The size cap: when the local data is over it, drops the least
 * recently read files down to 98 % of it (the next live segments then
 * fit without another pass right away). Files outside the depth went
 * first, in expire_old.
 */
static ssize_t
evict(struct store *s)
{
	struct sweep w = { .cap = 1 };
	uint64_t total;

	if (store_local_bytes(s, &total) == -1)
		return -1;
	if (total <= s->max_bytes)
		return 0;
	w.goal = s->max_bytes - s->max_bytes / 50;
	return sweep(s, &w);
}

ssize_t
store_expire(struct store *s, int64_t now, int64_t depth)
{
	int64_t cutoff = depth > 0 ? now - depth : INT64_MIN;
	ssize_t old = 0, cap = 0;

	if (s->ro) {
		errno = EROFS;
		return -1;
	}
	if (depth > 0 && (old = expire_old(s, cutoff, 0)) == -1)
		return -1;
	if (s->max_bytes > 0 && (cap = evict(s)) == -1)
		return -1;
	return old + cap;
}

ssize_t
store_expire_under(struct store *s, const char *rel, int64_t now,
    int64_t depth)
{
	struct store_ent dir;

	if (s->ro || depth <= 0) {
		errno = s->ro ? EROFS : EINVAL;
		return -1;
	}
	if (store_resolve(s, rel, &dir) == -1)
		return errno == ENOENT ? 0 : -1;
	return expire_old(s, now - depth, dir.id);
}

uint64_t
store_hash_failures(struct store *s)
{
	sqlite3_stmt *st;
	uint64_t n = 0;

	pthread_mutex_lock(&s->lock);
	if ((st = store_q(store_rdc(s), Q_HASHFAIL)) != NULL) {
		if (sqlite3_step(st) == SQLITE_ROW)
			n = (uint64_t)sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
	}
	pthread_mutex_unlock(&s->lock);
	return n;
}

int
store_stats(struct store *s, const char *rel, int64_t since,
    struct store_stats *out)
{
	char path[PATH_MAX];
	struct store_ent root;
	struct conn c;
	sqlite3_stmt *st;
	int r = -1;

	memset(out, 0, sizeof(*out));
	memset(&c, 0, sizeof(c));
	if (store_resolve(s, rel ? rel : "", &root) == -1)
		return -1;
	/* Its own connection: a scan must not hold up the readers. */
	if (store_xpath(s, path, sizeof(path), "index.db", NULL) == -1 ||
	    store_conn_open(&c, path, 1, 0) == -1)
		goto out;
	if ((st = store_q(&c, root.id == STORE_ROOT_ID ? Q_STATS_ALL :
	    Q_STATS_SUB)) == NULL)
		goto out;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)root.id);
	sqlite3_bind_int64(st, 2, since);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		errno = EIO;
		goto out;
	}
	out->files = (uint64_t)sqlite3_column_int64(st, 0);
	out->bytes = (uint64_t)sqlite3_column_double(st, 1);
	out->complete_files = (uint64_t)sqlite3_column_double(st, 2);
	out->complete_bytes = (uint64_t)sqlite3_column_double(st, 3);
	out->partial_files = (uint64_t)sqlite3_column_double(st, 4);
	out->partial_bytes = (uint64_t)sqlite3_column_double(st, 5);
	sqlite3_reset(st);
	if ((st = store_q(&c, Q_HASHFAIL)) != NULL) {
		if (sqlite3_step(st) == SQLITE_ROW)
			out->hash_failures =
			    (uint64_t)sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
	}
	r = 0;
out:
	store_conn_close(&c);
	return r;
}

int
store_local_bytes(struct store *s, uint64_t *out)
{
	int rc;

	*out = 0;
	pthread_mutex_lock(&s->lock);
	rc = local_bytes(store_rdc(s), out);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int
store_room(struct store *s, uint64_t *used, uint64_t *cap)
{
	*cap = s->max_bytes;
	*used = 0;
	if (s->max_bytes == 0)
		return 0;
	return store_local_bytes(s, used);
}
