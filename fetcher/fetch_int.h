/*
 * fetch_int: the fetcher itself (struct fetcher) and what the files of
 * fetcher/ offer each other besides job.h. Nothing outside fetcher/
 * includes this.
 *
 * Files, bottom up (each calls only the ones before it):
 *   job.c	jobs, bodies, the block table, queues, a job's end
 *   verify.c	what vouches for an answer: its signature, its digests
 *   bundle.c	several whole files in one request (the crawler's)
 *   feed.c	following the primary's feed of changes
 *   xfer.c	the network thread, one transfer and its checks, finishers
 *   read.c	serving a read: local, whole file, verified blocks
 *   fetcher.c	fetcher_new/free, listings, the crawler's files, stats
 *   crawler.c	replication, through fetcher.h only
 *
 * Lock order: fetcher.lock, then a job's fields (under the same lock; a
 * job has no lock of its own), then the store's internal locks. The store
 * is never called with fetcher.lock held, and libcurl is only called on
 * the network thread (curl_multi_wakeup excepted), never with the lock
 * held by that thread across a transfer callback. spare_lock (the spare
 * bodies) is taken last, with or without fetcher.lock, and nothing is
 * taken under it.
 */
#ifndef DVRFS_FETCH_INT_H
#define DVRFS_FETCH_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <curl/curl.h>

#include "fetcher.h"
#include "job.h"
#include "m4f.h"

#define FETCH_FILE_MAX		(1024ULL * 1024 * 1024)	/* whole-file GET */
#define FETCH_JSON_MAX		(256U * 1024 * 1024)	/* one listing page */
#define FETCH_LIST_ENTRIES_MAX	1000000	/* one listing, all pages */
#define FETCH_AUTH_HOLD_MS	5000	/* crawler pause after a 401 */
#define FETCH_WHOLE_MAX		(64ULL * 1024 * 1024)	/* read as one job */
#define FETCH_BUCKETS		256	/* in-flight block table */
#define FETCH_SPARE_BODIES	8	/* freed file bodies kept for reuse, */
#define FETCH_SPARE_BYTES	(16ULL << 20)	/* at most this much of them */
#define FETCH_BODY_GRAIN	(64 * 1024)	/* body sizes rounded up to */

/*
 * While readers' requests (FETCH_VIEWER, FETCH_AHEAD) run or wait, and
 * FETCH_SHY_MS after the last one, the crawler starts no more than
 * FETCH_SHY_TRANSFERS transfers at once: its full speed takes the
 * primary's and the loopback's CPU the readers' first bytes wait for.
 */
#define FETCH_SHY_TRANSFERS	1
#define FETCH_SHY_MS		250

/*
 * Finisher threads: the first FETCH_FIN_VIEWER take viewers' and
 * read-ahead's transfers, the others the crawler's. Each one spends most of its
 * time in fsync, so several keep the disk busy while others wait. A
 * viewer reading a cold window is served from the bodies before they are
 * installed: with 4 viewers' finishers the installs fell behind its
 * reads and the bodies waiting for them held 65-90 MiB.
 */
#define FETCH_FINISHERS		16
#define FETCH_FIN_VIEWER	8

struct fetcher {
	/* Set by fetcher_new(), read-only afterwards. */
	struct fetcher_conf conf;	/* strings point to the copies below */
	char		*host, *export, *cafile;
	void		*key;
	char		 base[300];	/* "http://host:port" */
	char		 rbase[300];	/* the same with the replication port */
	struct store	*store;
	uint32_t	 bs;		/* store_block_size() */
	unsigned	 list_limit;	/* entries per listing page */
	pthread_t	 thread;
	pthread_t	 finisher[FETCH_FINISHERS];
	int		 nfinishers;	/* started */
	CURLM		*multi;

	pthread_mutex_t	 lock;
	/* Under lock. */
	int		 stop;
	struct jobq	 q[FETCH_PRIOS];	/* queued jobs by priority */
	struct job	*delayed;	/* waiting to be retried */
	struct job	*blocks[FETCH_BUCKETS];	/* block jobs not yet done */
	int		 follow;	/* fetcher_follow() was called */
	int		 held;		/* fetcher_hold() nesting */
	struct jobq	 fin[2];	/* transfers ended, for the finishers:
					   [0] viewers', [1] the crawler's */
	int		 fin_stop;
	pthread_cond_t	 fin_cond[2];
	void		(*follow_cb)(void *, const struct fetcher_change *);
	void		*follow_arg;
	int		 relist_want;	/* the feed asks for a relist */
	int		 relist_running;
	int		 relister_started;
	pthread_t	 relister;
	pthread_cond_t	 relist_cond;	/* CLOCK_MONOTONIC */

