/*
 * store: opening and recovery, the namespace (look-ups, listings, feed
 * events). Blocks and complete files are in store_data.c, retention and
 * statistics in store_expire.c; the lock order is in store_impl.h.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bitmap.h"
#include "dvrpath.h"
#include "log.h"
#include "store.h"
#include "store_impl.h"

#define READDIR_BATCH	1024	/* children copied out per lock */
#define ENT_COLS "id,parent,name,type,size,mtime,sha,state,have,listed,gen,t"

static const char *const q_sql[Q_NQ] = {
	[Q_GET] = "SELECT " ENT_COLS " FROM entries WHERE id=?1",
	[Q_LOOKUP] = "SELECT " ENT_COLS " FROM entries WHERE parent=?1 AND "
	    "name=?2",
	[Q_READDIR] = "SELECT " ENT_COLS " FROM entries WHERE parent=?1 AND "
	    "name>?2 ORDER BY name LIMIT ?3",
	[Q_BITMAP] = "SELECT bitmap FROM entries WHERE id=?1 AND gen=?2",
	[Q_INSERT] = "INSERT INTO entries(parent,name,type,size,mtime,sha,t)"
	    " VALUES(?1,?2,?3,?4,?5,?6,?7)",
	[Q_DELETE] = "DELETE FROM entries WHERE id=?1",
	[Q_DROP] = "UPDATE entries SET state=0,have=0,bitmap=NULL,gen=gen+1"
	    " WHERE id=?1",
	[Q_DIRMTIME] = "UPDATE entries SET mtime=?2 WHERE id=?1",
	[Q_LISTED] = "UPDATE entries SET listed=?2 WHERE id=?1",
	[Q_CHILDREN] = "SELECT id,type,name,state FROM entries WHERE parent=?1",
	[Q_MARK] = "UPDATE entries SET bitmap=?2,have=?3,state=1 WHERE id=?1"
	    " AND gen=?4 AND state<2",
	[Q_TOUCH] = "UPDATE entries SET atime=?2 WHERE id=?1",
	[Q_INTENT_ADD] = "INSERT OR REPLACE INTO intent(id,path) VALUES(?1,?2)",
	[Q_INTENT_DEL] = "DELETE FROM intent WHERE id=?1",
	[Q_COMPLETE] = "UPDATE entries SET state=2,have=size,bitmap=NULL"
	    " WHERE id=?1 AND gen=?2",
	[Q_BEGIN] = "BEGIN IMMEDIATE",
	[Q_COMMIT] = "COMMIT",
	[Q_ROLLBACK] = "ROLLBACK",
	[Q_HASHFAIL] = "SELECT value FROM settings WHERE key='hash_failures'",
	[Q_HASHFAIL_ADD] = "INSERT INTO settings(key,value) VALUES"
	    "('hash_failures',1) ON CONFLICT(key) DO UPDATE SET value=value+1",
	[Q_RESETBITS] = "UPDATE entries SET state=0,have=0,bitmap=NULL,"
	    "gen=gen+1 WHERE id=?1 AND gen=?2",
};

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS settings(key TEXT PRIMARY KEY,"
    " value INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS entries("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " parent INTEGER NOT NULL, name TEXT NOT NULL, type INTEGER NOT NULL,"
    " size INTEGER NOT NULL DEFAULT 0, mtime INTEGER NOT NULL DEFAULT 0,"
    " sha BLOB, state INTEGER NOT NULL DEFAULT 0,"
    " have INTEGER NOT NULL DEFAULT 0, bitmap BLOB,"
    " atime INTEGER NOT NULL DEFAULT 0, listed INTEGER NOT NULL DEFAULT 0,"
    " t INTEGER NOT NULL DEFAULT 0, gen INTEGER NOT NULL DEFAULT 0,"
    " UNIQUE(parent, name));"
    "CREATE INDEX IF NOT EXISTS entries_local ON entries(state, t)"
    " WHERE state > 0;"
    "CREATE TABLE IF NOT EXISTS intent(id INTEGER PRIMARY KEY,"
    " path TEXT NOT NULL);"
    "INSERT OR IGNORE INTO entries(id, parent, name, type)"
    " VALUES(1, 0, '', 100);";

sqlite3_stmt *
store_q(struct conn *c, enum q q)
{
	sqlite3_stmt *st = c->st[q];

	if (st == NULL) {
		if (sqlite3_prepare_v3(c->db, q_sql[q], -1,
		    SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
			log_warnx("sqlite prepare: %s", sqlite3_errmsg(c->db));
			errno = EIO;
			return NULL;
		}
		c->st[q] = st;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

/* Maps a failed SQLite result to errno and logs it; returns -1. */
int
store_sqlerr(struct conn *c, int rc, const char *what)
{
	switch (rc & 0xff) {
	case SQLITE_FULL:
		errno = ENOSPC;
		break;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		errno = EBUSY;
		break;
	case SQLITE_READONLY:
		errno = EROFS;
		break;
	case SQLITE_NOMEM:
		errno = ENOMEM;
		break;
	default:
		errno = EIO;
	}
	log_warnx("sqlite %s: %s", what, sqlite3_errmsg(c->db));
	return -1;
}

/* Runs one of the statements without parameters or results. */
int
store_txn(struct conn *c, enum q q)
{
	sqlite3_stmt *st = store_q(c, q);
	int rc;

	if (st == NULL)
		return -1;
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_sqlerr(c, rc, q_sql[q]);
	if (q == Q_COMMIT && c->commits != NULL)
		atomic_fetch_add(c->commits, 1);
	return 0;
}

/*
 * Readies the read connection; s->lock held. Readers keep one read
 * transaction open and renew it only after a commit on the write
 * connection: beginning one per query costs file locks (fcntl) that
 * would dominate a look-up. A read-only store, whose writer is another
 * process, reads in autocommit mode.
 */
int
store_rd(struct store *s)
{
	struct conn *c = &s->rd;
	uint64_t n;

	if (s->ro)
		return 0;
	n = atomic_load(&s->commits);
	if (c->reading && c->seen == n)
		return 0;
	if (c->reading) {
		sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
		c->reading = 0;
	}
	if (sqlite3_exec(c->db, "BEGIN; SELECT 1 FROM settings LIMIT 1",
	    NULL, NULL, NULL) != SQLITE_OK)
		return store_sqlerr(c, SQLITE_ERROR, "begin");
	c->reading = 1;
	c->seen = n;
	return 0;
}

/* The read connection, readied; s->lock held. */
struct conn *
store_rdc(struct store *s)
{
	store_rd(s);
	return &s->rd;
}

int
store_sha_hex(const uint8_t sha[32], char hex[65])
{
	static const char dig[] = "0123456789abcdef";
	int i;

	for (i = 0; i < 32; i++) {
		hex[2 * i] = dig[sha[i] >> 4];
		hex[2 * i + 1] = dig[sha[i] & 15];
	}
	hex[64] = '\0';
	return 0;
}

/* 64 lowercase hex digits into 32 bytes; -1 if not exactly that. */
static int
sha_parse(const char *hex, uint8_t sha[32])
{
	int i, hi, lo;

	if (hex == NULL || strlen(hex) != 64)
		return -1;
	for (i = 0; i < 64; i++)
		if (!((hex[i] >= '0' && hex[i] <= '9') ||
		    (hex[i] >= 'a' && hex[i] <= 'f')))
			return -1;
	for (i = 0; i < 32; i++) {
		hi = hex[2 * i] <= '9' ? hex[2 * i] - '0' : hex[2 * i] - 'a' + 10;
		lo = hex[2 * i + 1] <= '9' ? hex[2 * i + 1] - '0' :
		    hex[2 * i + 1] - 'a' + 10;
		sha[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

/* Fills e from a row whose columns are ENT_COLS; -1 on a bad record. */
static int
ent_row(sqlite3_stmt *st, struct ent *e)
{
	const unsigned char *name = sqlite3_column_text(st, 2);
	int namelen = sqlite3_column_bytes(st, 2);
	int type = sqlite3_column_int(st, 3);
	int state = sqlite3_column_int(st, 7);
	sqlite3_int64 size = sqlite3_column_int64(st, 4);

	memset(e, 0, sizeof(*e));
	if (name == NULL || namelen < 0 || namelen > 255 ||
	    (type != STORE_FILE && type != STORE_DIR) ||
	    state < STORE_NONE || state > STORE_COMPLETE || size < 0 ||
	    (uint64_t)size > STORE_MAX_SIZE) {
		log_warnx("index record %lld is corrupt",
		    (long long)sqlite3_column_int64(st, 0));
		errno = EIO;
		return -1;
	}
	e->e.id = (uint64_t)sqlite3_column_int64(st, 0);
	e->e.parent = (uint64_t)sqlite3_column_int64(st, 1);
	memcpy(e->e.name, name, (size_t)namelen);
	e->e.type = (enum store_type)type;
	e->e.size = (uint64_t)size;
	e->e.mtime = sqlite3_column_int64(st, 5);
	if (sqlite3_column_bytes(st, 6) == 32)
		store_sha_hex(sqlite3_column_blob(st, 6), e->e.sha256);
	e->e.state = (enum store_state)state;
	e->e.have = (uint64_t)sqlite3_column_int64(st, 8);
	e->e.listed = sqlite3_column_int64(st, 9);
	e->gen = (uint64_t)sqlite3_column_int64(st, 10);
	e->t = sqlite3_column_int64(st, 11);
	return 0;
}

/* Steps a one-row query into e: 0, -1 with ENOENT when no row. */
static int
ent_one(struct conn *c, sqlite3_stmt *st, struct ent *e)
{
	int rc = sqlite3_step(st), r;

	if (rc == SQLITE_ROW)
		r = ent_row(st, e);
	else if (rc == SQLITE_DONE) {
		errno = ENOENT;
		r = -1;
	} else
		r = store_sqlerr(c, rc, "query");
	sqlite3_reset(st);
	return r;
}

int
store_get_c(struct conn *c, uint64_t id, struct ent *e)
{
	sqlite3_stmt *st = store_q(c, Q_GET);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
	return ent_one(c, st, e);
}

static int
lookup_c(struct conn *c, uint64_t parent, const char *name, struct ent *e)
{
	sqlite3_stmt *st = store_q(c, Q_LOOKUP);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)parent);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	return ent_one(c, st, e);
}

char *
store_path_c(struct conn *c, uint64_t id)
{
	char *buf, *p;
	size_t cap = 4096, len = 0, n;
	struct ent e;
	int depth;

	/* Built right to left from the end of buf, then moved down. */
	if ((buf = malloc(cap)) == NULL)
		return NULL;
	p = buf + cap - 1;
	*p = '\0';
	for (depth = 0; id != STORE_ROOT_ID; depth++) {
		if (depth > 1024 || store_get_c(c, id, &e) == -1) {
			if (depth > 1024)
				errno = EIO;
			free(buf);
			return NULL;
		}
		n = strlen(e.e.name);
		if (len + n + 1 >= cap - 1) {
			free(buf);
			errno = ENAMETOOLONG;
			return NULL;
		}
		if (len > 0) {
			*--p = '/';
			len++;
		}
		p -= n;
		memcpy(p, e.e.name, n);
		len += n;
		id = e.e.parent;
	}
	memmove(buf, p, len + 1);
	return buf;
}

/* dir/sub/rel into buf; -1 with ENAMETOOLONG. */
int
store_xpath(struct store *s, char *buf, size_t sz, const char *sub,
    const char *rel)
{
	int n;

	if (rel == NULL || *rel == '\0')
		n = snprintf(buf, sz, "%s/%s", s->dir, sub);
	else
		n = snprintf(buf, sz, "%s/%s/%s", s->dir, sub, rel);
	if (n < 0 || (size_t)n >= sz) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int
store_partial_path(struct store *s, char *buf, size_t sz, uint64_t id)
{
	int n = snprintf(buf, sz, "%s/partial/%" PRIu64, s->dir, id);

	if (n < 0 || (size_t)n >= sz) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/*
 * Drops the local data of file e (at rel): forgets its open partial file,
 * unlinks partial and complete data, then resets its record. Files go
 * first: a record that says complete without its file is repaired later,
 * a file at a final path without its record would be unverified data.
 * s->wlock held, inside a transaction.
 */
int
store_drop_local(struct store *s, const struct ent *e, const char *rel)
{
	char path[PATH_MAX];
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&s->lock);
	store_pf_kill(s, e->e.id);
	if (store_partial_path(s, path, sizeof(path), e->e.id) == 0 &&
	    unlink(path) == -1 && errno != ENOENT)
		log_warn("unlink %s", path);
	if (e->e.state == STORE_COMPLETE && rel != NULL &&
	    store_xpath(s, path, sizeof(path), "data", rel) == 0 &&
	    unlink(path) == -1 && errno != ENOENT)
		log_warn("unlink %s", path);
	pthread_mutex_unlock(&s->lock);

	if ((st = store_q(&s->wr, Q_INTENT_DEL)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)e->e.id);
	if ((rc = sqlite3_step(st)) != SQLITE_DONE)
		return store_sqlerr(&s->wr, rc, "intent");
	if ((st = store_q(&s->wr, Q_DROP)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)e->e.id);
	if ((rc = sqlite3_step(st)) != SQLITE_DONE)
		return store_sqlerr(&s->wr, rc, "drop");
	return 0;
}

/*
 * Removes entry e at rel with its subtree and local data. s->wlock held,
 * inside a transaction.
 */
static int
ent_remove(struct store *s, const struct ent *e, const char *rel)
{
	struct ent *kids = NULL, k;
	size_t n = 0, cap = 0, i;
	sqlite3_stmt *st;
	char path[PATH_MAX], *krel = NULL;
	int rc, r = -1;

	if (e->e.type == STORE_FILE) {
		if ((e->e.state != STORE_NONE || store_pf_find(s, e->e.id)) &&
		    store_drop_local(s, e, rel) == -1)
			return -1;
		goto del;
	}
	/* Collect the children first: the statement is reused below. */
	if ((st = store_q(&s->wr, Q_CHILDREN)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)e->e.id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			struct ent *nk;

			cap = cap ? cap * 2 : 16;
			if ((nk = realloc(kids, cap * sizeof(*kids))) == NULL)
				goto out;
			kids = nk;
		}
		memset(&k, 0, sizeof(k));
		k.e.id = (uint64_t)sqlite3_column_int64(st, 0);
		k.e.type = (enum store_type)sqlite3_column_int(st, 1);
		snprintf(k.e.name, sizeof(k.e.name), "%s",
		    (const char *)sqlite3_column_text(st, 2));
		k.e.state = (enum store_state)sqlite3_column_int(st, 3);
		kids[n++] = k;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		store_sqlerr(&s->wr, rc, "children");
		goto out;
	}
	for (i = 0; i < n; i++) {
		free(krel);
		if (asprintf(&krel, "%s%s%s", rel, *rel ? "/" : "",
		    kids[i].e.name) == -1) {
			krel = NULL;
			goto out;
		}
		if (ent_remove(s, &kids[i], krel) == -1)
			goto out;
	}
	if (store_xpath(s, path, sizeof(path), "data", rel) == 0 &&
	    rmdir(path) == -1 && errno != ENOENT && errno != ENOTEMPTY)
		log_warn("rmdir %s", path);
del:
	if (e->e.id == STORE_ROOT_ID) {
		r = 0;
		goto out;
	}
	if ((st = store_q(&s->wr, Q_DELETE)) == NULL)
		goto out;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)e->e.id);
	if ((rc = sqlite3_step(st)) != SQLITE_DONE) {
		store_sqlerr(&s->wr, rc, "delete");
		goto out;
	}
	r = 0;
out:
	free(krel);
	free(kids);
	return r;
}

/* A single path component the primary may send. */
static int
name_ok(const char *s, size_t n)
{
	if (n == 0 || n > 255 || (n == 1 && s[0] == '.') ||
	    (n == 2 && s[0] == '.' && s[1] == '.'))
		return 0;
	return memchr(s, '/', n) == NULL;
}

/* A relative path of valid components ("" when empty_ok). */
static int
rel_ok(const char *rel, int empty_ok)
{
	const char *p = rel, *q;

	if (rel == NULL)
		return 0;
	if (*rel == '\0')
		return empty_ok;
	if (strlen(rel) >= PATH_MAX - 64)
		return 0;
	for (;;) {
		q = strchr(p, '/');
		if (!name_ok(p, q ? (size_t)(q - p) : strlen(p)))
			return 0;
		if (q == NULL)
			return 1;
		p = q + 1;
	}
}

static int
remote_ok(const struct store_remote *r, uint8_t sha[32])
{
	if (!rel_ok(r->name, 0) || r->mtime < 0)
		return 0;
	if (r->type == STORE_DIR)
		return 1;
	return r->type == STORE_FILE && r->size <= STORE_MAX_SIZE &&
	    sha_parse(r->sha256, sha) == 0;
}

static int
ent_insert(struct store *s, uint64_t parent, const char *name,
    const struct store_remote *r, const uint8_t *sha, const char *full,
    uint64_t *id)
{
	sqlite3_stmt *st;
	int64_t t = r->mtime;
	int rc;

	if (r->type == STORE_FILE && dvrpath_time(full, &t, NULL) == -1)
		t = r->mtime;
	if ((st = store_q(&s->wr, Q_INSERT)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)parent);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, (int)r->type);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)(r->type == STORE_FILE ?
	    r->size : 0));
	sqlite3_bind_int64(st, 5, r->mtime);
	if (sha != NULL)
		sqlite3_bind_blob(st, 6, sha, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, t);
	if ((rc = sqlite3_step(st)) != SQLITE_DONE)
		return store_sqlerr(&s->wr, rc, "insert");
	*id = (uint64_t)sqlite3_last_insert_rowid(s->wr.db);
	return 0;
}

