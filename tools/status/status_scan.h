/*
 * status_scan: what part of each stream's archive within the depth is
 * complete in the local store, and where the holes are. Used by
 * dvrfs-status; reads the store only.
 *
 * A segment is a file whose path parses as a DVR path
 * (STREAM/YYYY/MM/DD/HH/MM/SS.ext); its time is the start the path names.
 * Segments are fed in time order (the store lists names in byte order,
 * and DVR paths are fixed-width, so byte order is time order).
 *
 * Each segment covers [its time, its end). Its end is the next segment's
 * time when the two follow each other; otherwise (a hole in the primary's
 * recording, or the live edge) where it ends by itself: its mtime when
 * that looks like an end time (after the start, within an hour), else its
 * start plus the spacing of the two segments before it, else its start
 * plus 1. Two segments follow each other when the second starts no later
 * than half a spacing (at least 1 s) after the end of the first.
 *
 * From that, three lists of time ranges [start, end), in time order, with
 * adjacent ranges merged: what the primary has (prim), what is complete
 * here (local), and the gaps: what the primary has that is not complete
 * here. A gap runs from the first missing segment's time to the next
 * complete segment's time, or to the end of its last segment where the
 * primary's recording stops.
 *
 * Convention: 0 on success, -1 with errno.
 */
#ifndef DVRFS_STATUS_SCAN_H
#define DVRFS_STATUS_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct sscan_gap {
	int64_t		 start;
	int64_t		 end;
};

/* A growing list of time ranges. */
struct sscan_ranges {
	struct sscan_gap *v;		/* malloc'd, n of them */
	size_t		 n;
	size_t		 cap;
};

struct sscan {
	int64_t		 since;		/* segments before this are ignored */
	uint64_t	 segs;		/* segments the primary has, in depth */
	uint64_t	 bytes;
	uint64_t	 segs_done;	/* of those, complete here */
	uint64_t	 bytes_done;
	uint64_t	 bytes_partial;	/* bytes here of incomplete segments */
	int64_t		 oldest;	/* first complete segment's time, or -1 */
	int64_t		 newest;	/* last complete segment's time, or -1 */
	int64_t		 newest_known;	/* last segment's time, or -1 */
	int64_t		 edge;		/* last segment's end, or -1 */
	struct sscan_ranges gaps;	/* missing here */
	struct sscan_ranges prim;	/* what the primary has */
	struct sscan_ranges local;	/* what is complete here */

	/* Feeding state: the previous segment, not yet placed. */
	int64_t		 last_t;	/* its time, or -1 */
	int64_t		 last_mtime;
	int		 last_complete;
	int64_t		 step;		/* spacing before it */
};

/* Starts an empty scan of segments at or after since. */
void	sscan_init(struct sscan *, int64_t since);
/* Frees the ranges; the scan may be initialised again. Accepts NULL. */
void	sscan_clear(struct sscan *);

/*
 * Feeds one segment, in time order: its time t, the primary's mtime and
 * size, and whether it is complete here and how many bytes of it are.
 * Segments before since are skipped. -1 (ENOMEM) when a gap cannot be
 * recorded.
 */
int	sscan_seg(struct sscan *, int64_t t, int64_t mtime, uint64_t size,
	    int complete, uint64_t have);
/*
 * Places the last segment (the live edge); call once, after the last.
 * -1 (ENOMEM) when a range cannot be recorded.
 */
int	sscan_finish(struct sscan *);

/*
 * Walks the store folder rel (a stream: "news", or "a/b"), feeding every
 * segment below it into sc and calling sscan_finish(). Folders whose DVR
 * times all lie before sc->since are not read. Returns 0, or -1 with
 * errno (ENOENT when rel is not in the store).
 */
int	sscan_walk(struct store *, const char *rel, struct sscan *sc);

#endif
