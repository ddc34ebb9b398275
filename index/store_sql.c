/*
 * store_sql: the store's SQL plumbing. The schema, the connections, every
 * statement the store runs (q_sql: prepared once per connection, on first
 * use), the transaction helper, and the decoding of rows into entries.
 * Calls nothing else of the store; see store_impl.h for the layering and
 * the locks.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store.h"
#include "store_impl.h"

#define STORE_VERSION_S	"2"
_Static_assert(STORE_VERSION == 2, "STORE_VERSION_S spells STORE_VERSION");

#define ENT_COLS "id,parent,name,type,size,mtime,sha,state,have,listed,gen,t"
#define STATS_COLS "SELECT count(*), total(size), total(state=2), " \
	"total(CASE WHEN state=2 THEN size END), total(state=1), " \
	"total(CASE WHEN state=1 THEN have END) "

static const char *const q_sql[Q_NQ] = {
	[Q_GET] = "SELECT " ENT_COLS " FROM entries WHERE id=?1",
	[Q_LOOKUP] = "SELECT " ENT_COLS " FROM entries WHERE parent=?1 AND "
	    "name=?2",
	/* A look-up's reply: what the key does not say already. */
	[Q_FIND] = "SELECT id,type,size,mtime,sha,state,have,listed FROM"
	    " entries WHERE parent=?1 AND name=?2",
	[Q_READDIR] = "SELECT " ENT_COLS " FROM entries WHERE parent=?1 AND "
	    "name>?2 ORDER BY name LIMIT ?3",
	[Q_BITMAP] = "SELECT b.bitmap FROM bitmaps b JOIN entries e ON"
	    " e.id=b.id WHERE b.id=?1 AND e.gen=?2",
	/* Ids are never used again: last_id keeps the highest so far. */
	[Q_NEXT_ID] = "UPDATE settings SET value=value+1 WHERE key='last_id'"
	    " RETURNING value",
	[Q_INSERT] = "INSERT INTO entries(parent,name,type,size,mtime,sha,t,"
	    "target,id) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9)",
	/* The hash of a file learnt after its entry: the same file. */
	[Q_SETSHA] = "UPDATE entries SET sha=?2 WHERE id=?1 AND"
	    " (?3 IS NULL OR gen=?3) AND (sha IS NULL OR sha=?2)",
	[Q_TARGET] = "SELECT target FROM entries WHERE id=?1 AND type=108",
	[Q_HAS_COLUMN] = "SELECT count(*) FROM pragma_table_info('entries')"
	    " WHERE name=?1",
	[Q_ADD_TARGET] = "ALTER TABLE entries ADD COLUMN target TEXT",
	[Q_DELETE] = "DELETE FROM entries WHERE id=?1",
	/* Forgets the local data of id; of generation ?2 only, if bound. */
	[Q_RESET] = "UPDATE entries SET state=0,have=0,gen=gen+1"
	    " WHERE id=?1 AND (?2 IS NULL OR gen=?2)",
	[Q_DIRMTIME] = "UPDATE entries SET mtime=?2 WHERE id=?1",
	[Q_LISTED] = "UPDATE entries SET listed=?2 WHERE id=?1",
	/* What a bulk walk needs of each child, nothing more. */
	[Q_SCAN] = "SELECT id,name,type,size,mtime,state,have FROM entries"
	    " WHERE parent=?1 ORDER BY name",
	[Q_CHILDREN] = "SELECT id,type,name,state FROM entries WHERE parent=?1",
	[Q_MARK] = "UPDATE entries SET have=?3,state=1 WHERE id=?1"
	    " AND gen=?4 AND state<2",
	/* After a Q_MARK that changed its entry. */
	[Q_MARK_BITMAP] = "INSERT OR REPLACE INTO bitmaps(id,bitmap)"
	    " VALUES(?1,?2)",
	[Q_TOUCH] = "UPDATE entries SET atime=?2 WHERE id=?1",
	[Q_INTENT_ADD] = "INSERT OR REPLACE INTO intent(id,path) VALUES(?1,?2)",
	[Q_INTENT_DEL] = "DELETE FROM intent WHERE id=?1",
	[Q_INTENTS] = "SELECT id,path FROM intent",
	[Q_INTENT_CLEAR] = "DELETE FROM intent",
	[Q_COMPLETE] = "UPDATE entries SET state=2,have=size"
	    " WHERE id=?1 AND gen=?2",
	[Q_BEGIN] = "BEGIN IMMEDIATE",
	[Q_BEGIN_READ] = "BEGIN",
	[Q_READ_PIN] = "SELECT 1 FROM settings LIMIT 1",
	[Q_COMMIT] = "COMMIT",
	[Q_ROLLBACK] = "ROLLBACK",
	[Q_HASHFAIL] = "SELECT value FROM settings WHERE key='hash_failures'",
	[Q_HASHFAIL_ADD] = "INSERT INTO settings(key,value) VALUES"
	    "('hash_failures',1) ON CONFLICT(key) DO UPDATE SET value=value+1",
	[Q_BS_GET] = "SELECT value FROM settings WHERE key='block_size'",
	[Q_BS_SET] = "INSERT INTO settings(key,value) VALUES('block_size',?1)",
	/* "state>0" spelled out for entries_local (see Q_EXPIRED). */
	[Q_PARTIALS] = "SELECT id FROM entries WHERE state>0 AND state=1",
	[Q_LAST_ID] = "SELECT max(id) FROM entries",
	[Q_CHECKS] = "SELECT id,parent,name,size FROM entries WHERE state=2"
	    " AND type=102 AND id>?1 ORDER BY id LIMIT ?2",
	/* Where the background check of complete files got to. */
	[Q_CHECK_FROM] = "SELECT value FROM settings WHERE key='check_from'",
	[Q_CHECK_FROM_SET] = "INSERT INTO settings(key,value) VALUES"
	    "('check_from',?1) ON CONFLICT(key) DO UPDATE SET value=?1",
	/* The token is stored behind a letter: never taken for a number. */
	[Q_FEED_GET] = "SELECT (SELECT substr(value,2) FROM settings WHERE"
	    " key='feed_token'), (SELECT value FROM settings WHERE"
	    " key='feed_seq')",
	[Q_FEED_SET] = "INSERT INTO settings(key,value) VALUES"
	    "('feed_token','t'||?1),('feed_seq',?2) ON CONFLICT(key)"
	    " DO UPDATE SET value=excluded.value",
	/*
	 * The counter the triggers keep; a read-only opener of a store no
	 * writer of this version has opened yet sums the entries instead.
	 */
	[Q_LOCAL_BYTES] = "SELECT coalesce((SELECT value FROM settings WHERE"
	    " key='local_bytes'), (SELECT coalesce(sum(have),0) FROM entries"
	    " WHERE state IN (1,2)))",
	[Q_VERSION] = "PRAGMA user_version",
	/*
	 * At most ?3 at a time: retention runs in short transactions. Each
	 * state is sought alone, with the partial index's own "state>0"
	 * spelled out: only so does SQLite seek entries_local (state, t)
	 * instead of scanning every entry of the store for each batch.
	 */
	[Q_EXPIRED] = "SELECT id FROM entries WHERE state>0 AND state=2"
	    " AND t<?1 UNION ALL SELECT id FROM entries WHERE state>0 AND"
	    " state=1 AND t<?1 LIMIT ?3",
	/* The same below folder ?2 (a stream with a depth of its own). */
	[Q_EXPIRED_UNDER] = "WITH RECURSIVE sub(id) AS (SELECT ?2 UNION ALL"
	    " SELECT e.id FROM entries e JOIN sub ON e.parent=sub.id"
	    " WHERE e.type=100) SELECT e.id FROM entries e JOIN sub"
	    " ON e.parent=sub.id WHERE e.state IN (1,2) AND e.t<?1 LIMIT ?3",
	/*
	 * Least recently read first (never read: oldest first), walked
	 * along entries_lru: a batch is a seek, not a sort of every file.
	 */
	[Q_EVICT] = "SELECT id FROM entries INDEXED BY entries_lru"
	    " WHERE state>0 AND state IN (1,2) ORDER BY atime, t, id LIMIT ?1",
	[Q_STATS_ALL] = STATS_COLS "FROM entries WHERE type=102 AND t>=?2"
	    " AND ?1>0",
	[Q_STATS_SUB] = "WITH RECURSIVE sub(id) AS (SELECT ?1 UNION ALL"
	    " SELECT e.id FROM entries e JOIN sub ON e.parent=sub.id) "
	    STATS_COLS "FROM entries WHERE id IN sub AND type=102 AND t>=?2",
};