/*
 * Creates or updates entry name in parent as r says. A file whose
 * identity changed, or an entry whose type changed, is replaced: the old
 * one goes with its data and the new one gets a new id.
 */
static int
ent_upsert(struct store *s, uint64_t parent, const char *name,
    const struct store_remote *r, const uint8_t *sha, const char *full,
    uint64_t *id)
{
	struct ent e;
	sqlite3_stmt *st;
	uint8_t old[32];
	int rc;

	if (lookup_c(&s->wr, parent, name, &e) == -1) {
		if (errno != ENOENT)
			return -1;
		return ent_insert(s, parent, name, r, sha, full, id);
	}
	if (e.e.type == r->type && r->type == STORE_DIR) {
		*id = e.e.id;
		if (e.e.mtime == r->mtime || r->mtime == 0)
			return 0;
		if ((st = store_q(&s->wr, Q_DIRMTIME)) == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, (sqlite3_int64)e.e.id);
		sqlite3_bind_int64(st, 2, r->mtime);
		if ((rc = sqlite3_step(st)) != SQLITE_DONE)
			return store_sqlerr(&s->wr, rc, "update");
		return 0;
	}
	if (e.e.type == r->type && e.e.size == r->size &&
	    e.e.mtime == r->mtime && sha_parse(e.e.sha256, old) == 0 &&
	    memcmp(old, sha, 32) == 0) {
		*id = e.e.id;
		return 0;
	}
	if (ent_remove(s, &e, full) == -1)
		return -1;
	return ent_insert(s, parent, name, r, sha, full, id);
}

