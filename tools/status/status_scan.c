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
	sc->oldest = sc->newest = sc->newest_known = sc->edge = -1;
	sc->last_t = -1;
}

static void
ranges_clear(struct sscan_ranges *r)
{
	free(r->v);
	memset(r, 0, sizeof(*r));
}

void
sscan_clear(struct sscan *sc)
{
	if (sc == NULL)
		return;
	ranges_clear(&sc->gaps);
	ranges_clear(&sc->prim);
	ranges_clear(&sc->local);
}

/* Appends [start, end), merged into the last range when they touch. */
static int
ranges_add(struct sscan_ranges *r, int64_t start, int64_t end)
{
	struct sscan_gap *v;
	size_t cap;

	if (r->n > 0 && start <= r->v[r->n - 1].end) {
		if (end > r->v[r->n - 1].end)
			r->v[r->n - 1].end = end;
		return 0;
	}
	if (r->n == r->cap) {
		cap = r->cap ? r->cap * 2 : 16;
		if ((v = realloc(r->v, cap * sizeof(*v))) == NULL)
			return -1;
		r->v = v;
		r->cap = cap;
	}
	r->v[r->n].start = start;
	r->v[r->n].end = end;
	r->n++;
	return 0;
}

/*
 * Where the previous segment ends when next (-1: none) is the time of
 * the one after it. See the header for the rule.
 */
static int64_t
seg_end(const struct sscan *sc, int64_t next)
{
	int64_t t = sc->last_t, end, slack;

	if (sc->last_mtime > t && sc->last_mtime - t <= EDGE_MAX)
		end = sc->last_mtime;
	else if (sc->step > 0 && sc->step <= EDGE_MAX)
		end = t + sc->step;
	else if (next >= 0)
		return next;	/* nothing to go by: they follow */
	else
		end = t + 1;
	if (next < 0)
		return end;
	slack = sc->step / 2 > 1 ? sc->step / 2 : 1;
	if (next <= end + slack)
		return next;
	return end;
}

/* Places the previous segment in the ranges. */
static int
place(struct sscan *sc, int64_t next)
{
	int64_t end = seg_end(sc, next);

	if (ranges_add(&sc->prim, sc->last_t, end) == -1 ||
	    ranges_add(sc->last_complete ? &sc->local : &sc->gaps,
	    sc->last_t, end) == -1)
		return -1;
	sc->edge = end;
	return 0;
}

int
sscan_seg(struct sscan *sc, int64_t t, int64_t mtime, uint64_t size,
    int complete, uint64_t have)
{
	if (t < sc->since)
		return 0;
	if (sc->last_t >= 0) {
		if (place(sc, t) == -1)
			return -1;
		sc->step = t - sc->last_t;
	}
	sc->last_t = t;
	sc->last_mtime = mtime;
	sc->last_complete = complete;
	sc->segs++;
	sc->bytes += size;
	sc->newest_known = t;
	if (complete) {
		sc->segs_done++;
		sc->bytes_done += size;
		if (sc->oldest < 0)
			sc->oldest = t;
		sc->newest = t;
		return 0;
	}
	sc->bytes_partial += have < size ? have : size;
	return 0;
}

int
sscan_finish(struct sscan *sc)
{
	int rc = 0;

	if (sc->last_t >= 0)
		rc = place(sc, -1);
	sc->last_t = -1;
	return rc;
}

/* A folder's children, as walk() keeps them while it goes down. */
struct kids {
	struct kid {
		uint64_t	 id;
		enum store_type	 type;
		enum store_state state;
		uint64_t	 size;
		uint64_t	 have;
		int64_t		 mtime;
		size_t		 name;		/* offset in names */
	}		*v;
	size_t		 n, cap;
	char		*names;
	size_t		 len, room;
};

static int
kid_add(void *arg, const struct store_row *r)
{
	struct kids *k = arg;
	void *p;

	if (k->n == k->cap) {
		if ((p = reallocarray(k->v, k->cap ? k->cap * 2 : 64,
		    sizeof(*k->v))) == NULL)
			return -1;
		k->v = p;
		k->cap = k->cap ? k->cap * 2 : 64;
	}
	if (k->room - k->len < r->namelen + 1) {
		size_t room = k->room ? k->room * 2 : 4096;

		while (room - k->len < r->namelen + 1)
			room *= 2;
		if ((p = realloc(k->names, room)) == NULL)
			return -1;
		k->names = p;
		k->room = room;
	}
	memcpy(k->names + k->len, r->name, r->namelen);
	k->names[k->len + r->namelen] = '\0';
	k->v[k->n++] = (struct kid){ r->id, r->type, r->state, r->size,
	    r->have, r->mtime, k->len };
	k->len += r->namelen + 1;
	return 0;
}

/*
 * Walks folder dir whose path is path[0..len). path has room for
 * PATH_MAX bytes and is restored on return.
 */
static int
walk(struct store *s, uint64_t dir, char *path, size_t len, struct sscan *sc)
{
	struct kids k = { 0 };
	const struct kid *e;
	const char *name;
	int64_t t, span;
	size_t i, nl;
	ssize_t got;
	int rc = -1;

	if ((got = store_scan_dir(s, dir, kid_add, &k)) == -1)
		goto out;
	if ((size_t)got != k.n) {
		errno = ENOMEM;		/* kid_add stopped the scan */
		goto out;
	}
	for (i = 0; i < k.n; i++) {
		e = &k.v[i];
		name = k.names + e->name;
		nl = strlen(name);
		if (len + 1 + nl >= PATH_MAX)
			continue;	/* cannot be a path the store made */
		path[len] = '/';
		memcpy(path + len + 1, name, nl + 1);
		if (e->type == STORE_DIR) {
			/* Old year, month, day and hour folders are skipped. */
			if (dvrpath_span(path, &t, &span) == 0 &&
			    t + span <= sc->since)
				continue;
			if (walk(s, e->id, path, len + 1 + nl, sc) == -1)
				goto out;
		} else if (e->type == STORE_FILE &&
		    dvrpath_time(path, &t, NULL) == 0) {
			if (sscan_seg(sc, t, e->mtime, e->size,
			    e->state == STORE_COMPLETE, e->have) == -1)
				goto out;
		}
	}
	rc = 0;
out:
	path[len] = '\0';
	free(k.v);
	free(k.names);
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
		rc = sscan_finish(sc);
	return rc;
}
