/*
 * store_impl.h: internal to the store, included only by index/store*.c.
 * The store is one module (prefix store_, public API in store.h) written
 * in five files, each calling only the ones listed before it:
 *
 *   store_sql.c	SQL plumbing: the schema, connections, the statement
 *			table, transactions, row decoding
 *   store_data.c	local data: partial files and their blocks, group
 *			commit of block marks, installing verified files,
 *			dropping an entry's local data, paths in the store
 *   store_ns.c		the namespace: look-ups, listings, feed events,
 *			tree walks (iterative: no recursion per level)
 *   store_expire.c	retention, the size cap, statistics
 *   store.c		opening, crash recovery, the background threads
 *
 * Locks, in this order: s->wlock, then s->lock.
 *   s->wlock: the write connection s->wr and every change to the index.
 *	Held across SQLite commits (which fsync), so readers never take it.
 *   s->lock: the read connection s->rd, the open partial files (s->pf),
 *	the touch and suspect queues, the committer's counters. Never held
 *	across an fsync.
 *   s->ilock: the install queue only; never held with the others.
 */
#ifndef DVRFS_STORE_IMPL_H
#define DVRFS_STORE_IMPL_H

#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>

#include "store.h"

/*
 * The index's PRAGMA user_version: 0 before the local bytes counter, 1
 * with it, 2 with entries keyed by (parent, name) and bitmaps apart. A
 * store of a higher version is refused, never changed.
 */
#define STORE_VERSION	2
#define STORE_MAX_SIZE	((uint64_t)1 << 40)	/* largest file accepted */
#define STORE_PF_HASH	256
#define STORE_BATCH_MS	50
#define STORE_BATCH_N	256	/* dirty blocks that start a batch early */
/*
 * Every component of a path takes at least two bytes ("a/"), so a path
 * that fits PATH_MAX has fewer levels than this; a parent chain longer
 * than that is a loop in a corrupt index.
 */
#define STORE_MAX_DEPTH	(PATH_MAX / 2)

/* The statement table, q_sql in store_sql.c. */
enum q {
	Q_GET, Q_LOOKUP, Q_FIND, Q_READDIR, Q_BITMAP, Q_INSERT, Q_DELETE,
	Q_RESET, Q_DIRMTIME, Q_LISTED, Q_CHILDREN, Q_MARK, Q_TOUCH,
	Q_INTENT_ADD, Q_INTENT_DEL, Q_INTENTS, Q_INTENT_CLEAR, Q_COMPLETE,
	Q_BEGIN, Q_BEGIN_READ, Q_READ_PIN, Q_COMMIT, Q_ROLLBACK, Q_HASHFAIL,
	Q_HASHFAIL_ADD, Q_BS_GET, Q_BS_SET, Q_PARTIALS, Q_LAST_ID,
	Q_CHECKS, Q_LOCAL_BYTES, Q_EXPIRED, Q_EXPIRED_UNDER, Q_EVICT,
	Q_STATS_ALL, Q_STATS_SUB, Q_SETSHA, Q_TARGET, Q_HAS_COLUMN,
	Q_ADD_TARGET, Q_VERSION, Q_CHECK_FROM, Q_CHECK_FROM_SET, Q_NEXT_ID,
	Q_MARK_BITMAP, Q_SCAN, Q_FEED_GET, Q_FEED_SET, Q_NQ
};

struct conn {
	sqlite3		*db;
	sqlite3_stmt	*st[Q_NQ];	/* prepared on first use */
	_Atomic uint64_t *commits;	/* counted on COMMIT, or NULL */
	uint64_t	 seen;		/* commits when the read txn began */
	int		 reading;	/* a read transaction is open */
};

