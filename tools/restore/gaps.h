/*
 * gaps: the time-aware rule of dvrfs-restore. Two recorders cut a stream
 * into segments at different moments, so a peer's segment is wanted only
 * where the local recording has nothing: its span overlaps no local
 * segment's span.
 *
 * A segment's span runs from its start (the time in its path) to the
 * next later start in the same list; the last one's, and one followed by
 * a hole in the recording (the next start more than GAPS_HOLE times the
 * usual spacing away), is the usual spacing long. The usual spacing of a
 * list is the median distance between consecutive starts.
 *
 * No state, no locking, no allocation but where said.
 */
#ifndef DVRFS_GAPS_H
#define DVRFS_GAPS_H

#include <stddef.h>
#include <stdint.h>

#define GAPS_HOLE		3	/* spacings: farther is a hole */
#define GAPS_DEFAULT_SPACING	2	/* seconds, for a list of one */

/*
 * The usual spacing of the ascending starts t[n]: the median of the
 * positive differences between neighbours, or fallback when there are
 * none.
 */
int64_t	gaps_spacing(const int64_t *t, size_t n, int64_t fallback);

/* The end of each span of t[n] (ascending) into end[n]. */
void	gaps_ends(const int64_t *t, size_t n, int64_t spacing, int64_t *end);

/*
 * Which peer segments fill a gap: peer[np] and local[nl] are ascending
 * starts of one stream. Sets want[i] to 1 when peer segment i starts at
 * or after from (the depth), its span ended at or before until (newer
 * ones are left to the local recorder, which may still be writing its
 * own), and its span overlaps no local span; else 0. peer_end (may be
 * NULL) gets the peer spans' ends. Returns the number wanted, or
 * (size_t)-1 with errno ENOMEM.
 */
size_t	gaps_fill(const int64_t *peer, size_t np, const int64_t *local,
	    size_t nl, int64_t from, int64_t until, uint8_t *want,
	    int64_t *peer_end);

#endif
