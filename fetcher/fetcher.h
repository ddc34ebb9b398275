/*
 * fetcher: gets bytes and listings from the primary over M4F
 * (docs/protocol.md) and puts them into the store. One network thread
 * drives libcurl's multi interface; callers on other threads (FUSE
 * workers, the crawler) queue requests and wait on them with a deadline.
 *
 * Viewers first: a FETCH_VIEWER request is started before any queued
 * FETCH_LIVE one, which goes before FETCH_BACKFILL. Crawler priorities
 * (LIVE, BACKFILL) share `transfers` parallel transfers, the bandwidth cap
 * and the replication port; viewer requests are never capped.
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
struct fetcher;

enum fetch_prio { FETCH_VIEWER = 0, FETCH_LIVE = 1, FETCH_BACKFILL = 2 };

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
 * Lists folder rel ("" for the export's root) on the primary, every page,
 * and records the result in the store with store_apply_listing(complete).
 * Waits at most timeout_ms. Returns 0, or -1 with errno.
 */
int	fetcher_list(struct fetcher *, const char *rel, int recursive,
	    enum fetch_prio prio, int timeout_ms);

/*
 * Reads up to len bytes at off of file id (path rel, size, as in the
 * store) into buf: local bytes from the store, missing blocks fetched at
 * prio (coalesced with transfers already running), each fetched block
 * written to the store. Waits at most timeout_ms for missing bytes.
 * Returns the number of bytes read (short only at end of file), or -1.
 */
ssize_t	fetcher_read(struct fetcher *, uint64_t id, void *buf, size_t len,
	    uint64_t off, enum fetch_prio prio, int timeout_ms);

/*
 * fetcher_read() without a copy where it can be: *data is set to the
 * bytes read, inside a verified body in memory when the file is being
 * fetched whole, and *ref to what holds them, given back with
 * fetcher_unref() once they have been used. Returns the number of bytes,
 * or -1 with errno (*ref NULL).
 */
struct fetch_ref;
ssize_t	fetcher_read_ref(struct fetcher *, uint64_t id, size_t len,
	    uint64_t off, enum fetch_prio prio, int timeout_ms,
	    const void **data, struct fetch_ref **ref);
/* Lets go of the bytes of one fetcher_read_ref(). NULL ok. */
void	fetcher_unref(struct fetcher *, struct fetch_ref *);

/*
 * Queues blocks [first, first+count) of file id into the store at prio
 * without waiting (read-ahead). Blocks already here or in flight are
 * skipped. Returns 0, or -1.
 */
int	fetcher_prefetch(struct fetcher *, uint64_t id, uint64_t first,
	    uint64_t count, enum fetch_prio prio);

/*
 * Queues a fetch of the whole file id into the store (store_put_file) at
 * prio — the crawler's path. done (may be NULL) is called on the network
 * thread when it ends, with 0 or an errno value; it must not block.
 * Returns 0, or -1.
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
 * One change seen on the primary's feed, already applied to the store:
 * the entry's id (0 if deleted), its parent's id and its name.
 * reset means the feed was lost and listings were refreshed instead.
 */
struct fetcher_change {
	uint64_t	 id;
	uint64_t	 parent;
	const char	*name;	/* path relative to the root */
	int		 deleted;
	int		 reset;
};

/*
 * Follows the primary's feed from now on (long-poll): applies each change
 * to the store, then calls cb on the network thread (cb must not block).
 * When the feed is reset or the origin restarted, the folders already
 * listed are listed again. Returns 0, or -1.
 */
int	fetcher_follow(struct fetcher *,
	    void (*cb)(void *arg, const struct fetcher_change *), void *arg);

struct fetcher_stats {
	uint64_t	 bytes[3];	/* received, by priority */
	uint64_t	 requests;
	uint64_t	 failures;	/* requests that ended in an error */
	uint64_t	 retries;	/* requests tried again (transient) */
	uint64_t	 bad_answers;	/* malformed, short, wrong hash */
	uint64_t	 answers;	/* responses received from the primary */
	int		 connected;	/* the last request reached the primary */
	int		 auth_failed;	/* the last answer was 401 */
};

void	fetcher_stats(struct fetcher *, struct fetcher_stats *out);

#endif
