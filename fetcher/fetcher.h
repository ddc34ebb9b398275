/*
 * fetcher: gets bytes and listings from the primary over M4F
 * (docs/protocol.md) and puts them into the store. One network thread
 * drives libcurl's multi interface; callers on other threads (FUSE
 * workers, the crawler) queue requests and wait on them with a deadline.
 *
 * Viewers first: a FETCH_VIEWER request (a reader waits for it) is
 * started at once; FETCH_AHEAD (read-ahead for a viewer) runs at most
 * FETCH_AHEAD_RUNNING transfers at a time, so that a reader's own request
 * never queues behind everybody's read-ahead, and a queued read-ahead a
 * reader then waits for is raised to FETCH_VIEWER; both go before any
 * queued FETCH_LIVE one, which goes before FETCH_BACKFILL. Crawler
 * priorities (LIVE, BACKFILL) share `transfers` parallel transfers, the
 * bandwidth cap and the replication port; viewer and read-ahead requests
 * are never capped by them. While viewer or read-ahead requests run or
 * wait, and for a moment after, the crawler starts one transfer at a
 * time.
 *
 * Many readers of the same block or file make one transfer (coalescing). A
 * file with a known SHA-256 is served only once all of it has arrived and
 * matches: up to whole_max it is fetched with one request, and the next
 * reader, the crawler and the store share that one body.
 *
 * Convention: 0 on success, -1 with errno; pointers NULL with errno.
 * errno values callers see: ETIMEDOUT (deadline passed), EHOSTDOWN (the
 * primary cannot be reached), EACCES (401: wrong cluster key), ENOENT (404),
 * EBADMSG (a malformed or inconsistent answer, a hash mismatch), EIO
 * (anything else), ENOSPC (the store is full).
 */
#ifndef DVRFS_FETCHER_H
#define DVRFS_FETCHER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct store;
struct store_ent;
struct store_changes;
struct fetcher;

enum fetch_prio {
	FETCH_VIEWER = 0,	/* a reader waits for it */
	FETCH_AHEAD = 1,	/* read-ahead: a viewer reads it soon */
	FETCH_LIVE = 2,		/* the crawler: the live edge */
	FETCH_BACKFILL = 3	/* the crawler: the archive */
};
#define FETCH_PRIOS	4	/* how many priorities there are */
#define FETCH_AHEAD_RUNNING 8	/* read-ahead transfers at once, at most */

struct fetcher_conf {
	int		 tls;		/* m4fs:// (HTTPS, certificates checked) */
	const char	*host;
	int		 port;		/* the main port */
	int		 replication_port;	/* crawler traffic; 0: port */
	const char	*export;	/* absolute URL path, e.g. "/storage" */
	const void	*key;		/* cluster key, NULL: none */
	size_t		 keylen;
	const char	*cafile;	/* m4fs: CA bundle, NULL: system's */
	int		 connect_timeout_ms;	/* 0: 5000 */
	int		 transfers;	/* crawler transfers at once; 0: 4 */
	uint64_t	 bwlimit;	/* crawler bytes per second; 0: none */
	int		 retries;	/* per request on transient errors; 0: 3 */
	uint64_t	 whole_max;	/* a file with a hash up to this size
					   is read with one request for all of
					   it (it is served only whole and
					   verified); 0: 64 MiB */
};

/*
 * Starts the network thread. The store must outlive the fetcher. conf's
 * strings are copied. Returns NULL with errno on failure; free with
 * fetcher_free().
 */
struct fetcher *fetcher_new(const struct fetcher_conf *conf,
	    struct store *store);
/* Stops the network thread, fails every waiting request, frees. NULL ok. */
void	fetcher_free(struct fetcher *);
/*
 * Ends every wait of a caller at once (ECANCELED), now and from now on:
 * the daemon is stopping, whatever is in flight. Any thread.
 */
void	fetcher_cancel(struct fetcher *);

/*
 * Lists folder rel ("" for the export's root) on the primary, every page,
 * and records the result in the store with store_apply_snapshot() (what
 * the feed added meanwhile is kept).
 * Waits at most timeout_ms. Returns 0, or -1 with errno.
 */
int	fetcher_list(struct fetcher *, const char *rel, int recursive,
	    enum fetch_prio prio, int timeout_ms);

/*
 * Lists folder rel again where the primary may have changed it since the
 * store listed it (fetcher/relist.c): each folder one level, a DVR hour
 * with its subtree unless its listing was taken after the hour was over
 * and the hour's folder has not changed since. Folders never listed are
 * left unlisted, or with complete listed with their subtree. Each
 * listing waits at most timeout_ms. Blocks; not on the network thread.
 * Returns 0, or -1 with errno when a listing failed.
 */
int	fetcher_relist(struct fetcher *, const char *rel, int complete,
	    enum fetch_prio prio, int timeout_ms);

/*
 * What one read is served from (fetcher_serve()): the file's complete
 * data file, or bytes in memory.
 */
struct fetch_hold;
struct fetch_data {
	int		 fd;	/* >= 0: the complete data file, to send len
				   bytes at the read's offset from (splice);
				   the caller's to close */
	const void	*p;	/* fd -1: the len bytes, valid until
				   fetcher_release() */
	size_t		 len;	/* bytes served: short only at end of file */
	int		 local;	/* served from the store alone */
	struct fetch_hold *hold;	/* the fetcher's: what keeps p valid */
};