/*
 * Entries are keyed by (parent, name), the key of a look-up, with no
 * rowid: a look-up is one B-tree search. A look-up by id goes through
 * entries_id. The block bitmaps of partial files, which can be large,
 * live in a table of their own, so an entry stays a small row.
 */
#define ENTRIES_TABLE(name) \
    "CREATE TABLE " name "(id INTEGER NOT NULL," \
    " parent INTEGER NOT NULL, name TEXT NOT NULL, type INTEGER NOT NULL," \
    " size INTEGER NOT NULL DEFAULT 0, mtime INTEGER NOT NULL DEFAULT 0," \
    " sha BLOB, state INTEGER NOT NULL DEFAULT 0," \
    " have INTEGER NOT NULL DEFAULT 0," \
    " atime INTEGER NOT NULL DEFAULT 0, listed INTEGER NOT NULL DEFAULT 0," \
    " t INTEGER NOT NULL DEFAULT 0, gen INTEGER NOT NULL DEFAULT 0," \
    " target TEXT, PRIMARY KEY(parent, name)) WITHOUT ROWID;"
#define BITMAPS_TABLE \
    "CREATE TABLE IF NOT EXISTS bitmaps(id INTEGER PRIMARY KEY," \
    " bitmap BLOB NOT NULL);"

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS settings(key TEXT PRIMARY KEY,"
    " value INTEGER NOT NULL) WITHOUT ROWID;"
    ENTRIES_TABLE("IF NOT EXISTS entries")
    "CREATE UNIQUE INDEX IF NOT EXISTS entries_id ON entries(id);"
    /* With id: retention's queries read nothing else. */
    "CREATE INDEX IF NOT EXISTS entries_local ON entries(state, t, id)"
    " WHERE state > 0;"
    /* The size cap's order (Q_EVICT). */
    "CREATE INDEX IF NOT EXISTS entries_lru ON entries(atime, t, id)"
    " WHERE state > 0;"
    BITMAPS_TABLE
    "CREATE TABLE IF NOT EXISTS intent(id INTEGER PRIMARY KEY,"
    " path TEXT NOT NULL);"
    "INSERT OR IGNORE INTO entries(id, parent, name, type)"
    " VALUES(1, 0, '', 100);"
    "INSERT OR IGNORE INTO settings(key, value) SELECT 'last_id',"
    " max(id) FROM entries;"
    /* A bitmap is a partial file's: it goes with the state or entry. */
    "CREATE TRIGGER IF NOT EXISTS bitmap_upd AFTER UPDATE OF state ON"
    " entries WHEN old.state=1 AND new.state<>1 BEGIN DELETE FROM bitmaps"
    " WHERE id=old.id; END;"
    "CREATE TRIGGER IF NOT EXISTS bitmap_del AFTER DELETE ON entries"
    " WHEN old.state=1 BEGIN DELETE FROM bitmaps WHERE id=old.id; END;"
    /*
     * local_bytes: the have of every partial or complete file, kept by
     * triggers in the transaction of each change of state or have, so
     * the size cap and dvrfs-status read it without a scan. Created
     * with the sum of what an older store has (a scan only then).
     */
    "INSERT INTO settings(key, value) SELECT 'local_bytes', (SELECT"
    " coalesce(sum(have), 0) FROM entries WHERE state IN (1,2)) WHERE NOT"
    " EXISTS (SELECT 1 FROM settings WHERE key='local_bytes');"
    "CREATE TRIGGER IF NOT EXISTS local_ins AFTER INSERT ON entries"
    " WHEN new.state IN (1,2) BEGIN UPDATE settings SET value=value+"
    " new.have WHERE key='local_bytes'; END;"
    "CREATE TRIGGER IF NOT EXISTS local_del AFTER DELETE ON entries"
    " WHEN old.state IN (1,2) BEGIN UPDATE settings SET value=value-"
    " old.have WHERE key='local_bytes'; END;"
    "CREATE TRIGGER IF NOT EXISTS local_upd AFTER UPDATE OF state, have"
    " ON entries WHEN old.state IN (1,2) OR new.state IN (1,2) BEGIN"
    " UPDATE settings SET value=value"
    " - CASE WHEN old.state IN (1,2) THEN old.have ELSE 0 END"
    " + CASE WHEN new.state IN (1,2) THEN new.have ELSE 0 END"
    " WHERE key='local_bytes'; END;"
    "PRAGMA user_version=" STORE_VERSION_S ";";

/*
 * An index of version 0 or 1 (entries keyed by an AUTOINCREMENT id,
 * bitmaps in the entries) into version 2's layout; schema then adds the
 * indexes and triggers. last_id continues after every id ever given.
 */
static const char migrate_v2[] =
    ENTRIES_TABLE("entries_v2")
    "INSERT INTO entries_v2(id, parent, name, type, size, mtime, sha,"
    " state, have, atime, listed, t, gen, target) SELECT id, parent, name,"
    " type, size, mtime, sha, state, have, atime, listed, t, gen, target"
    " FROM entries ORDER BY parent, name;"
    BITMAPS_TABLE
    "INSERT INTO bitmaps(id, bitmap) SELECT id, bitmap FROM entries"
    " WHERE state=1 AND bitmap IS NOT NULL;"
    "INSERT OR REPLACE INTO settings(key, value) SELECT 'last_id',"
    " max(coalesce((SELECT seq FROM sqlite_sequence WHERE"
    " name='entries'), 1), coalesce((SELECT max(id) FROM entries), 1));"
    "DROP TABLE entries;"
    "ALTER TABLE entries_v2 RENAME TO entries;";

int
store_exec(struct conn *c, const char *sql)
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

int
store_version(struct conn *c, const char *path)
{
	sqlite3_stmt *st = store_q(c, Q_VERSION);
	int rc, v = 0;

	if (st == NULL)
		return -1;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return store_sqlerr(c, rc, "user_version");
	if (v > STORE_VERSION) {
		log_warnx("%s: index version %d is newer than this program's"
		    " (%d): not opened", path, v, STORE_VERSION);
		errno = EPROTONOSUPPORT;
		return -1;
	}
	return v;
}

/* Has the entries table a column called name? 1, 0, or -1. */
static int
has_column(struct conn *c, const char *name)
{
	sqlite3_stmt *st;
	int rc, has = 0;

	if ((st = store_q(c, Q_HAS_COLUMN)) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		has = sqlite3_column_int(st, 0) > 0;
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? has : store_sqlerr(c, rc, "schema");
}

/*
 * The tables of a new index, or an older one brought up to
 * STORE_VERSION: links' targets (a column that came late to version 0),
 * then version 2's layout (entries whose bitmap column says version 0 or
 * 1; *migrated is then 1), then the indexes, triggers and counters.
 */
int
store_schema(struct conn *c, const char *path, int *migrated)
{
	int v, old, has;

	*migrated = 0;
	if ((v = store_version(c, path)) == -1)
		return -1;
	if (v < 2 && (old = has_column(c, "bitmap")) != 0) {
		if (old == -1 || (has = has_column(c, "target")) == -1 ||
		    (!has && store_run(c, Q_ADD_TARGET) == -1) ||
		    store_exec(c, migrate_v2) == -1)
			return -1;
		*migrated = 1;
	}
	return store_exec(c, schema);
}

/*
 * SQLite's memory statistics, which nothing of ours reads, cost a global
 * mutex on every allocation and free; Debian's SQLite has no lookaside,
 * so every step allocates (its cursor, each text or blob it reads). They
 * can be turned off only before SQLite's first use in the process: when
 * something else came first, they stay on.
 */
static void
sql_config(void)
{
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int
store_conn_open(struct conn *c, const char *path, int ro, int mmap)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	int flags = SQLITE_OPEN_NOMUTEX | (ro ? SQLITE_OPEN_READONLY :
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);

	pthread_once(&once, sql_config);
	memset(c, 0, sizeof(*c));
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
	return store_exec(c, mmap ? "PRAGMA cache_size=-8192; "
	    "PRAGMA mmap_size=1073741824" : "PRAGMA cache_size=-8192");
}

void
store_conn_close(struct conn *c)
{
	int i;

	for (i = 0; i < Q_NQ; i++)
		sqlite3_finalize(c->st[i]);
	sqlite3_close(c->db);
	memset(c, 0, sizeof(*c));
}

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

int
store_step(struct conn *c, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : store_sqlerr(c, rc, what);
}

int
store_run(struct conn *c, enum q q)
{
	sqlite3_stmt *st = store_q(c, q);

	if (st == NULL || store_step(c, st, q_sql[q]) == -1)
		return -1;
	if (q == Q_COMMIT && c->commits != NULL)
		atomic_fetch_add(c->commits, 1);
	return 0;
}

int
store_begin(struct conn *c)
{
	return store_run(c, Q_BEGIN);
}

int
store_end(struct conn *c, int r)
{
	int e;

	if (r == 0 && store_run(c, Q_COMMIT) == 0)
		return 0;
	e = errno != 0 ? errno : EIO;
	/* A failed COMMIT may have ended the transaction already. */
	if (!sqlite3_get_autocommit(c->db))
		store_run(c, Q_ROLLBACK);
	errno = e;
	return -1;
}

/*
 * Readers keep one read transaction open and renew it only after a
 * commit on the write connection: beginning one per query costs file
 * locks (fcntl) that would dominate a look-up. On failure the queries
 * run in autocommit mode, and report their own errors.
 */
struct conn *
store_rdc(struct store *s)
{
	struct conn *c = &s->rd;
	sqlite3_stmt *st;
	uint64_t n;
	int rc;

	if (s->ro)
		return c;
	n = atomic_load(&s->commits);
	if (c->reading && c->seen == n)
		return c;
	if (c->reading) {
		store_run(c, Q_COMMIT);
		c->reading = 0;
	}
	if (store_run(c, Q_BEGIN_READ) == -1)
		return c;
	/* A read transaction takes its snapshot at its first read. */
	if ((st = store_q(c, Q_READ_PIN)) == NULL)
		goto fail;
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		store_sqlerr(c, rc, "begin");
		goto fail;
	}
	c->reading = 1;
	c->seen = n;
	return c;
fail:
	store_run(c, Q_COMMIT);
	return c;
}

static const char hexdig[] = "0123456789abcdef";

void
store_sha_hex(const uint8_t sha[32], char hex[65])
{
	int i;

	for (i = 0; i < 32; i++) {
		hex[2 * i] = hexdig[sha[i] >> 4];
		hex[2 * i + 1] = hexdig[sha[i] & 15];
	}
	hex[64] = '\0';
}

int
store_sha_parse(const char *hex, uint8_t sha[32])
{
	int i;

	if (hex == NULL || strlen(hex) != 64 || strspn(hex, hexdig) != 64)
		return -1;
	for (i = 0; i < 32; i++)
		sha[i] = (uint8_t)((strchr(hexdig, hex[2 * i]) - hexdig) << 4 |
		    (strchr(hexdig, hex[2 * i + 1]) - hexdig));
	return 0;
}

int
store_row_check(sqlite3_int64 id, const unsigned char *name, int namelen,
    int type, int state, sqlite3_int64 size)
{
	if (name == NULL || namelen < 0 || namelen > 255 ||
	    (type != STORE_FILE && type != STORE_DIR && type != STORE_LINK) ||
	    state < STORE_NONE || state > STORE_COMPLETE || size < 0 ||
	    (uint64_t)size > STORE_MAX_SIZE) {
		log_warnx("index record %lld is corrupt", (long long)id);
		errno = EIO;
		return -1;
	}
	return 0;
}

int
store_ent_row(sqlite3_stmt *st, struct ent *e)
{
	const unsigned char *name = sqlite3_column_text(st, 2);
	int namelen = sqlite3_column_bytes(st, 2);
	int type = sqlite3_column_int(st, 3);
	int state = sqlite3_column_int(st, 7);
	sqlite3_int64 size = sqlite3_column_int64(st, 4);

	memset(e, 0, sizeof(*e));
	if (store_row_check(sqlite3_column_int64(st, 0), name, namelen, type,
	    state, size) == -1)
		return -1;
	e->e.id = (uint64_t)sqlite3_column_int64(st, 0);
	e->e.parent = (uint64_t)sqlite3_column_int64(st, 1);
	memcpy(e->e.name, name, (size_t)namelen);
	e->e.type = (enum store_type)type;
	e->e.size = (uint64_t)size;
	e->e.mtime = sqlite3_column_int64(st, 5);
	if (type == STORE_FILE && sqlite3_column_bytes(st, 6) == 32) {
		memcpy(e->sha, sqlite3_column_blob(st, 6), 32);
		e->has_sha = 1;
		store_sha_hex(e->sha, e->e.sha256);
	}
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
		r = store_ent_row(st, e);
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

int
store_lookup_c(struct conn *c, uint64_t parent, const char *name,
    struct ent *e)
{
	sqlite3_stmt *st = store_q(c, Q_LOOKUP);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)parent);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	return ent_one(c, st, e);
}

