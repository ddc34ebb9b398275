/*
 * plan: what dvrfs-restore copies. From the peer's files and the local
 * names it picks, per stream (a top-level folder), the segments that
 * fill a gap in the local recording within the stream's depth (the rule
 * of gaps.h) and the other files the local folder lacks, and sums them
 * up: files, bytes and the time ranges filled. No I/O.
 */
#ifndef DVRFS_PLAN_H
#define DVRFS_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "m4f.h"

struct dvrfs_opts;

/* Segments younger than this (or 3 spacings) are the local recorder's. */
#define PLAN_SETTLE	10

struct plan_range {
	int64_t		 from, to;	/* [from, to), unix seconds */
};

struct plan_stream {
	char		*name;		/* top-level folder; "" for files
					   at the top */
	size_t		 files;
	uint64_t	 bytes;
	size_t		 overlap;	/* peer segments the local
					   recording already covers */
	struct plan_range *r;		/* ascending, merged */
	size_t		 nr;
};

struct plan {
	size_t		*copy;		/* indices into the peer's files,
					   newest segments first */
	size_t		 ncopy;
	uint64_t	 bytes;
	struct plan_stream *s;		/* sorted by name */
	size_t		 ns;
};

/*
 * The plan for peer[np] (names relative to the export) against the
 * sorted local names local[nl], for o's streams and depths at time now.
 * Returns a plan to free with plan_free(), or NULL with errno ENOMEM.
 */
struct plan	*plan_make(const struct m4f_entry *peer, size_t np,
		    char *const *local, size_t nl,
		    const struct dvrfs_opts *o, int64_t now);
void		 plan_free(struct plan *);

#endif
