/*
 * origin_feed: the feed of changes. An inotify thread watches every
 * folder of every export, numbers each add/del in a ring of recent events
 * and wakes the long-polling requests. Functions return 0 / -1 with errno,
 * NULL for pointers.
 */
#ifndef ORIGIN_FEED_H
#define ORIGIN_FEED_H

#include <stddef.h>
#include <stdint.h>

struct oexport;
struct ohash;
struct ohasher;

struct ofeed;

/*
 * Watches the exports (which must outlive the feed) and starts the
 * thread. New files too large to hash at once go to hasher (may be NULL).
 */
struct ofeed	*ofeed_open(const struct oexport *, size_t nex, struct ohash *,
		    struct ohasher *hasher);
/* Wakes every waiting request; later ones answer at once. */
void		 ofeed_stop(struct ofeed *);
/* Stops the thread and frees the feed; accepts NULL. */
void		 ofeed_close(struct ofeed *);

/*
 * The feed answer (malloc'd JSON, caller frees) for export ex, limited to
 * names under sub ("" for all) and relative to it. Without has_since it
 * answers at once with the current seq; else it waits up to wait seconds
 * for an event after since. Until every folder is watched (the feed's
 * start) it first waits up to wait seconds for that: NULL with EAGAIN if
 * it is not done by then. Blocks the calling thread; NULL on error.
 */
char		*ofeed_get(struct ofeed *, const struct oexport *ex,
		    const char *sub, int has_since, uint64_t since,
		    unsigned wait);

#endif