int
store_find_c(struct conn *c, uint64_t parent, const char *name,
    size_t namelen, struct store_ent *out)
{
	sqlite3_stmt *st = store_q(c, Q_FIND);
	sqlite3_int64 id, size;
	int rc, type, state;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)parent);
	sqlite3_bind_text(st, 2, name, (int)namelen, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			return store_sqlerr(c, rc, "query");
		errno = ENOENT;
		return -1;
	}
	id = sqlite3_column_int64(st, 0);
	type = sqlite3_column_int(st, 1);
	size = sqlite3_column_int64(st, 2);
	state = sqlite3_column_int(st, 5);
	if (store_row_check(id, (const unsigned char *)name, (int)namelen,
	    type, state, size) == -1) {
		sqlite3_reset(st);
		return -1;
	}
	out->id = (uint64_t)id;
	out->parent = parent;
	memcpy(out->name, name, namelen + 1);
	out->type = (enum store_type)type;
	out->size = (uint64_t)size;
	out->mtime = sqlite3_column_int64(st, 3);
	if (type == STORE_FILE && sqlite3_column_bytes(st, 4) == 32)
		store_sha_hex(sqlite3_column_blob(st, 4), out->sha256);
	else
		out->sha256[0] = '\0';
	out->state = (enum store_state)state;
	out->have = (uint64_t)sqlite3_column_int64(st, 6);
	out->listed = sqlite3_column_int64(st, 7);
	sqlite3_reset(st);
	return 0;
}

