/*
 * fetch_int: what the fetcher's own files share (fetcher.c: the callers'
 * side; xfer.c: the network thread, one HTTP transfer and its checks;
 * feed.c: following the primary's feed). Nothing outside fetcher/
 * includes this.
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
#include "m4f.h"

#define FETCH_FILE_MAX		(1024ULL * 1024 * 1024)	/* whole-file GET */
#define FETCH_JSON_MAX		(256U * 1024 * 1024)	/* one listing page */
#define FETCH_LIST_ENTRIES_MAX	1000000	/* one listing, all pages */
#define FETCH_AUTH_HOLD_MS	5000	/* crawler pause after a 401 */
#define FETCH_WHOLE_MAX		(64ULL * 1024 * 1024)	/* read as one job */
#define FETCH_BUCKETS		256	/* in-flight block table */
#define FETCH_WHOLE		UINT64_MAX	/* block key of a file job */
#define FETCH_SPARE_BODIES	8	/* freed file bodies kept for reuse, */
#define FETCH_SPARE_BYTES	(16ULL << 20)	/* at most this much of them */
#define FETCH_BODY_GRAIN	(64 * 1024)	/* body sizes rounded up to */

enum job_kind { JOB_BLOCK, JOB_LIST, JOB_FILE, JOB_FEED };
enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_DONE };

/*
 * One request to the primary, shared by every caller waiting on it.
 * A job is freed when its last reference goes: the network thread holds
 * one until the job is done, each waiting caller one.
 */
struct job {
	/* Set at creation, read-only afterwards. */
	enum job_kind	 kind;
	uint64_t	 id;		/* file jobs and block jobs */
	char		*rel;		/* path relative to the export */
	uint64_t	 fsize;		/* the file's size in the store */
	uint64_t	 block;		/* block jobs */
	uint64_t	 off;		/* block jobs: first byte */
	uint64_t	 len;		/* block jobs: bytes wanted */
	int		 recursive;	/* list jobs */
	void		(*done)(void *, uint64_t, int);	/* file jobs */
	void		*done_arg;

	/* Under fetcher.lock. */
	enum fetch_prio	 prio;		/* may be raised by a new waiter */
	enum job_state	 state;
	int		 refs;
	int		 err;		/* errno value once done, 0: success */
	unsigned char	*buf;		/* block and file jobs: the body */
	size_t		 bufcap;	/* buf is a body_get() of this many
					   bytes */
	size_t		 got;		/* bytes of buf filled */
	struct job	*next;		/* in a queue or the delayed list */
	struct job	*hnext;		/* in the block table */
	pthread_cond_t	 cond;		/* broadcast on new bytes and on done */

	/* Network thread only. */
	CURL		*easy;
	struct curl_slist *hdrs;
	int		 attempts;
	int64_t		 not_before;	/* monotonic ms, retries */
	int		 head_checked;
	int		 discard;	/* an error status: drop the body */
	int		 bad;		/* failed a check: EBADMSG */
	int		 paused;	/* by the bandwidth cap */
	int		 crawler;	/* counted in transfers, charged */
	uint64_t	 start;		/* this attempt's first byte (blocks) */
	char		 crange[128];	/* Content-Range as received */
	char		 bsha[M4F_SHA256_HEX + 1];	/* X-M4F-SHA256 received */
	char		*json;		/* list and feed jobs: the body */
	size_t		 jlen, jcap;
	char		*after;		/* list jobs: paging */
	struct m4f_listing **pages;	/* list jobs: every page so far */
	size_t		 npages;
	struct fetcher	*owner;
	struct job	*rnext;		/* in fetcher.running */
	enum fetch_prio	 xprio;		/* prio when this attempt started */
	int		 changed;	/* the file differs from the store's */
	int		 ferr;		/* the transfer's result, for the finisher */
	uint64_t	 before_id;	/* list jobs: store_last_id() at start */
	int		 whole_ok;	/* under fetcher.lock: block jobs whose
					   file was verified whole in flight,
					   file jobs whose body matches fsha */
	int		 whole_bad;	/* under fetcher.lock: file jobs whose
					   body was found not to match */
	int		 verifying;	/* under fetcher.lock: job_verify() is
					   hashing the body */
	unsigned char	 md[32];	/* under fetcher.lock: the body's
					   SHA-256, once whole_ok */
	char		 fsha[M4F_SHA256_HEX + 1];	/* file jobs: the
					   SHA-256 the store expects */
	int		 hashed;	/* file jobs: in the block table */
	int		 single;	/* file jobs: never in a bundle */
	struct job	**members;	/* network thread: a bundle's files,
					   its leader (this job) first */
	size_t		 nmembers;
	size_t		 cur;		/* network thread: the member
					   receiving bytes */
	char		*fsizes;	/* network thread: a bundle's
					   X-M4F-Sizes as received */
};