/* A file receiving blocks: its partial file and its bitmaps. */
struct pfile {
	struct pfile	*next;		/* hash chain */
	uint64_t	 id;
	uint64_t	 gen;		/* the entry's gen when loaded */
	uint64_t	 size;
	uint64_t	 nblocks;
	uint64_t	 nset;		/* bits set in bits */
	uint8_t		 sha[32];	/* the whole file's, when has_sha */
	int		 has_sha;
	int		 fd;		/* partial/ID, read-write */
	uint8_t		*bits;		/* present, durable or not */
	uint8_t		*ubits;		/* present but unchecked (no digest of
					   their own: verified only with the
					   whole file), never recorded; NULL
					   when there are none */
	uint8_t		*durable;	/* recorded in the index */
	int		 dirty;		/* bits has bits not yet committed */
	int		 completing;	/* a thread is verifying/installing */
	int		 dead;		/* dropped: out of the table */
	int		 refs;		/* users outside s->lock */
};

/* An index record: the public entry plus what only the store uses. */
struct ent {
	struct store_ent e;
	uint64_t	 gen;
	int64_t		 t;		/* segment time: DVR path or mtime */
	uint8_t		 sha[32];	/* e.sha256 as bytes, when has_sha */
	int		 has_sha;
};

struct inst;

struct idtime {
	uint64_t	 id;
	int64_t		 t;
};

struct store {
	char		*dir;
	uint32_t	 bs;
	uint64_t	 max_bytes;
	int		 ro;

	pthread_mutex_t	 wlock;
	struct conn	 wr;		/* under wlock */

	_Atomic uint64_t commits;	/* transactions committed on wr */

	pthread_mutex_t	 lock;
	struct conn	 rd;		/* under lock */
	struct pfile	*pf[STORE_PF_HASH];	/* under lock */
	uint64_t	 ndirty;	/* under lock: blocks not committed */
	struct idtime	*touch;		/* under lock */
	size_t		 ntouch, touchcap;	/* under lock */
	uint64_t	*suspect;	/* under lock: complete, file missing */
	size_t		 nsuspect, suspectcap;	/* under lock */

	pthread_cond_t	 wake;		/* with lock, monotonic: committer */
	pthread_cond_t	 done;		/* with lock: a batch finished */
	pthread_cond_t	 cwake;		/* with lock, monotonic: the checker's
					   pause, cut short by store_close */
	int		 stop;		/* under lock */
	int		 sync_req;	/* under lock */
	uint64_t	 seq_started;	/* under lock */
	uint64_t	 seq_done;	/* under lock */
	pthread_mutex_t	 ilock;		/* the install queue */
	struct inst	*iq;		/* under ilock: waiting installs */
	struct inst	**iq_tail;	/* under ilock */
	int		 installing;	/* under ilock: a batch runs */
	pthread_cond_t	 idone;		/* with ilock: a batch finished */
	pthread_t	 committer;
	int		 has_committer;
	pthread_t	 checker;
	int		 has_checker;
};

/*
 * store_sql.c. Unless said otherwise: 0, or -1 with errno (an SQLite
 * failure is logged and mapped by store_sqlerr); the caller holds the
 * lock of the connection it passes.
 */
/* Opens c on the index file path (created unless ro); closes any c. */
int	store_conn_open(struct conn *c, const char *path, int ro, int mmap);
void	store_conn_close(struct conn *c);
/*
 * Creates the tables of a new index and brings an older one up to
 * STORE_VERSION; s->wlock held, in a transaction. path names the index
 * in messages.
 */
int	store_schema(struct conn *c, const char *path, int *migrated);
/* The index's version; -1 with EPROTONOSUPPORT when it is newer than
 * STORE_VERSION (logged with path). */
