/*
 * store internals shared by store.c (open, recovery, namespace),
 * store_data.c (blocks, group commit, complete files) and store_expire.c
 * (retention, quota, stats). Nothing outside index/store*.c includes it.
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

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>

#include "store.h"

#define STORE_MAX_SIZE	((uint64_t)1 << 40)	/* largest file accepted */
#define STORE_PF_HASH	256
#define STORE_BATCH_MS	50
#define STORE_BATCH_N	256	/* dirty blocks that start a batch early */

enum q {
	Q_GET, Q_LOOKUP, Q_READDIR, Q_BITMAP, Q_INSERT, Q_DELETE, Q_DROP,
	Q_DIRMTIME, Q_LISTED, Q_CHILDREN, Q_MARK, Q_TOUCH, Q_INTENT_ADD,
	Q_INTENT_DEL, Q_COMPLETE, Q_BEGIN, Q_COMMIT, Q_ROLLBACK, Q_HASHFAIL,
	Q_HASHFAIL_ADD, Q_RESETBITS, Q_NQ
};

struct conn {
	sqlite3		*db;
	sqlite3_stmt	*st[Q_NQ];
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
	uint8_t		 sha[32];
	int		 fd;		/* partial/ID, read-write */
	uint8_t		*bits;		/* present, durable or not */
	uint8_t		*durable;	/* recorded in the index */
	int		 dirty;		/* bits has bits not yet committed */
	int		 completing;	/* a thread is verifying/installing */
	int		 dead;		/* dropped: out of the table */
	int		 refs;		/* users outside s->lock */
};

struct ent {
	struct store_ent e;
	uint64_t	 gen;
	int64_t		 t;		/* segment time: DVR path or mtime */
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

	pthread_cond_t	 wake;		/* with lock: work for the committer */
	pthread_cond_t	 done;		/* with lock: a batch finished */
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

/* store.c */
sqlite3_stmt *store_q(struct conn *, enum q);
int	store_rd(struct store *);
struct conn *store_rdc(struct store *);
int	store_sqlerr(struct conn *, int rc, const char *what);
int	store_get_c(struct conn *, uint64_t id, struct ent *);
char	*store_path_c(struct conn *, uint64_t id);
int	store_xpath(struct store *, char *buf, size_t sz, const char *sub,
	    const char *rel);
int	store_partial_path(struct store *, char *buf, size_t sz, uint64_t id);
int	store_drop_local(struct store *, const struct ent *, const char *rel);
int	store_txn(struct conn *, enum q);
int	store_sha_hex(const uint8_t sha[32], char hex[65]);

/* store_data.c */
struct pfile *store_pf_find(struct store *, uint64_t id);
void	store_pf_kill(struct store *, uint64_t id);
void	store_pf_unref(struct store *, struct pfile *);
void	*store_committer(void *);
int	store_install(struct store *, uint64_t id, uint64_t gen,
	    const char *src, int fd);
int	store_sha256(int fd, const void *buf, size_t len, uint64_t size,
	    uint8_t out[32]);
int	store_check_complete(struct store *, uint64_t from, size_t max,
	    uint64_t *next);

#endif
