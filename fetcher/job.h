/*
 * job: one request to the primary and what every file of fetcher/ does
 * with it — its life (job_new, job_ref, job_unref; freed with the last
 * reference), its body (a pool of page-aligned mappings), the table of
 * block and file jobs in flight (coalescing), the priority queues, and
 * its end (wake the waiters, hand it to a finisher, retry it later).
 * Internal to fetcher/: nothing outside it includes this.
 *
 * job.c is the bottom of fetcher/: it calls no other file of it. bundle.c
 * and feed.c call job.c; xfer.c calls those three; read.c and fetcher.c
 * call job.c and (fetcher.c) start xfer.c's threads. Lock order: see
 * fetch_int.h.
 */
#ifndef DVRFS_JOB_H
#define DVRFS_JOB_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "fetcher.h"
#include "m4f.h"

struct fetcher;
struct store_ent;

enum job_kind { JOB_BLOCK, JOB_LIST, JOB_FILE, JOB_FEED };
enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_DONE };

/* The block table's key of a whole-file job. */
#define FETCH_WHOLE	UINT64_MAX

/*
 * One request to the primary, shared by every caller waiting on it. The
 * fields every kind has come first; then one group per kind (bytes of a
 * file: JOB_BLOCK and JOB_FILE; then JOB_BLOCK, JOB_FILE, JOB_LIST; JSON
 * answers: JOB_LIST and JOB_FEED). A group that is not its kind's stays
 * zero. A job is freed when its last reference goes: the network thread
 * holds one until the job is done, each waiting caller one.
 */
struct job {
	/* Set at creation, read-only afterwards. */
	enum job_kind	 kind;
	char		*rel;		/* path relative to the export */

	/* Under fetcher.lock. */
	enum fetch_prio	 prio;		/* may be raised by a new waiter */
	enum job_state	 state;
	int		 refs;
	int		 err;		/* errno value once done, 0: success */
	struct job	*next;		/* in a queue or the delayed list */
	pthread_cond_t	 cond;		/* broadcast on new bytes and on done */

	/* Network thread only. */
	struct fetcher	*owner;
	CURL		*easy;
	struct curl_slist *hdrs;
	struct job	*rnext;		/* in fetcher.running */
	int		 attempts;
	int64_t		 not_before;	/* monotonic ms, retries */
	enum fetch_prio	 xprio;		/* prio when this attempt started */
	int		 crawler;	/* counted in transfers, charged */
	int		 ahead;		/* counted in FETCH_AHEAD_RUNNING */
	int		 reader;	/* counted in fetcher.reading */
	int		 head_checked;
	int		 discard;	/* an error status: drop the body */
	int		 bad;		/* failed a check: EBADMSG */
	int		 paused;	/* by the bandwidth cap */
	int		 changed;	/* the file differs from the store's */
	int		 ferr;		/* the transfer's result, for the
					   finisher */
	char		 crange[128];	/* Content-Range as received */
	char		 bsha[M4F_SHA256_HEX + 1];	/* X-M4F-SHA256
							   received */
	char		 reqsig[M4F_SHA256_HEX + 1];	/* sig= of the
							   request sent */
	char		 asig[80];	/* X-M4F-Signature received */
	char		 rdigest[160];	/* Repr-Digest received */
	char		 cdigest[160];	/* Content-Digest received */
	char		*digests;	/* X-M4F-Digests received */
	int		 retry_after;	/* s, a 503's Retry-After; -1: none */
	int		 busy;		/* 503s waited out, not counted as
					   attempts */

	/* JOB_BLOCK and JOB_FILE: bytes of a file. */
	struct {
		uint64_t	 id;	/* the file's entry */
		uint64_t	 fsize;	/* its size in the store */
		uint64_t	 key;	/* in the block table: the block
					   number, FETCH_WHOLE for a file */
		struct job	*hnext;	/* under fetcher.lock: in the table */
		unsigned char	*buf;	/* the body, a body_get() of */
		size_t		 bufcap;	/* this many bytes */
		size_t		 got;	/* under fetcher.lock: bytes of buf
					   filled */
		int		 whole_ok;	/* under fetcher.lock: the body
					   is verified (files: the whole
					   file's SHA-256 matched; blocks: the
					   Content-Digest of their answer) */
	} body;