int	store_version(struct conn *c, const char *path);
/* Runs an SQL script (pragmas); logs and sets EIO on failure. */
int	store_exec(struct conn *c, const char *sql);
/* Statement q of c, reset with no bindings; NULL with EIO. */
sqlite3_stmt *store_q(struct conn *c, enum q q);
/* Maps a failed SQLite result to errno and logs it; returns -1. */
int	store_sqlerr(struct conn *c, int rc, const char *what);
/* Steps st to its end (no rows), then resets it. */
int	store_step(struct conn *c, sqlite3_stmt *st, const char *what);
/* Runs statement q, which has no parameters and no rows. */
int	store_run(struct conn *c, enum q q);
/*
 * The one way to write a transaction on the write connection:
 *	if (store_begin(c) == -1) ...; r = work...; r = store_end(c, r);
 * store_end commits when r is 0, else (or when the commit fails) rolls
 * back keeping the errno of the failure; it returns 0 or -1.
 */
int	store_begin(struct conn *c);
int	store_end(struct conn *c, int r);
/* The read connection, in a read transaction as new as the last
 * commit; s->lock held. A read-only store reads in autocommit mode. */
struct conn *store_rdc(struct store *s);
/*
 * Whether a record's fields are ones the store writes (a negative
 * namelen is never); else logs record id as corrupt: -1 with EIO.
 */
int	store_row_check(sqlite3_int64 id, const unsigned char *name,
	    int namelen, int type, int state, sqlite3_int64 size);
/* Fills e from a row of ENT_COLS; -1 with EIO on a corrupt record. */
int	store_ent_row(sqlite3_stmt *st, struct ent *e);
/* One entry by id, or by (parent, name): -1 with ENOENT if none. */
int	store_get_c(struct conn *c, uint64_t id, struct ent *e);
int	store_lookup_c(struct conn *c, uint64_t parent, const char *name,
	    struct ent *e);
/*
 * The same look-up by (parent, name) for store_lookup(): reads only the
 * columns a struct store_ent takes from the row (parent and name are the
 * key) into out, which is written only on success. namelen is
 * strlen(name). -1 with ENOENT if none.
 */
int	store_find_c(struct conn *c, uint64_t parent, const char *name,
	    size_t namelen, struct store_ent *out);
/* The path of id from the root, malloc'd; NULL with errno. */
char	*store_path_c(struct conn *c, uint64_t id);
/* The first column of every row of st as ids, malloc'd in *v. */
int	store_ids(struct conn *c, sqlite3_stmt *st, uint64_t **v, size_t *n);
void	store_sha_hex(const uint8_t sha[32], char hex[65]);
/* 64 lowercase hex digits into 32 bytes; -1 if not exactly that. */
int	store_sha_parse(const char *hex, uint8_t sha[32]);

/* store_data.c */
/* dir/sub/rel (rel may be NULL) and dir/partial/ID; -1 ENAMETOOLONG. */
int	store_xpath(struct store *, char *buf, size_t sz, const char *sub,
	    const char *rel);
int	store_partial_path(struct store *, char *buf, size_t sz, uint64_t id);
int	store_drop_local(struct store *, const struct ent *, const char *rel);
/*
 * Records sha as the hash of file id (of generation gen, when gen is not
 * NULL), learnt after its entry: the origin's listing, or a digest it
 * sent with the bytes. -1 with EBADMSG when the entry has another hash
 * already, ENOENT when it changed. s->wlock held, in a transaction.
 */
int	store_set_sha(struct store *, uint64_t id, const uint64_t *gen,
	    const uint8_t sha[32]);
int	store_sha256(int fd, const void *buf, size_t len, uint64_t size,
	    uint8_t out[32]);
/*
 * Checks the complete files with id > from, at most max of them: a data
 * file missing, not regular or of the wrong size resets its entry to
 * NONE. Reads on c, a read-only connection of the caller's own, in a
 * short read transaction, holding no lock of the store; takes s->wlock
 * only to reset what it found wrong. *next gets the id to continue
 * after, 0 when done. Returns 0, or -1.
 */
int	store_check_complete(struct store *, struct conn *c, uint64_t from,
	    size_t max, uint64_t *next);
void	store_commit_batch(struct store *);
void	store_pf_free_all(struct store *);

#endif