/* Sorted set of ids seen in a complete listing. */
struct idset {
	uint64_t	*v;
	size_t		 n, cap;
};

static int
idset_add(struct idset *set, uint64_t id)
{
	if (set->n == set->cap) {
		size_t cap = set->cap ? set->cap * 2 : 64;
		uint64_t *v = realloc(set->v, cap * sizeof(*v));

		if (v == NULL)
			return -1;
		set->v = v;
		set->cap = cap;
	}
	set->v[set->n++] = id;
	return 0;
}

static int
id_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static int
idset_has(const struct idset *set, uint64_t id)
{
	return bsearch(&id, set->v, set->n, sizeof(id), id_cmp) != NULL;
}

/*
 * Removes the children of folder id (at rel) that are not in seen; with
 * recursive, also below the folders that are. Marks covered folders
 * listed at now.
 */
static int
sweep(struct store *s, uint64_t id, const char *rel,
    const struct idset *seen, int recursive, int64_t now, uint64_t before)
{
	struct { uint64_t id; int type; int state; char *name; } *kids = NULL;
	size_t n = 0, cap = 0, i;
	sqlite3_stmt *st;
	char *krel = NULL;
	int rc, r = -1;

	if ((st = store_q(&s->wr, Q_LISTED)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
	sqlite3_bind_int64(st, 2, now);
	if ((rc = sqlite3_step(st)) != SQLITE_DONE)
		return store_sqlerr(&s->wr, rc, "listed");

	if ((st = store_q(&s->wr, Q_CHILDREN)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uint64_t kid = (uint64_t)sqlite3_column_int64(st, 0);
		int type = sqlite3_column_int(st, 1);

		/*
		 * Seen files need no work; keep memory to what does. An
		 * entry newer than the listing was added by the feed
		 * meanwhile: it stays.
		 */
		if (idset_has(seen, kid) ? !recursive || type != STORE_DIR :
		    kid > before)
			continue;
		if (n == cap) {
			void *nk;

			cap = cap ? cap * 2 : 16;
			if ((nk = realloc(kids, cap * sizeof(*kids))) == NULL)
				goto out;
			kids = nk;
		}
		kids[n].id = kid;
		kids[n].type = type;
		kids[n].state = sqlite3_column_int(st, 3);
		kids[n].name = strdup((const char *)sqlite3_column_text(st, 2));
		if (kids[n++].name == NULL)
			goto out;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		store_sqlerr(&s->wr, rc, "children");
		goto out;
	}
	for (i = 0; i < n; i++) {
		free(krel);
		if (asprintf(&krel, "%s%s%s", rel, *rel ? "/" : "",
		    kids[i].name) == -1) {
			krel = NULL;
			goto out;
		}
		if (idset_has(seen, kids[i].id)) {
			if (sweep(s, kids[i].id, krel, seen, 1, now,
			    before) == -1)
				goto out;
		} else {
			struct ent e;

			memset(&e, 0, sizeof(e));
			e.e.id = kids[i].id;
			e.e.type = (enum store_type)kids[i].type;
			e.e.state = (enum store_state)kids[i].state;
			if (ent_remove(s, &e, krel) == -1)
				goto out;
		}
	}
	r = 0;
out:
	free(krel);
	for (i = 0; i < n; i++)
		free(kids[i].name);
	free(kids);
	return r;
}

/*
 * Finds or creates the folder rel (from the root), returning its id in
 * *id. A file in the way is replaced by a folder. seen may be NULL.
 */
static int
mkdirs(struct store *s, const char *rel, uint64_t *id, struct idset *seen)
{
	struct store_remote d = { .type = STORE_DIR };
	char comp[256], full[PATH_MAX];
	const char *p = rel, *q;
	uint64_t cur = STORE_ROOT_ID;
	size_t n;

	while (*p != '\0') {
		q = strchr(p, '/');
		n = q ? (size_t)(q - p) : strlen(p);
		memcpy(comp, p, n);
		comp[n] = '\0';
		memcpy(full, rel, (size_t)(p - rel) + n);
		full[(p - rel) + n] = '\0';
		d.name = comp;
		if (ent_upsert(s, cur, comp, &d, NULL, full, &cur) == -1)
			return -1;
		if (seen != NULL && idset_add(seen, cur) == -1)
			return -1;
		p = q ? q + 1 : p + n;
	}
	*id = cur;
	return 0;
}

/* Applies v inside an open transaction; s->wlock held. */
static int
apply(struct store *s, const char *dir, const struct store_remote *v,
    size_t n, int recursive, int complete, int64_t now, uint64_t before,
    uint64_t *ids)
{
	struct idset seen = { 0 };
	char full[PATH_MAX], pdir[PATH_MAX], cached[PATH_MAX] = "";
	uint8_t sha[32];
	uint64_t dirid, pid = 0, id;
	const char *base;
	size_t i;
	int r = -1;

	if (mkdirs(s, dir, &dirid, NULL) == -1)
		goto out;
	for (i = 0; i < n; i++) {
		if (!remote_ok(&v[i], sha)) {
			errno = EINVAL;
			goto out;
		}
		if (snprintf(full, sizeof(full), "%s%s%s", dir, *dir ? "/" : "",
		    v[i].name) >= (int)sizeof(full)) {
			errno = ENAMETOOLONG;
			goto out;
		}
		/* Parent folder: listings are sorted, so cache the last. */
		base = strrchr(full, '/');
		base = base ? base + 1 : full;
		memcpy(pdir, full, (size_t)(base - full));
		pdir[base > full ? base - full - 1 : 0] = '\0';
		if (strcmp(pdir, dir) == 0)
			pid = dirid;
		else if (pid == 0 || strcmp(pdir, cached) != 0) {
			if (mkdirs(s, pdir, &pid, complete ? &seen : NULL) == -1)
				goto out;
			memcpy(cached, pdir, strlen(pdir) + 1);
		}
		if (ent_upsert(s, pid, base, &v[i],
		    v[i].type == STORE_FILE ? sha : NULL, full, &id) == -1)
			goto out;
		if (complete && idset_add(&seen, id) == -1)
			goto out;
		if (ids != NULL)
			ids[i] = id;
		/* The cached parent may have been replaced: forget it. */
		if (v[i].type == STORE_DIR)
			cached[0] = '\0', pid = 0;
	}
	if (complete) {
		qsort(seen.v, seen.n, sizeof(*seen.v), id_cmp);
		if (sweep(s, dirid, dir, &seen, recursive, now, before) == -1)
			goto out;
	}
	r = 0;
out:
	free(seen.v);
	return r;
}

static int
apply_txn(struct store *s, const char *dir, const struct store_remote *v,
    size_t n, int recursive, int complete, int64_t now, uint64_t before,
    uint64_t *ids)
{
	int r, e;

	if (s->ro) {
		errno = EROFS;
		return -1;
	}
	if (!rel_ok(dir, 1)) {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&s->wlock);
	if (store_txn(&s->wr, Q_BEGIN) == -1) {
		pthread_mutex_unlock(&s->wlock);
		return -1;
	}
	r = apply(s, dir, v, n, recursive, complete, now, before, ids);
	if (r == 0)
		r = store_txn(&s->wr, Q_COMMIT);
	if (r == -1) {
		e = errno;
		store_txn(&s->wr, Q_ROLLBACK);
		errno = e;
	}
	pthread_mutex_unlock(&s->wlock);
	return r;
}

struct entv {
	struct store_ent *v;
	size_t		 n, cap;
};

static int
entv_add(void *arg, const struct store_ent *e)
{
	struct entv *a = arg;
	struct store_ent *v;
	size_t cap;

	if (a->n == a->cap) {
		cap = a->cap ? a->cap * 2 : 64;
		if ((v = realloc(a->v, cap * sizeof(*v))) == NULL)
			return -1;
		a->v = v;
		a->cap = cap;
	}
	a->v[a->n++] = *e;
	return 0;
}

int
store_children(struct store *s, uint64_t dir, struct store_ent **v,
    size_t *n)
{
	struct entv a = { NULL, 0, 0 };
	ssize_t got;

	got = store_readdir(s, dir, NULL, SIZE_MAX, entv_add, &a);
	if (got >= 0 && (size_t)got != a.n) {
		errno = ENOMEM;	/* entv_add stopped the walk */
		got = -1;
	}
	if (got < 0) {
		free(a.v);
		*v = NULL;
		*n = 0;
		return -1;
	}
	*v = a.v;
	*n = a.n;
	return 0;
}

int
store_apply_listing(struct store *s, const char *dir,
    const struct store_remote *v, size_t n, int recursive, int complete,
    int64_t now, uint64_t *ids)
{
	return apply_txn(s, dir, v, n, recursive, complete, now, UINT64_MAX,
	    ids);
}

int
store_apply_snapshot(struct store *s, const char *dir,
    const struct store_remote *v, size_t n, int recursive, int64_t now,
    uint64_t before, uint64_t *ids)
{
	return apply_txn(s, dir, v, n, recursive, 1, now, before, ids);
}

uint64_t
store_last_id(struct store *s)
{
	sqlite3_stmt *st;
	uint64_t id = 0;

	pthread_mutex_lock(&s->wlock);
	if (sqlite3_prepare_v2(s->wr.db, "SELECT max(id) FROM entries", -1,
	    &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			id = (uint64_t)sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&s->wlock);
	return id;
}

int
store_apply_event(struct store *s, const struct store_remote *r,
    int deleted, uint64_t *id, uint64_t *parent)
{
	struct ent e, p;
	uint64_t nid;
	char *pdir = NULL, *slash;
	int rc = -1, err;

	if (!deleted) {
		if (apply_txn(s, "", r, 1, 0, 0, 0, UINT64_MAX, &nid) == -1)
			return -1;
		if (id != NULL)
			*id = nid;
		if (parent != NULL) {
			pthread_mutex_lock(&s->lock);
			rc = store_get_c(store_rdc(s), nid, &e);
			pthread_mutex_unlock(&s->lock);
			*parent = rc == 0 ? e.e.parent : 0;
		}
		return 0;
	}
	if (s->ro || !rel_ok(r->name, 0)) {
		errno = s->ro ? EROFS : EINVAL;
		return -1;
	}
	if ((pdir = strdup(r->name)) == NULL)
		return -1;
	slash = strrchr(pdir, '/');
	if (slash != NULL)
		*slash = '\0';
	else
		pdir[0] = '\0';
	pthread_mutex_lock(&s->wlock);
	if (id != NULL)
		*id = 0;
	if (parent != NULL)
		*parent = 0;
	if (store_txn(&s->wr, Q_BEGIN) == -1)
		goto out;
	/* Resolve the path; a deletion of something unknown is a no-op. */
	{
		const char *q = r->name, *sl;
		char comp[256];
		uint64_t cur = STORE_ROOT_ID;
		size_t len;

		memset(&p, 0, sizeof(p));
		p.e.id = STORE_ROOT_ID;
		for (;;) {
			sl = strchr(q, '/');
			len = sl ? (size_t)(sl - q) : strlen(q);
			memcpy(comp, q, len);
			comp[len] = '\0';
			if (lookup_c(&s->wr, cur, comp, &e) == -1) {
				if (errno != ENOENT)
					goto fail;
				break;
			}
			if (sl == NULL) {
				if (parent != NULL)
					*parent = cur;
				if (ent_remove(s, &e, r->name) == -1)
					goto fail;
				break;
			}
			cur = e.e.id;
			q = sl + 1;
		}
	}
	if (store_txn(&s->wr, Q_COMMIT) == -1)
		goto fail;
	rc = 0;
	goto out;
fail:
	err = errno;
	store_txn(&s->wr, Q_ROLLBACK);
	errno = err;
out:
	pthread_mutex_unlock(&s->wlock);
	free(pdir);
	return rc;
}

int
store_get(struct store *s, uint64_t id, struct store_ent *out)
{
	struct ent e;
	int r;

	pthread_mutex_lock(&s->lock);
	r = store_get_c(store_rdc(s), id, &e);
	pthread_mutex_unlock(&s->lock);
	if (r == 0)
		*out = e.e;
	return r;
}

int
store_lookup(struct store *s, uint64_t parent, const char *name,
    struct store_ent *out)
{
	struct ent e;
	int r;

	if (name == NULL || !name_ok(name, strlen(name))) {
		errno = ENOENT;
		return -1;
	}
	pthread_mutex_lock(&s->lock);
	r = lookup_c(store_rdc(s), parent, name, &e);
	pthread_mutex_unlock(&s->lock);
	if (r == 0)
		*out = e.e;
	return r;
}

int
store_resolve(struct store *s, const char *rel, struct store_ent *out)
{
	char comp[256];
	const char *p = rel, *q;
	struct ent e;
	size_t n;
	int r = 0;

	if (rel == NULL || !rel_ok(rel, 1)) {
		errno = ENOENT;
		return -1;
	}
	pthread_mutex_lock(&s->lock);
	r = store_get_c(store_rdc(s), STORE_ROOT_ID, &e);
	while (r == 0 && *p != '\0') {
		q = strchr(p, '/');
		n = q ? (size_t)(q - p) : strlen(p);
		memcpy(comp, p, n);
		comp[n] = '\0';
		r = lookup_c(store_rdc(s), e.e.id, comp, &e);
		p = q ? q + 1 : p + n;
	}
	pthread_mutex_unlock(&s->lock);
	if (r == 0)
		*out = e.e;
	return r;
}

char *
store_path(struct store *s, uint64_t id)
{
	char *p;

	pthread_mutex_lock(&s->lock);
	p = store_path_c(store_rdc(s), id);
	pthread_mutex_unlock(&s->lock);
	return p;
}

/*
 * Reads the children in batches of READDIR_BATCH, each copied out under
 * the lock and handed to cb without it, so a folder of any size is
 * walked whole in bounded memory.
 */
ssize_t
store_readdir(struct store *s, uint64_t dir, const char *after, size_t max,
    int (*cb)(void *, const struct store_ent *), void *arg)
{
	struct store_ent *v;
	struct ent e;
	sqlite3_stmt *st;
	char last[sizeof(v->name)];
	const char *from = after != NULL ? after : "";
	size_t n, i, batch, total = 0;
	ssize_t r = -1;
	int rc;

	if (max == 0)
		return 0;
	if ((v = calloc(READDIR_BATCH, sizeof(*v))) == NULL)
		return -1;
	for (;;) {
		batch = max - total < READDIR_BATCH ? max - total :
		    READDIR_BATCH;
		n = 0;
		pthread_mutex_lock(&s->lock);
		if ((st = store_q(store_rdc(s), Q_READDIR)) == NULL) {
			pthread_mutex_unlock(&s->lock);
			goto out;
		}
		sqlite3_bind_int64(st, 1, (sqlite3_int64)dir);
		sqlite3_bind_text(st, 2, from, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)batch);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < batch) {
			if (ent_row(st, &e) == -1)
				break;
			v[n++] = e.e;
		}
		sqlite3_reset(st);
		pthread_mutex_unlock(&s->lock);
		if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
			store_sqlerr(&s->rd, rc, "readdir");
			goto out;
		}
		for (i = 0; i < n; i++) {
			total++;
			if (cb(arg, &v[i]) != 0)
				goto done;
		}
		if (n < batch || total == max)
			break;
		memcpy(last, v[n - 1].name, sizeof(last));
		from = last;
	}
done:
	r = (ssize_t)total;
out:
	free(v);
	return r;
}

uint32_t
store_block_size(const struct store *s)
{
	return s->bs;
}

const char *
store_dir(const struct store *s)
{
	return s->dir;
}

static int
exec(struct conn *c, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(c->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		log_warnx("sqlite %s: %s", sql, msg ? msg : "?");
		sqlite3_free(msg);
		errno = EIO;
		return -1;
	}
	return 0;
}

static int
conn_open(struct store *s, struct conn *c, int ro)
{
	char path[PATH_MAX];
	int flags = SQLITE_OPEN_NOMUTEX | (ro ? SQLITE_OPEN_READONLY :
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);

	if (store_xpath(s, path, sizeof(path), "index.db", NULL) == -1)
		return -1;
	if (sqlite3_open_v2(path, &c->db, flags, NULL) != SQLITE_OK) {
		log_warnx("%s: %s", path, c->db ? sqlite3_errmsg(c->db) :
		    "cannot open");
		errno = c->db ? EIO : ENOMEM;
		return -1;
	}
	sqlite3_busy_timeout(c->db, 30000);
	sqlite3_extended_result_codes(c->db, 0);
	/*
	 * Readers map the file (no read() per page); the writer goes
	 * through a small page cache so its scans do not add to the RSS.
	 */
	return exec(c, ro || c != &s->wr ? "PRAGMA cache_size=-8192; "
	    "PRAGMA mmap_size=1073741824" : "PRAGMA cache_size=-8192");
}

static void
conn_close(struct conn *c)
{
	int i;

	for (i = 0; i < Q_NQ; i++)
		sqlite3_finalize(c->st[i]);
	sqlite3_close(c->db);
	memset(c, 0, sizeof(*c));
}

/* Block size: the stored one, or conf's for a new store. */
static int
settings(struct store *s, const struct store_conf *conf)
{
	sqlite3_stmt *st = NULL;
	uint32_t want = conf ? conf->block_size : 0;
	struct conn *c = s->ro ? &s->rd : &s->wr;
	int64_t bs = 0;
	int rc;

	if (sqlite3_prepare_v2(c->db, "SELECT value FROM settings WHERE "
	    "key='block_size'", -1, &st, NULL) != SQLITE_OK)
		return store_sqlerr(c, SQLITE_ERROR, "settings");
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		bs = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW) {
		if (bs < 512 || bs > 64 * 1024 * 1024) {
			log_warnx("%s: bad block size %lld", s->dir,
			    (long long)bs);
			errno = EIO;
			return -1;
		}
		if (want != 0 && want != bs) {
			errno = EINVAL;
			return -1;
		}
		s->bs = (uint32_t)bs;
		return 0;
	}
	if (s->ro) {
		errno = ENOENT;
		return -1;
	}
	s->bs = want ? want : STORE_BLOCK_DEFAULT;
	if (s->bs < 512 || s->bs > 64 * 1024 * 1024) {
		errno = EINVAL;
		return -1;
	}
	if (sqlite3_prepare_v2(c->db, "INSERT INTO settings(key,value) "
	    "VALUES('block_size',?1)", -1, &st, NULL) != SQLITE_OK)
		return store_sqlerr(c, SQLITE_ERROR, "settings");
	sqlite3_bind_int64(st, 1, s->bs);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store_sqlerr(c, rc, "settings");
	return 0;
}