/*
 * Finisher threads: the first FETCH_FIN_VIEWER take viewers' transfers,
 * the others the crawler's and read-ahead's. Each one spends most of its
 * time in fsync, so several keep the disk busy while others wait.
 */
#define FETCH_FINISHERS		12
#define FETCH_FIN_VIEWER	4

struct jobq {
	struct job	*head, *tail;
};

/* A file body's mapping, page-aligned, cap bytes. */
struct body {
	unsigned char	*p;
	size_t		 cap;
};

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
	struct jobq	 q[3];		/* queued jobs by priority */
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

	/* Network thread only. */
	int		 crawling;	/* crawler transfers running */
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
	char		 feed_epoch[33];
	uint64_t	 feed_seq;

	/* body_get()'s spare bodies, under spare_lock. */
	pthread_mutex_t	 spare_lock;
	struct body	 spare[FETCH_SPARE_BODIES];
	int		 nspare;
	size_t		 spare_bytes;

	/* Atomic. */
	_Atomic uint64_t st_bytes[3];
	_Atomic uint64_t st_requests;
	_Atomic uint64_t st_failures;
	_Atomic uint64_t st_retries;
	_Atomic uint64_t st_bad;
	_Atomic uint64_t st_answers;
	atomic_int	 st_connected;
	atomic_int	 st_auth_failed;
};

/* xfer.c: the finishers, which put what transfers got into the store. */
void	*fetch_finisher_main(void *);

/* xfer.c: does a JSON body match the digest its answer carried? */
int	fetch_body_ok(struct job *);

/* fetcher.c: appends j to q; under fetcher.lock. */
void	jobq_push(struct jobq *q, struct job *j);

/* fetcher.c */
int64_t	fetch_now_ms(void);
/*
 * Checks a whole-file job's body against fsha (once it matched, never
 * again: whoever comes first, a reader or the finisher), records the
 * verdict in the job and the body's SHA-256 in md. Returns 1 when the
 * body matches, 0 when not, -1 when it could not be hashed. Takes the
 * lock.
 */
int	job_verify(struct fetcher *, struct job *, unsigned char md[32]);
/* Drops one reference; frees the job with the last. Takes the lock. */
void	job_release(struct fetcher *, struct job *);
/*
 * Gives job j a body (buf) of size bytes, page-aligned (what the store's
 * cold installs need), a spare one when there is one: reused bodies cost
 * no page faults and leave no malloc arena grown. Takes spare_lock.
 * Returns 0, or -1 with ENOMEM.
 */
int	body_get(struct fetcher *, struct job *j, uint64_t size);
/*
 * Allocates a job with one reference (the network thread's). The caller
 * fills it and queues it with job_queue(). NULL with errno.
 */
struct job *job_new(enum job_kind, enum fetch_prio);
/* Appends j to its priority's queue. Under lock. */
void	job_queue(struct fetcher *, struct job *);
/* Removes a block or file job from the block table. Under lock. */
void	job_unhash(struct fetcher *, struct job *);
/* Queues a listing of the folder holding rel (a fix after a 404). */
void	fetch_refresh_parent(struct fetcher *, const char *rel,
	    enum fetch_prio);
/* Queues a listing with no waiter. Returns 0, or -1. */
int	fetch_list_async(struct fetcher *, const char *rel, int recursive,
	    enum fetch_prio);

/* xfer.c: the network thread. */
void	*xfer_main(void *);
/*
 * Builds and adds the transfer of j to the multi handle (network thread).
 * Returns 0, or -1 with errno (then j is untouched by curl).
 */
int	xfer_start(struct fetcher *, struct job *);

/* xfer.c: the network thread's side of a job, for bundle.c. */
/* Ends j with err: wakes its waiters, drops the thread's reference. */
void	fetch_job_end(struct fetcher *, struct job *, int err);
/* Hands j, whose transfer ended with err, to a finisher thread. */
void	fetch_finish_later(struct fetcher *, struct job *, int err);
/* Puts j in the delayed list for another try after a backoff. */
void	fetch_retry_later(struct fetcher *, struct job *);

/*
 * bundle.c: several whole files of one folder in one request, for the
 * crawler (network thread).
 */
/*
 * j was just taken from queue q to start: takes the next queued files of
 * the same folder (up to a few, a few MiB) out of q into j->members, j
 * first. Under lock.
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
/* Starts the next feed request when it is due; returns ms until then. */
int64_t	feed_tick(struct fetcher *, int64_t now);
/* Handles the end of the feed's transfer, err as xfer computed it. */
void	feed_done(struct fetcher *, struct job *, int err);

#endif
