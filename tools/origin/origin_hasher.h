/*
 * origin_hasher: hashing nobody waits for, on a thread of its own. Files
 * too large to hash on the feed thread when they appear are queued here;
 * with a rate, it also walks the back catalogue newest first and hashes
 * every file the cache does not know, at most that many bytes a second.
 * Functions return 0 / -1 with errno, NULL for pointers.
 */
#ifndef ORIGIN_HASHER_H
#define ORIGIN_HASHER_H

#include <stddef.h>
#include <stdint.h>

struct oexport;
struct ohash;
struct ohasher;

/*
 * Starts the thread over the exports (which, like the cache, must outlive
 * it). rate: bytes per second for the back-catalogue pass, 0 for none;
 * queued new files are hashed at that rate too, or at OHASHER_LIVE_RATE
 * without one.
 */
struct ohasher	*ohasher_open(const struct oexport *, size_t nex,
		    struct ohash *, uint64_t rate);
/* Stops the thread (a file being hashed is given up) and frees; NULL ok. */
void		 ohasher_close(struct ohasher *);

/*
 * Queues the new file rel of ex to be hashed soon. Never blocks: when the
 * queue is full the file is left to be hashed when it is served or by the
 * pass. hr may be NULL (nothing is done).
 */
void		 ohasher_queue(struct ohasher *hr, const struct oexport *ex,
		    const char *rel);

/*
 * Parses a rate: a decimal number of bytes per second with an optional
 * K, M or G suffix (powers of 1024), at most 2^40. 0 or -1.
 */
int		 ohasher_parse_rate(const char *s, uint64_t *rate);

/* Queued new files hashed this fast at most without a rate (bytes/s). */
#define OHASHER_LIVE_RATE	((uint64_t)200 << 20)

#endif
