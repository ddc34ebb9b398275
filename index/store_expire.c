/*
 * store_expire: retention by DVR time, the size cap, and statistics.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store.h"
#include "store_impl.h"

/* Collects the first column (ids) of st into *v; -1 on error. */
static int
ids_of(struct conn *c, sqlite3_stmt *st, uint64_t **v, size_t *n)
{
	size_t cap = 0;
	int rc;

	*v = NULL;
	*n = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			uint64_t *nv;

			cap = cap ? cap * 2 : 256;
			if ((nv = realloc(*v, cap * sizeof(*nv))) == NULL)
				return -1;
			*v = nv;
		}
		(*v)[(*n)++] = (uint64_t)sqlite3_column_int64(st, 0);
	}
	if (rc != SQLITE_DONE)
		return store_sqlerr(c, rc, "expire");
	return 0;
}

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

/* Local bytes: what the index records of partial and complete files. */
static int
local_bytes(struct store *s, uint64_t *out)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(s->wr.db, "SELECT total(have) FROM entries "
	    "WHERE state IN (1,2)", -1, &st, NULL) != SQLITE_OK)
		return store_sqlerr(&s->wr, SQLITE_ERROR, "quota");
	rc = sqlite3_step(st);
	*out = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_double(st, 0) : 0;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : store_sqlerr(&s->wr, rc, "quota");
}

ssize_t
store_expire(struct store *s, int64_t now, int64_t depth)
{
	sqlite3_stmt *st = NULL;
	uint64_t *ids = NULL, total, have;
	size_t n = 0, i;
	ssize_t dropped = 0;
	int64_t cutoff = depth > 0 ? now - depth : INT64_MIN;
	int e;

	if (s->ro) {
		errno = EROFS;
		return -1;
	}
	pthread_mutex_lock(&s->wlock);
	if (store_txn(&s->wr, Q_BEGIN) == -1)
		goto fail_unlocked;
	if (depth > 0) {
		if (sqlite3_prepare_v2(s->wr.db, "SELECT id FROM entries WHERE"
		    " state IN (1,2) AND t<?1", -1, &st, NULL) != SQLITE_OK) {
			store_sqlerr(&s->wr, SQLITE_ERROR, "expire");
			goto fail;
		}
		sqlite3_bind_int64(st, 1, cutoff);
		if (ids_of(&s->wr, st, &ids, &n) == -1)
			goto fail;
		sqlite3_finalize(st);
		st = NULL;
		for (i = 0; i < n; i++) {
			if (drop(s, ids[i]) == -1)
				goto fail;
			dropped++;
		}
		free(ids);
		ids = NULL;
	}
	if (s->max_bytes > 0) {
		if (local_bytes(s, &total) == -1)
			goto fail;
		if (total > s->max_bytes) {
			/* Outside the depth first, then least recently read. */
			if (sqlite3_prepare_v2(s->wr.db, "SELECT id,have FROM "
			    "entries WHERE state IN (1,2) ORDER BY t>=?1, "
			    "atime, t", -1, &st, NULL) != SQLITE_OK) {
				store_sqlerr(&s->wr, SQLITE_ERROR, "quota");
				goto fail;
			}
			sqlite3_bind_int64(st, 1, cutoff);
			while (total > s->max_bytes &&
			    sqlite3_step(st) == SQLITE_ROW) {
				uint64_t id = (uint64_t)sqlite3_column_int64(st,
				    0);

				have = (uint64_t)sqlite3_column_int64(st, 1);
				if (drop(s, id) == -1)
					goto fail;
				total -= have < total ? have : total;
				dropped++;
			}
			sqlite3_finalize(st);
			st = NULL;
		}
	}
	if (store_txn(&s->wr, Q_COMMIT) == -1)
		goto fail;
	pthread_mutex_unlock(&s->wlock);
	return dropped;
fail:
	e = errno;
	sqlite3_finalize(st);
	store_txn(&s->wr, Q_ROLLBACK);
	errno = e;
fail_unlocked:
	e = errno;
	pthread_mutex_unlock(&s->wlock);
	free(ids);
	errno = e;
	return -1;
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
	static const char cols[] = "SELECT count(*), total(size), "
	    "total(state=2), total(CASE WHEN state=2 THEN size END), "
	    "total(state=1), total(CASE WHEN state=1 THEN have END) ";
	char path[PATH_MAX], *sql = NULL;
	struct store_ent root;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int r = -1, rc;

	memset(out, 0, sizeof(*out));
	if (store_resolve(s, rel ? rel : "", &root) == -1)
		return -1;
	/* Its own connection: a scan must not hold up the readers. */
	if (store_xpath(s, path, sizeof(path), "index.db", NULL) == -1)
		return -1;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		errno = EIO;
		goto out;
	}
	sqlite3_busy_timeout(db, 30000);
	if (root.id == STORE_ROOT_ID)
		rc = asprintf(&sql, "%s FROM entries WHERE type=102 AND "
		    "t>=?2 AND ?1>0", cols);
	else
		rc = asprintf(&sql, "WITH RECURSIVE sub(id) AS (SELECT ?1 "
		    "UNION ALL SELECT e.id FROM entries e JOIN sub ON "
		    "e.parent=sub.id) %s FROM entries WHERE id IN sub AND "
		    "type=102 AND t>=?2", cols);
	if (rc == -1) {
		sql = NULL;
		goto out;
	}
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		log_warnx("stats: %s", sqlite3_errmsg(db));
		errno = EIO;
		goto out;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)root.id);
	sqlite3_bind_int64(st, 2, since);
	if (sqlite3_step(st) != SQLITE_ROW) {
		errno = EIO;
		goto out;
	}
	out->files = (uint64_t)sqlite3_column_int64(st, 0);
	out->bytes = (uint64_t)sqlite3_column_double(st, 1);
	out->complete_files = (uint64_t)sqlite3_column_double(st, 2);
	out->complete_bytes = (uint64_t)sqlite3_column_double(st, 3);
	out->partial_files = (uint64_t)sqlite3_column_double(st, 4);
	out->partial_bytes = (uint64_t)sqlite3_column_double(st, 5);
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(db, "SELECT value FROM settings WHERE "
	    "key='hash_failures'", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		out->hash_failures = (uint64_t)sqlite3_column_int64(st, 0);
	r = 0;
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(sql);
	return r;
}

int
store_room(struct store *s, uint64_t *used, uint64_t *cap)
{
	int rc;

	*cap = s->max_bytes;
	*used = 0;
	if (s->max_bytes == 0)
		return 0;
	pthread_mutex_lock(&s->wlock);
	rc = local_bytes(s, used);
	pthread_mutex_unlock(&s->wlock);
	return rc;
}