/* Removes every file in dir/sub (not recursive: tmp/ is flat). */
static void
clear_dir(struct store *s, const char *sub)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int fd;

	if (store_xpath(s, path, sizeof(path), sub, NULL) == -1 ||
	    (d = opendir(path)) == NULL)
		return;
	fd = dirfd(d);
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.' || (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0))
			if (unlinkat(fd, de->d_name, 0) == -1)
				log_warn("unlink %s/%s", path, de->d_name);
	fsync(fd);
	closedir(d);
}

/*
 * Completions interrupted by a crash: the index recorded where a file was
 * about to be renamed. If it is there, complete it only when its bytes
 * verify; otherwise make sure nothing is left at that path.
 */
static int
recover_intents(struct store *s)
{
	sqlite3_stmt *st = NULL;
	struct { uint64_t id; char *path; } *v = NULL;
	size_t n = 0, i;
	char path[PATH_MAX];
	int rc, r = -1;

	if (sqlite3_prepare_v2(s->wr.db, "SELECT id,path FROM intent", -1,
	    &st, NULL) != SQLITE_OK)
		return store_sqlerr(&s->wr, SQLITE_ERROR, "intent");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		void *nv = realloc(v, (n + 1) * sizeof(*v));

		if (nv == NULL)
			goto out;
		v = nv;
		v[n].id = (uint64_t)sqlite3_column_int64(st, 0);
		if ((v[n++].path = strdup((const char *)
		    sqlite3_column_text(st, 1))) == NULL)
			goto out;
	}
	for (i = 0; i < n; i++) {
		struct ent e;
		char *rel = NULL;
		uint8_t sha[32], want[32];
		int fd, keep = 0;

		if (store_xpath(s, path, sizeof(path), "data", v[i].path) == -1)
			continue;
		if (store_get_c(&s->wr, v[i].id, &e) == 0 &&
		    e.e.type == STORE_FILE &&
		    (rel = store_path_c(&s->wr, v[i].id)) != NULL &&
		    strcmp(rel, v[i].path) == 0 &&
		    (fd = open(path, O_RDONLY | O_CLOEXEC)) != -1) {
			if (store_sha256(fd, NULL, 0, e.e.size, sha) == 0 &&
			    sha_parse(e.e.sha256, want) == 0 &&
			    memcmp(sha, want, 32) == 0) {
				sqlite3_stmt *c = store_q(&s->wr, Q_COMPLETE);

				keep = 1;
				sqlite3_bind_int64(c, 1, (sqlite3_int64)e.e.id);
				sqlite3_bind_int64(c, 2, (sqlite3_int64)e.gen);
				if (sqlite3_step(c) != SQLITE_DONE)
					keep = 0;
			}
			close(fd);
		}
		free(rel);
		if (!keep && unlink(path) == -1 && errno != ENOENT)
			log_warn("unlink %s", path);
		if (keep) {
			store_partial_path(s, path, sizeof(path), v[i].id);
			unlink(path);
		}
	}
	r = exec(&s->wr, "DELETE FROM intent");
