/*
 * crawler: copies the primary's archive into the store in the background,
 * to the configured depth, newest first; follows the live edge (new
 * segments announced by the feed go first, at FETCH_LIVE); drops what
 * ages out of the depth (store_expire). It is a low-priority client of
 * the fetcher: viewers' reads always overtake it, and the fetcher holds
 * it to `transfers` transfers and the bandwidth cap.
 *
 * A segment's time is the one in its DVR path (dvrpath_time), else its
 * mtime. Resuming after a crash needs nothing special: what the store has
 * verified is complete and is never fetched again.
 */
#ifndef DVRFS_CRAWLER_H
#define DVRFS_CRAWLER_H

#include <stddef.h>
#include <stdint.h>

struct fetcher;
struct store;
struct crawler;

struct crawler_conf {
	int64_t		 depth;		/* seconds */
	const char *const *streams;	/* NULL: every stream; else NULL-ended */
	const int64_t	*stream_depth;	/* NULL, or one per stream: seconds,
					   0 for depth */
	int		 replicate;	/* 0: retention only */
	int		 transfers;	/* requests kept queued: 2 × this */
};

/*
 * Starts the crawler's thread. fetcher and store must outlive it; conf's
 * strings are copied. Returns NULL with errno; free with crawler_free().
 */
struct crawler *crawler_new(struct fetcher *, struct store *,
	    const struct crawler_conf *);
/*
 * Stops the crawler's thread: no more requests to the fetcher. Transfers
 * already queued still call back, so free the fetcher (which ends them)
 * before crawler_free(). NULL ok.
 */
void	crawler_stop(struct crawler *);
/* Stops if needed and frees. NULL ok. */
void	crawler_free(struct crawler *);

/*
 * A file id appeared or changed on the primary (parent is its folder):
 * fetch it soon, at live priority. Called from the fetcher's network
 * thread: never blocks.
 */
void	crawler_added(struct crawler *, uint64_t id);

struct crawler_stats {
	uint64_t	 done;		/* files copied since start */
	uint64_t	 done_bytes;
	uint64_t	 failed;	/* fetches that failed (retried later) */
	uint64_t	 queued;	/* waiting or in flight now */
	uint64_t	 expired;	/* files dropped by retention */
	int64_t		 last_listing;	/* when the primary was last walked */
	int		 replicating;	/* replicate is on */
};

void	crawler_stats(struct crawler *, struct crawler_stats *out);

/*
 * Calls cb with each stream (top-level folder) the crawler copied files of
 * and its bytes per second over the last few seconds.
 */
void	crawler_rates(struct crawler *,
	    void (*cb)(void *, const char *stream, double bps), void *arg);

#endif
