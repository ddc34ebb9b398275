#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dvrpath.h"
#include "status_scan.h"
#include "store.h"

#define EDGE_MAX	3600	/* longest segment believed, seconds */

void
sscan_init(struct sscan *sc, int64_t since)
{
	memset(sc, 0, sizeof(*sc));
	sc->since = since;
	sc->oldest = sc->newest = sc->newest_known = -1;
	sc->last_t = -1;
}

void
sscan_clear(struct sscan *sc)
{
	if (sc == NULL)
		return;
	free(sc->gaps);
	sc->gaps = NULL;
	sc->ngaps = sc->gapcap = 0;
}

static int
gap_open(struct sscan *sc, int64_t start)
{
	struct sscan_gap *v;
	size_t cap;

	if (sc->ngaps == sc->gapcap) {
		cap = sc->gapcap ? sc->gapcap * 2 : 16;
		if ((v = realloc(sc->gaps, cap * sizeof(*v))) == NULL)
			return -1;
		sc->gaps = v;
		sc->gapcap = cap;
	}
	sc->gaps[sc->ngaps].start = start;
	sc->gaps[sc->ngaps].end = start;
	sc->ngaps++;
	sc->in_gap = 1;
	return 0;
}

int
sscan_seg(struct sscan *sc, int64_t t, int64_t mtime, uint64_t size,
    int complete, uint64_t have)
{
	if (t < sc->since)
		return 0;
	if (sc->last_t >= 0)
		sc->step = t - sc->last_t;
	sc->last_t = t;
	sc->last_mtime = mtime;
	sc->segs++;
	sc->bytes += size;
	sc->newest_known = t;
	if (complete) {
		sc->segs_done++;
		sc->bytes_done += size;
		if (sc->oldest < 0)
			sc->oldest = t;
		sc->newest = t;
		if (sc->in_gap) {
			sc->gaps[sc->ngaps - 1].end = t;
			sc->in_gap = 0;
		}
		return 0;
	}
	sc->bytes_partial += have < size ? have : size;
	if (!sc->in_gap)
		return gap_open(sc, t);
	return 0;
}

void
sscan_finish(struct sscan *sc)
{
	int64_t t = sc->last_t, end;

	if (!sc->in_gap)
		return;
	if (sc->last_mtime > t && sc->last_mtime - t <= EDGE_MAX)
		end = sc->last_mtime;
	else if (sc->step > 0 && sc->step <= EDGE_MAX)
		end = t + sc->step;
	else
		end = t + 1;
	sc->gaps[sc->ngaps - 1].end = end;
	sc->in_gap = 0;
}

/*
 * Walks folder dir whose path is path[0..len). path has room for
 * PATH_MAX bytes and is restored on return.
 */
static int
walk(struct store *s, uint64_t dir, char *path, size_t len, struct sscan *sc)
{
	struct store_ent *kids = NULL;
	const struct store_ent *e;
	int64_t t, span;
	size_t i, nl, nkids = 0;
	int rc = -1;

	if (store_children(s, dir, &kids, &nkids) == -1)
		goto out;
	for (i = 0; i < nkids; i++) {
		e = &kids[i];
		nl = strlen(e->name);
		if (len + 1 + nl >= PATH_MAX)
			continue;	/* cannot be a path the store made */
		path[len] = '/';
		memcpy(path + len + 1, e->name, nl + 1);
		if (e->type == STORE_DIR) {
			/* Old year, month, day and hour folders are skipped. */
			if (dvrpath_span(path, &t, &span) == 0 &&
			    t + span <= sc->since)
				continue;
			if (walk(s, e->id, path, len + 1 + nl, sc) == -1)
				goto out;
		} else if (dvrpath_time(path, &t, NULL) == 0) {
			if (sscan_seg(sc, t, e->mtime, e->size,
			    e->state == STORE_COMPLETE, e->have) == -1)
				goto out;
		}
	}
	rc = 0;
out:
	path[len] = '\0';
	free(kids);
	return rc;
}

int
sscan_walk(struct store *s, const char *rel, struct sscan *sc)
{
	struct store_ent top;
	char *path;
	size_t len;
	int rc;

	len = strlen(rel);
	if (len == 0 || len >= PATH_MAX) {
		errno = EINVAL;
		return -1;
	}
	if (store_resolve(s, rel, &top) == -1)
		return -1;
	if (top.type != STORE_DIR) {
		errno = ENOTDIR;
		return -1;
	}
	if ((path = malloc(PATH_MAX)) == NULL)
		return -1;
	memcpy(path, rel, len + 1);
	rc = walk(s, top.id, path, len, sc);
	free(path);
	if (rc == 0)
		sscan_finish(sc);
	return rc;
}