/*
 * Built right to left from the end of a PATH_MAX buffer, then moved
 * down: ENAMETOOLONG past that, EIO for a parent chain that loops.
 */
char *
store_path_c(struct conn *c, uint64_t id)
{
	char *buf, *p;
	size_t cap = PATH_MAX, len = 0, n;
	struct ent e;
	int depth;

	if ((buf = malloc(cap)) == NULL)
		return NULL;
	p = buf + cap - 1;
	*p = '\0';
	for (depth = 0; id != STORE_ROOT_ID; depth++) {
		if (depth > STORE_MAX_DEPTH) {
			errno = EIO;
			goto fail;
		}
		if (store_get_c(c, id, &e) == -1)
			goto fail;
		n = strlen(e.e.name);
		if (len + n + 1 >= cap - 1) {
			errno = ENAMETOOLONG;
			goto fail;
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
fail:
	free(buf);
	return NULL;
}

int
store_ids(struct conn *c, sqlite3_stmt *st, uint64_t **v, size_t *n)
{
	uint64_t *nv;
	size_t cap = 0;
	int rc, e;

	*v = NULL;
	*n = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 256;
			if ((nv = realloc(*v, cap * sizeof(*nv))) == NULL)
				goto fail;
			*v = nv;
		}
		(*v)[(*n)++] = (uint64_t)sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return 0;
	store_sqlerr(c, rc, "ids");
fail:
	e = errno;
	sqlite3_reset(st);
	free(*v);
	*v = NULL;
	*n = 0;
	errno = e;
	return -1;
}