out:
	sqlite3_finalize(st);
	for (i = 0; i < n; i++)
		free(v[i].path);
	free(v);
	return r;
}

/*
 * Partial files: one per entry in state PARTIAL (or NONE while its first
 * blocks were not committed yet). Any other file in partial/ is an
 * orphan; a PARTIAL entry without its file loses its bits.
 */
static int
recover_partial(struct store *s)
{
	char path[PATH_MAX], *end;
	struct dirent *de;
	struct ent e;
	sqlite3_stmt *st;
	DIR *d;
	unsigned long long id;
	struct stat sb;

	if (store_xpath(s, path, sizeof(path), "partial", NULL) == -1 ||
	    (d = opendir(path)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		errno = 0;
		id = strtoull(de->d_name, &end, 10);
		if (errno == 0 && *end == '\0' && de->d_name[0] != '0' &&
		    store_get_c(&s->wr, id, &e) == 0 &&
		    e.e.type == STORE_FILE && e.e.state == STORE_PARTIAL)
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == -1)
			log_warn("unlink %s/%s", path, de->d_name);
	}
	closedir(d);

	if (exec(&s->wr, "CREATE TEMP TABLE IF NOT EXISTS lost(id INTEGER)") ==
	    -1 || exec(&s->wr, "DELETE FROM lost") == -1)
		return -1;
	if (sqlite3_prepare_v2(s->wr.db, "SELECT id FROM entries WHERE "
	    "state=1", -1, &st, NULL) != SQLITE_OK)
		return store_sqlerr(&s->wr, SQLITE_ERROR, "partial");
	while (sqlite3_step(st) == SQLITE_ROW) {
		id = (unsigned long long)sqlite3_column_int64(st, 0);
		if (store_partial_path(s, path, sizeof(path), id) == 0 &&
		    stat(path, &sb) == -1) {
			char sql[96];

			snprintf(sql, sizeof(sql), "INSERT INTO lost VALUES(%llu)",
			    id);
			exec(&s->wr, sql);
		}
	}
	sqlite3_finalize(st);
	return exec(&s->wr, "UPDATE entries SET state=0,have=0,bitmap=NULL,"
	    "gen=gen+1 WHERE id IN (SELECT id FROM lost)");
}