	/* JOB_BLOCK. */
	struct {
		uint64_t	 off;	/* first byte */
		uint64_t	 len;	/* bytes wanted */
		uint64_t	 start;	/* network thread: this attempt's
					   first byte */
		int		 known;	/* the file's hash was known when
					   the job was made */
		int		 has_cmd;	/* network thread, then the
						   finisher: cmd is this
						   answer's Content-Digest */
		unsigned char	 cmd[32];
		int		 unchecked;	/* under fetcher.lock, once
						   done: no digest of its own
						   came (an older origin), the
						   block is checked only with
						   the whole file */
	} blk;

	/* JOB_FILE: a whole file, alone or in a bundle. */
	struct {
		/* What the store expects ("": not known). */
		char		 sha[M4F_SHA256_HEX + 1];
		/* Under fetcher.lock: the whole file's hash its answer
		 * carried (Repr-Digest, X-M4F-Digests), checked when sha
		 * is not known. */
		char		 dsha[M4F_SHA256_HEX + 1];
		void		(*done)(void *, uint64_t, int);
		void		*done_arg;
		int		 hashed;	/* in the block table */
		int		 single;	/* never in a bundle */
		int		 whole_bad;	/* under fetcher.lock: the body
					   was found not to match */
		int		 verifying;	/* under fetcher.lock:
						   job_verify() is hashing */
		unsigned char	 md[32];	/* under fetcher.lock: the
						   body's SHA-256, once
						   whole_ok */
		EVP_MD_CTX	*hctx;	/* network thread: the SHA-256 of
					   the body so far (body_append) */
		int		 hashing;	/* network thread: hctx has
						   taken every byte so far */
		int		 summed;	/* under fetcher.lock: sum is the
						   SHA-256 of the body, all of
						   it in */
		unsigned char	 sum[32];	/* under fetcher.lock */
		/* Network thread: a bundle's transfer, owned by its leader. */
		struct job	**members;	/* its files, leader first */
		size_t		 nmembers;
		size_t		 cur;		/* the member receiving bytes */
		char		*sizes;		/* X-M4F-Sizes as received */
	} file;

	/* JOB_LIST. */
	struct {
		int		 recursive;
		char		*after;		/* network thread: paging */
		struct m4f_listing **pages;	/* every page so far */
		size_t		 npages;
		uint64_t	 before_id;	/* store_last_id() at start */
	} list;

	/* JOB_LIST and JOB_FEED: the JSON body (network thread). */
	struct {
		char		*p;
		size_t		 len, cap;
	} json;
};

struct jobq {
	struct job	*head, *tail;
};

/* A file body's mapping, page-aligned, cap bytes. */
struct body {
	unsigned char	*p;
	size_t		 cap;
};

/* The monotonic clock in ms. */
int64_t	fetch_now_ms(void);
/* Fills ts with the monotonic time timeout_ms from now (0 if negative). */
void	fetch_deadline(struct timespec *ts, int timeout_ms);
/* Is prio one of enum fetch_prio? */
int	fetch_prio_ok(enum fetch_prio prio);
/* Wakes the network thread (any thread, any lock). */
void	fetch_wake(struct fetcher *);

/* Queues: every job is in at most one, through j->next. Under lock. */
void	jobq_push(struct jobq *, struct job *j);
/* Puts j first (a retry that is due, a job given back). */
void	jobq_push_front(struct jobq *, struct job *j);
/* Takes the first job out; NULL when empty. */
struct job *jobq_pop(struct jobq *);
/* Takes j out; prev is the job before it (NULL: j is the head). */
void	jobq_unlink(struct jobq *, struct job *j, struct job *prev);

/*
 * Allocates a job with one reference (the network thread's). The caller
 * fills it and queues it with job_queue(). NULL with errno.
 */
struct job *job_new(enum job_kind, enum fetch_prio);
/* One reference more. Under lock. */
void	job_ref(struct job *);
/* Drops one reference; frees the job with the last. Takes the lock. */
void	job_unref(struct fetcher *, struct job *);
/* Appends j to its priority's queue. Under lock. */
void	job_queue(struct fetcher *, struct job *);