	/* Network thread only. */
	int		 crawling;	/* crawler transfers running */
	int		 aheading;	/* read-ahead transfers running */
	int		 reading;	/* readers' transfers running */
	int64_t		 shy_until;	/* ms: FETCH_SHY_TRANSFERS before */
	int64_t		 bundle_off_until;	/* ms: no bundles before */
	struct job	*running;	/* every transfer in the multi handle */
	int64_t		 tokens;	/* bandwidth bucket, bytes */
	int64_t		 refill;	/* when tokens were last added, ms */
	int64_t		 auth_hold;	/* no crawler request before, ms */
	int		 reachable;	/* last state logged: 1, 0, -1 none */
	struct job	*feed;		/* the feed's transfer */
	int64_t		 feed_at;	/* next feed request, ms */
	int		 feed_backoff;	/* ms */
	int		 feed_known;	/* epoch and seq are known */
	int		 feed_resume;	/* epoch and seq from the store, to
					   be confirmed by the first answer */
	char		 feed_epoch[33];
	uint64_t	 feed_seq;
	int64_t		 feed_saved;	/* ms: seq last recorded in the store */

	/* body_get()'s spare bodies, under spare_lock. */
	pthread_mutex_t	 spare_lock;
	struct body	 spare[FETCH_SPARE_BODIES];
	int		 nspare;
	size_t		 spare_bytes;

	/* Atomic. */
	_Atomic uint64_t st_bytes[FETCH_PRIOS];
	_Atomic uint64_t st_requests;
	_Atomic uint64_t st_failures;
	_Atomic uint64_t st_retries;
	_Atomic uint64_t st_bad;
	_Atomic uint64_t st_answers;
	_Atomic uint64_t st_badsig;
	atomic_int	 st_connected;
	atomic_int	 st_auth_failed;
	atomic_int	 cancel;	/* fetcher_cancel(): waits end */
};

/*
 * verify.c: what vouches for an answer (network thread and finishers).
 */
/*
 * Checks the head of j's answer (status) once all of it is in, before
 * any body byte is taken: with a cluster key its signature, and the
 * digest each kind of answer must carry — a whole file's Repr-Digest
 * (kept in file.dsha) when its hash is not known, a range's
 * Content-Digest (kept in blk.cmd; without one, the block is checked
 * with the whole file if its hash is known), a bundle's X-M4F-Digests.
 * Sets j->bad (and j->changed when a digest says the file is not the one
 * listed) with a log line when it fails. Lock not held.
 */
void	verify_head(struct fetcher *, struct job *j, long status);
/*
 * A block job's body against its answer's Content-Digest. Returns 1 when
 * it matches (whole_ok is set and the waiters woken), 0 when not, -1
 * when there was no digest (the block is unchecked). Takes the lock.
 */
int	verify_block(struct fetcher *, struct job *j);

/* xfer.c: the network thread and the finishers. */
void	*xfer_main(void *);
/*
 * A finisher thread, which puts what transfers got into the store; arg
 * is the fetcher.
 */
void	*xfer_finisher_main(void *);

/*
 * bundle.c: several whole files of one folder in one request, for the
 * crawler (network thread).
 */
/*
 * j was just taken from queue q to start: takes the next queued files of
 * the same folder (up to a few, a few MiB) out of q into j->file.members,
 * j first. Under lock.
 */
void	bundle_gather(struct fetcher *, struct job *j, struct jobq *q,
	    int64_t now);
/* Ends the members other than j that need no transfer any more, gives the
 * others their buffers; j alone left: no bundle. Lock not held. */
void	bundle_begin(struct fetcher *, struct job *j);
/* Puts the members other than j back in their queue; no bundle. */
void	bundle_dissolve(struct fetcher *, struct job *j);
/* The request target of bundle j; malloc'd, NULL with errno. */
char	*bundle_target(struct fetcher *, struct job *j);
/* Do X-M4F-Sizes and Content-Length cl fit j's members? 1 or 0. */
int	bundle_head_ok(struct job *j, curl_off_t cl);
/* Hands n body bytes to the members in turn; n, or 0 past the last. */
size_t	bundle_body(struct fetcher *, struct job *j, const char *p, size_t n);
/* The bundle's transfer ended with err: every member goes on alone. */
void	bundle_done(struct fetcher *, struct job *j, int err, int transient);

/* feed.c: the network thread. */
/*
 * Returns ms until the feed's next request is due; when it is due now,
 * *start gets its job (f->feed), for the caller to start.
 */
int64_t	feed_tick(struct fetcher *, int64_t now, struct job **start);
/* Handles the end of the feed's transfer, err as xfer computed it. */
void	feed_done(struct fetcher *, struct job *, int err);
/*
 * Tells the fetcher_follow() callback, if any, of change c. Any thread,
 * lock not held.
 */
void	feed_notify(struct fetcher *, const struct fetcher_change *c);
/*
 * Where the store says the feed of this origin and export stood: 1 with
 * epoch and *seq filled in, 0 when nothing of it is recorded. Any thread,
 * no lock held.
 */
int	feed_load(struct fetcher *, char epoch[33], uint64_t *seq);
/*
 * Records where the feed stands in the store, unless a relist is still
 * to be done (then the store may not hold every change up to it). With
 * force, now; otherwise at most every few seconds. The network thread,
 * or fetcher_free() once it has ended. Lock not held.
 */
void	feed_save(struct fetcher *, int force);

/* relist.c: the relister thread. */
/*
 * Asks for the whole store to be listed again, as fetcher_relist() does,
 * on the relister thread (started at the first request). Lock not held.
 */
void	relist_request(struct fetcher *);
/* Waits for the relister to end; f->stop must be set. Lock not held. */
void	relist_stop(struct fetcher *);

#endif