static int
recover(struct store *s)
{
	clear_dir(s, "tmp");
	if (recover_intents(s) == -1 || recover_partial(s) == -1)
		return -1;
	return 0;
}

/* Background check of complete files, in small steps. */
static void *
checker(void *arg)
{
	struct store *s = arg;
	uint64_t from = 0, next;
	int stop;

	for (;;) {
		pthread_mutex_lock(&s->lock);
		stop = s->stop;
		pthread_mutex_unlock(&s->lock);
		if (stop)
			break;
		if (store_check_complete(s, from, 256, &next) == -1 ||
		    next == 0)
			break;
		from = next;
	}
	return NULL;
}

static int
mkdir_sub(struct store *s, const char *sub)
{
	char path[PATH_MAX];

	if (store_xpath(s, path, sizeof(path), sub, NULL) == -1)
		return -1;
	if (mkdir(path, 0755) == -1 && errno != EEXIST) {
		log_warn("mkdir %s", path);
		return -1;
	}
	return 0;
}

struct store *
store_open(const char *dir, const struct store_conf *conf)
{
	struct store *s;
	int e;

	if (dir == NULL || *dir == '\0') {
		errno = EINVAL;
		return NULL;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->wlock, NULL);
	pthread_cond_init(&s->wake, NULL);
	pthread_cond_init(&s->done, NULL);
	pthread_mutex_init(&s->ilock, NULL);
	pthread_cond_init(&s->idone, NULL);
	s->iq_tail = &s->iq;
	s->ro = conf ? conf->readonly : 0;
	s->max_bytes = conf ? conf->max_bytes : 0;
	if ((s->dir = strdup(dir)) == NULL)
		goto fail;
	if (!s->ro && ((mkdir(dir, 0755) == -1 && errno != EEXIST) ||
	    mkdir_sub(s, "data") == -1 || mkdir_sub(s, "partial") == -1 ||
	    mkdir_sub(s, "tmp") == -1))
		goto fail;
	if (!s->ro) {
		if (conn_open(s, &s->wr, 0) == -1 ||
		    exec(&s->wr, "PRAGMA journal_mode=WAL; "
		    "PRAGMA synchronous=FULL") == -1 ||
		    exec(&s->wr, "BEGIN IMMEDIATE") == -1)
			goto fail;
		if (exec(&s->wr, schema) == -1 || settings(s, conf) == -1 ||
		    recover(s) == -1) {
			e = errno;
			exec(&s->wr, "ROLLBACK");
			errno = e;
			goto fail;
		}
		if (exec(&s->wr, "COMMIT") == -1)
			goto fail;
	}
	if (conn_open(s, &s->rd, s->ro) == -1 ||
	    exec(&s->rd, "PRAGMA wal_autocheckpoint=0") == -1)
		goto fail;
	if (s->ro && settings(s, conf) == -1)
		goto fail;
	s->wr.commits = &s->commits;
	if (!s->ro) {
		if (pthread_create(&s->committer, NULL, store_committer, s)) {
			errno = EAGAIN;
			goto fail;
		}
		s->has_committer = 1;
		if (pthread_create(&s->checker, NULL, checker, s) == 0)
			s->has_checker = 1;
	}
	return s;
fail:
	e = errno;
	store_close(s);
	errno = e;
	return NULL;
}

void
store_close(struct store *s)
{
	struct pfile *p, *next;
	size_t i;

	if (s == NULL)
		return;
	pthread_mutex_lock(&s->lock);
	s->stop = 1;
	pthread_cond_broadcast(&s->wake);
	pthread_mutex_unlock(&s->lock);
	if (s->has_checker)
		pthread_join(s->checker, NULL);
	if (s->has_committer)
		pthread_join(s->committer, NULL);
	for (i = 0; i < STORE_PF_HASH; i++)
		for (p = s->pf[i]; p != NULL; p = next) {
			next = p->next;
			close(p->fd);
			free(p->bits);
			free(p->durable);
			free(p);
		}
	conn_close(&s->rd);
	conn_close(&s->wr);
	free(s->touch);
	free(s->suspect);
	pthread_cond_destroy(&s->wake);
	pthread_cond_destroy(&s->done);
	pthread_cond_destroy(&s->idone);
	pthread_mutex_destroy(&s->ilock);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->wlock);
	free(s->dir);
	free(s);
}
