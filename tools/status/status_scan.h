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
 * A gap is a time range [start, end) where the primary has segments that
 * are not complete here: it starts at the first missing segment's time
 * and ends at the time of the next segment that is complete. A gap at the
 * live edge ends where its last segment ends: its mtime when that looks
 * like an end time (after the start, within an hour), else its start plus
 * the spacing of the two segments before it, else its start plus 1.
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
	struct sscan_gap *gaps;		/* malloc'd, ngaps of them */
	size_t		 ngaps;

	/* Feeding state. */
	size_t		 gapcap;
	int		 in_gap;
	int64_t		 last_t;	/* previous segment's time, or -1 */
	int64_t		 last_mtime;
	int64_t		 step;		/* spacing before the previous one */
};

/* Starts an empty scan of segments at or after since. */
void	sscan_init(struct sscan *, int64_t since);
/* Frees the gaps; the scan may be initialised again. Accepts NULL. */
void	sscan_clear(struct sscan *);

/*
 * Feeds one segment, in time order: its time t, the primary's mtime and
 * size, and whether it is complete here and how many bytes of it are.
 * Segments before since are skipped. -1 (ENOMEM) when a gap cannot be
 * recorded.
 */
int	sscan_seg(struct sscan *, int64_t t, int64_t mtime, uint64_t size,
	    int complete, uint64_t have);
/* Closes a gap left open at the live edge; call once, after the last. */
void	sscan_finish(struct sscan *);

/*
 * Walks the store folder rel (a stream: "news", or "a/b"), feeding every
 * segment below it into sc and calling sscan_finish(). Folders whose DVR
 * times all lie before sc->since are not read. Returns 0, or -1 with
 * errno (ENOENT when rel is not in the store).
 */
int	sscan_walk(struct store *, const char *rel, struct sscan *sc);

#endif