/*
 * Gives job j a body (j->body.buf) of size bytes, page-aligned (what the
 * store's cold installs need), a spare one when there is one: reused
 * bodies cost no page faults and leave no malloc arena grown. Takes
 * spare_lock. Returns 0, or -1 with ENOMEM.
 */
int	body_get(struct fetcher *, struct job *j, uint64_t size);
/*
 * Appends n bytes at p to the body of file job j (network thread, lock
 * not held) and hashes them while they are still in the cache: when the
 * last byte is in, the body's SHA-256 is known (j->file.sum) and
 * job_verify() hashes nothing. A body that starts over starts its hash
 * over. The caller checked that n bytes fit. Takes the lock to make the
 * bytes visible and wakes the waiters on the last one.
 */
void	body_append(struct fetcher *, struct job *j, const char *p, size_t n);
/* Unmaps every spare body (fetcher_free). */
void	body_pool_free(struct fetcher *);

/*
 * The block table: the block and file jobs not yet done, by (file,
 * key), so that every reader of a block or file shares one transfer.
 * Under lock.
 */
/*
 * The job fetching key (a block number; FETCH_WHOLE: the whole file) of
 * file e, raised to prio if it waits at a lower one, with a reference
 * for the caller when ref is set. When there is none: with rel NULL,
 * NULL; otherwise one is created and queued (*created set; rel is e's
 * path), NULL with errno on failure.
 */
struct job *job_get(struct fetcher *, const struct store_ent *e,
	    const char *rel, uint64_t key, enum fetch_prio prio, int ref,
	    int *created);
/* A queued whole-file job of file e in no table (a crawler's own). */
struct job *file_job_new(struct fetcher *, const struct store_ent *e,
	    const char *rel, enum fetch_prio prio);

/*
 * Waits with the lock held until j has at least want bytes of its body
 * or is done, or ts has passed (want UINT64_MAX: until done). Returns 0,
 * ETIMEDOUT, or ECANCELED once fetcher_cancel() was called.
 */
int	job_wait(struct fetcher *, struct job *j, uint64_t want,
	    const struct timespec *ts);
/*
 * Waits with the lock held until block job j is verified
 * (j->body.whole_ok) or done. Returns as job_wait().
 */
int	job_wait_checked(struct fetcher *, struct job *j,
	    const struct timespec *ts);

/*
 * Checks a whole-file job's body against its sha, or when that is not
 * known the digest its answer carried (once it matched, never again:
 * whoever comes first, a reader or the finisher), records the verdict in
 * the job and the body's SHA-256 in md. Returns 1 when the body matches,
 * 0 when not (or nothing to check it against), -1 when it could not be
 * hashed. Takes the lock.
 */
int	job_verify(struct fetcher *, struct job *, unsigned char md[32]);
/* Does a JSON answer's body match the digest its answer carried? 1 or 0. */
int	job_json_ok(const struct job *);

/*
 * The end of a job. Each takes the lock; none is called with it held.
 */
/* Ends j with err: wakes its waiters, drops the network thread's reference. */
void	job_end(struct fetcher *, struct job *j, int err);
/* Hands j, whose transfer ended with err, to a finisher thread. */
void	job_finish_later(struct fetcher *, struct job *j, int err);
/*
 * Puts j in the delayed list for another try after a backoff, or after
 * wait_ms when it is not 0 (a busy origin's Retry-After: not counted as
 * an attempt). Bodies start over.
 */
void	job_retry_later(struct fetcher *, struct job *j, int64_t wait_ms);

/*
 * Queues a listing of folder rel; with ref set the caller gets a
 * reference to the job (else no one waits for it). NULL with errno.
 */
struct job *list_job(struct fetcher *, const char *rel, int recursive,
	    enum fetch_prio prio, int ref);
/* fetcher_list(): list_job() and a wait for it, timeout_ms at most. */
int	list_wait(struct fetcher *, const char *rel, int recursive,
	    enum fetch_prio prio, int timeout_ms);

#endif
