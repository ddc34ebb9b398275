/*
 * playback: Flussonic's playback names inside a stream folder, and the
 * text they answer with, from a list of segments. No I/O, no locking:
 * vfile.c gathers the segments and serves the results.
 *
 *	index.m3u8			the live playlist (newest segments)
 *	archive-FROM-DURATION.m3u8	a VOD playlist of [FROM, FROM+DURATION)
 *	index-FROM-DURATION.m3u8	the same
 *	archive-FROM-now.m3u8		an EVENT playlist from FROM on
 *	archive-FROM-DURATION.ts	the range's segments as one file
 *	recording_status.json		the recorded ranges, and what is local
 *
 * Times are UTC Unix seconds. Functions return 0 or -1 with errno unless
 * said otherwise.
 */
#ifndef DVRFS_PLAYBACK_H
#define DVRFS_PLAYBACK_H

#include <stddef.h>
#include <stdint.h>

#define PB_DURATION_MAX	86400	/* one playlist covers at most a day */
#define PB_LIVE_WINDOW	6	/* segments in index.m3u8 */
#define PB_GAP_FACTOR	1.5	/* a spacing past 1.5 × the usual is a gap */

enum pb_kind {
	PB_LIVE,	/* index.m3u8 */
	PB_VOD,		/* archive-/index-FROM-DURATION.m3u8 */
	PB_EVENT,	/* archive-FROM-now.m3u8 */
	PB_TS,		/* archive-FROM-DURATION.ts */
	PB_STATUS,	/* recording_status.json */
};

struct pb_name {
	enum pb_kind	 kind;
	int64_t		 from;		/* PB_VOD, PB_EVENT, PB_TS */
	int64_t		 duration;	/* PB_VOD, PB_TS; PB_EVENT: to now */
};

/*
 * Parses a playback name seen in a stream folder at time now. Returns 0,
 * or -1 with ENOENT for anything else: not one of the forms, numbers with
 * a sign, leading zeros or trailing garbage, DURATION 0 or over a day,
 * FROM in the future, an EVENT range longer than a day.
 */
int	pb_parse(const char *name, int64_t now, struct pb_name *out);

/* One segment of a stream, in time order in the arrays below. */
struct pb_seg {
	int64_t		 t;		/* start, from its DVR path */
	uint64_t	 id;		/* the store's entry */
	uint64_t	 size;
	uint32_t	 rel;		/* offset of its path (relative to the
					   stream folder) in the names arena */
	int		 local;		/* complete in the store */
};

/*
 * The usual spacing of the segments in seconds: the median of the
 * differences between consecutive starts, 0 when there are fewer than two.
 */
double	pb_spacing(const struct pb_seg *v, size_t n);

/*
 * The duration of segment i: up to the next start when that follows
 * within PB_GAP_FACTOR × spacing, else spacing (the last segment, or one
 * before a gap). A spacing of 0 counts as 2 s.
 */
double	pb_duration(const struct pb_seg *v, size_t n, size_t i,
	    double spacing);

/*
 * The indexes [*first, *end) of the segments that intersect [from, to).
 * Returns the count.
 */
size_t	pb_range(const struct pb_seg *v, size_t n, int64_t from, int64_t to,
	    double spacing, size_t *first, size_t *end);

/*
 * An HLS playlist of segments [first, end) of v (names in names): kind
 * PB_VOD or PB_LIVE/PB_EVENT (no ENDLIST, a sliding or growing list).
 * #EXT-X-DISCONTINUITY and #EXT-X-PROGRAM-DATE-TIME mark each gap. The
 * text is malloc'd (the caller frees) with its length in *len; NULL with
 * errno on failure.
 */
char	*pb_m3u8(enum pb_kind kind, const struct pb_seg *v, size_t first,
	    size_t end, double spacing, const char *names, size_t *len);

/*
 * recording_status.json for stream: the ranges the segments cover (a gap
 * splits them) and, in "local", the ranges of segments in the store.
 * malloc'd text, its length in *len; NULL with errno.
 */
char	*pb_status(const char *stream, const struct pb_seg *v, size_t n,
	    double spacing, size_t *len);

#endif