/* fetcher_serve() flags. */
#define FETCH_LOCAL	1	/* the primary is known to be away: bytes
				   not in the store fail with EHOSTDOWN at
				   once instead of being asked for */

/*
 * Serves up to len bytes at off of file e (an entry the caller has just
 * read with store_get()). The one place that decides how a read is
 * served: a complete file from its data file; a file with a known
 * SHA-256 only once all of it has arrived and matches (up to whole_max
 * from one request for the whole file, held in memory without a copy;
 * bigger ones block by block, verified and installed by the store); a
 * file with no known hash from its blocks as they arrive. Missing bytes
 * are fetched at prio, coalesced with transfers already running, and
 * waited for at most timeout_ms in all; a body found wrong is fetched
 * again, three times at most (then EIO). Fills *out (out->len 0 at or
 * past the end) and returns 0; the caller gives it back with
 * fetcher_release() and closes out->fd. Returns -1 with errno on
 * failure (EISDIR for a folder, EINVAL for a bad prio), *out then holds
 * nothing. Neither takes a lock the caller holds; store_touch() is the
 * caller's.
 */
int	fetcher_serve(struct fetcher *, const struct store_ent *e,
	    uint64_t off, size_t len, enum fetch_prio prio, int timeout_ms,
	    int flags, struct fetch_data *out);
/* Lets go of what one fetcher_serve() holds (not of out->fd). */
void	fetcher_release(struct fetcher *, struct fetch_data *);

/*
 * fetcher_serve() of file id into buf, a copy: reads up to len bytes at
 * off. Returns the number of bytes read (short only at end of file), or
 * -1 with errno (ENOENT: no such entry).
 */
ssize_t	fetcher_read(struct fetcher *, uint64_t id, void *buf, size_t len,
	    uint64_t off, enum fetch_prio prio, int timeout_ms);

/*
 * Read-ahead: queues what serving blocks [first, first+count) of file e
 * needs at prio without waiting — its whole-file job when it is fetched
 * whole, else its blocks not here. What is here or in flight is not
 * asked again. Returns 0, or -1 with errno.
 */
int	fetcher_prefetch(struct fetcher *, const struct store_ent *e,
	    uint64_t first, uint64_t count, enum fetch_prio prio);
/*
 * Is file e being fetched, queued or running: its whole-file job, or
 * when it is read by blocks its first block's? 1 or 0. Changes no job.
 */
int	fetcher_fetching(struct fetcher *, const struct store_ent *e);

/*
 * Queues a fetch of the whole file id at prio — the crawler's path: the
 * body is checked against the entry's SHA-256 and installed with
 * store_put_verified() (around the page cache, as every fetched file:
 * a viewer that asked for it too was served from the body). Shares the
 * job a reader may have started. done (may be NULL) is called on a
 * network or finisher thread when it ends, with 0 or an errno value; it
 * must not block. Returns 0, or -1 with errno.
 */
int	fetcher_get_file(struct fetcher *, uint64_t id, enum fetch_prio prio,
	    void (*done)(void *arg, uint64_t id, int err), void *arg);

/*
 * While held (hold 1), queued LIVE and BACKFILL jobs wait; the last
 * release (hold 0) starts them together, so that files of one folder
 * can share a request. Holds nest.
 */
void	fetcher_hold(struct fetcher *, int hold);

/*
 * A change on the primary, already applied to the store. One seen on the
 * feed: the entry's id (0 if deleted), its parent's id and its name.
 * reset means the feed was lost and listings are refreshed instead. Or,
 * with listing set (and nothing else), what a listing of a folder
 * changed (store_apply_snapshot()), valid during the call.
 */
struct fetcher_change {
	uint64_t	 id;
	uint64_t	 parent;
	const char	*name;	/* path relative to the root */
	int		 deleted;
	int		 reset;
	const struct store_changes *listing;
};

/*
 * Follows the primary's feed from now on (long-poll): applies each change
 * to the store, then calls cb on the network thread (cb must not block).
 * When the feed is reset or the origin restarted, the folders already
 * listed are listed again. Each listing that changed what the store had
 * (whoever asked for it) calls cb too, on a finisher thread. Returns 0,
 * or -1.
 */
int	fetcher_follow(struct fetcher *,
	    void (*cb)(void *arg, const struct fetcher_change *), void *arg);

struct fetcher_stats {
	uint64_t	 bytes[FETCH_PRIOS];	/* received, by priority
						   (read-ahead's counted as
						   FETCH_VIEWER's) */
	uint64_t	 requests;
	uint64_t	 failures;	/* requests that ended in an error */
	uint64_t	 retries;	/* requests tried again (transient) */
	uint64_t	 bad_answers;	/* malformed, short, wrong hash */
	uint64_t	 answers;	/* responses received from the primary */
	uint64_t	 bad_signatures;	/* answers refused for their
						   signature (cluster key) */
	int		 connected;	/* the last request reached the primary */
	int		 auth_failed;	/* the last answer was 401 */
};

void	fetcher_stats(struct fetcher *, struct fetcher_stats *out);

#endif
