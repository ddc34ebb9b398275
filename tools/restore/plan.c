#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dvrpath.h"
#include "gaps.h"
#include "opts.h"
#include "plan.h"

/* A segment of one side: its stream (dvrpath's), its start, its index. */
struct seg {
	const char	*name;
	size_t		 slen;		/* the stream part of name */
	int64_t		 t;
	size_t		 idx;
};

static int
cmp_seg(const void *a, const void *b)
{
	const struct seg *x = a, *y = b;
	size_t n = x->slen < y->slen ? x->slen : y->slen;
	int c = memcmp(x->name, y->name, n);

	if (c == 0 && x->slen != y->slen)
		return x->slen < y->slen ? -1 : 1;
	if (c != 0)
		return c;
	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int
same_stream(const struct seg *a, const struct seg *b)
{
	return a->slen == b->slen && memcmp(a->name, b->name, a->slen) == 0;
}

/* The length of the top-level component of rel (0: a file at the top). */
static size_t
top_len(const char *rel)
{
	const char *s = strchr(rel, '/');

	return s != NULL ? (size_t)(s - rel) : 0;
}

static struct plan_stream *
stream_of(struct plan *p, const char *rel)
{
	size_t len = top_len(rel), i;
	struct plan_stream *ns;

	for (i = 0; i < p->ns; i++)
		if (strlen(p->s[i].name) == len &&
		    memcmp(p->s[i].name, rel, len) == 0)
			return &p->s[i];
	if ((ns = realloc(p->s, (p->ns + 1) * sizeof(*ns))) == NULL)
		return NULL;
	p->s = ns;
	ns = &p->s[p->ns];
	memset(ns, 0, sizeof(*ns));
	if ((ns->name = strndup(rel, len)) == NULL)
		return NULL;
	p->ns++;
	return ns;
}

static int
add_range(struct plan_stream *s, int64_t from, int64_t to)
{
	struct plan_range *nr;

	if (s->nr > 0 && from <= s->r[s->nr - 1].to) {
		if (to > s->r[s->nr - 1].to)
			s->r[s->nr - 1].to = to;
		return 0;
	}
	if ((nr = realloc(s->r, (s->nr + 1) * sizeof(*nr))) == NULL)
		return -1;
	s->r = nr;
	s->r[s->nr].from = from;
	s->r[s->nr++].to = to;
	return 0;
}

static int
add_copy(struct plan *p, const struct m4f_entry *e, size_t idx)
{
	struct plan_stream *s;

	if ((s = stream_of(p, e->name)) == NULL)
		return -1;
	s->files++;
	s->bytes += e->size;
	p->bytes += e->size;
	p->copy[p->ncopy++] = idx;
	return 0;
}

/*
 * Collects the segments among names (n, as peer entries or local
 * strings) of the wanted streams into *out, sorted by stream and time.
 */
static int
collect(const struct m4f_entry *peer, char *const *local, size_t n,
    const struct dvrfs_opts *o, struct seg **out, size_t *nout)
{
	struct seg *v;
	size_t i, k = 0, slen;
	const char *name;
	int64_t t;

	if ((v = malloc((n ? n : 1) * sizeof(*v))) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		name = peer != NULL ? peer[i].name : local[i];
		if (!opts_stream_wanted(o, name, top_len(name)) ||
		    dvrpath_time(name, &t, &slen) == -1)
			continue;
		v[k++] = (struct seg){ name, slen, t, i };
	}
	qsort(v, k, sizeof(*v), cmp_seg);
	*out = v;
	*nout = k;
	return 0;
}

static int
is_local(char *const *local, size_t nl, const char *name)
{
	size_t lo = 0, hi = nl, mid;
	int c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if ((c = strcmp(local[mid], name)) == 0)
			return 1;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/*
 * The segments of one stream: ps[np] of the peer, ls[nl] local. Adds
 * the wanted ones to the plan, newest first.
 */
static int
plan_stream(struct plan *p, const struct m4f_entry *peer,
    const struct seg *ps, size_t np, const struct seg *ls, size_t nl,
    char *const *local, size_t nlocal, const struct dvrfs_opts *o,
    int64_t now)
{
	int64_t *pt = NULL, *lt = NULL, *pe = NULL, settle, from;
	uint8_t *want = NULL;
	char top[M4F_NAME_MAX + 1];
	size_t i, tl = top_len(ps[0].name);
	struct plan_stream *s;
	int rc = -1;

	if ((pt = malloc(np * sizeof(*pt))) == NULL ||
	    (pe = malloc(np * sizeof(*pe))) == NULL ||
	    (want = malloc(np)) == NULL ||
	    (lt = malloc((nl ? nl : 1) * sizeof(*lt))) == NULL)
		goto out;
	for (i = 0; i < np; i++)
		pt[i] = ps[i].t;
	for (i = 0; i < nl; i++)
		lt[i] = ls[i].t;
	memcpy(top, ps[0].name, tl);
	top[tl] = '\0';
	from = now - opts_stream_depth(o, top);
	settle = 3 * gaps_spacing(pt, np, GAPS_DEFAULT_SPACING);
	if (settle < PLAN_SETTLE)
		settle = PLAN_SETTLE;
	if (gaps_fill(pt, np, lt, nl, from, now - settle, want, pe) ==
	    (size_t)-1)
		goto out;
	if ((s = stream_of(p, ps[0].name)) == NULL)
		goto out;
	for (i = 0; i < np; i++) {
		if (want[i]) {
			if (add_range(s, pt[i], pe[i]) == -1)
				goto out;
		} else if (pt[i] >= from && pe[i] <= now - settle &&
		    !is_local(local, nlocal, ps[i].name))
			s->overlap++;
	}
	for (i = np; i-- > 0;)
		if (want[i] && add_copy(p, &peer[ps[i].idx], ps[i].idx) == -1)
			goto out;
	rc = 0;
out:
	free(pt);
	free(pe);
	free(lt);
	free(want);
	return rc;
}

static int
cmp_stream(const void *a, const void *b)
{
	return strcmp(((const struct plan_stream *)a)->name,
	    ((const struct plan_stream *)b)->name);
}

struct plan *
plan_make(const struct m4f_entry *peer, size_t np, char *const *local,
    size_t nl, const struct dvrfs_opts *o, int64_t now)
{
	struct seg *ps = NULL, *ls = NULL;
	size_t nps, nls, i, j, a, b, la, lb;
	struct plan *p;
	int64_t t;

	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (p->copy = malloc((np ? np : 1) * sizeof(*p->copy))) == NULL ||
	    collect(peer, NULL, np, o, &ps, &nps) == -1 ||
	    collect(NULL, local, nl, o, &ls, &nls) == -1)
		goto fail;

	/* Segments, stream by stream; both lists are sorted by stream. */
	for (a = 0, la = 0; a < nps; a = b) {
		for (b = a + 1; b < nps && same_stream(&ps[a], &ps[b]); b++)
			;
		while (la < nls && cmp_seg(&ls[la], &ps[a]) < 0 &&
		    !same_stream(&ls[la], &ps[a]))
			la++;
		for (lb = la; lb < nls && same_stream(&ls[lb], &ps[a]); lb++)
			;
		if (plan_stream(p, peer, &ps[a], b - a, &ls[la], lb - la,
		    local, nl, o, now) == -1)
			goto fail;
		la = lb;
	}

	/* Other files: copied when missing. */
	for (i = 0; i < np; i++) {
		if (!opts_stream_wanted(o, peer[i].name,
		    top_len(peer[i].name)) ||
		    dvrpath_time(peer[i].name, &t, &j) == 0 ||
		    is_local(local, nl, peer[i].name))
			continue;
		if (add_copy(p, &peer[i], i) == -1)
			goto fail;
	}
	qsort(p->s, p->ns, sizeof(*p->s), cmp_stream);
	free(ps);
	free(ls);
	return p;
fail:
	free(ps);
	free(ls);
	plan_free(p);
	return errno = ENOMEM, NULL;
}

void
plan_free(struct plan *p)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < p->ns; i++) {
		free(p->s[i].name);
		free(p->s[i].r);
	}
	free(p->s);
	free(p->copy);
	free(p);
}
