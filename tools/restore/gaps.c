#include <errno.h>
#include <stdlib.h>

#include "gaps.h"

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

int64_t
gaps_spacing(const int64_t *t, size_t n, int64_t fallback)
{
	int64_t *d, m;
	size_t i, k = 0;

	if (n < 2 || (d = malloc((n - 1) * sizeof(*d))) == NULL)
		return fallback;
	for (i = 1; i < n; i++)
		if (t[i] > t[i - 1])
			d[k++] = t[i] - t[i - 1];
	if (k == 0) {
		free(d);
		return fallback;
	}
	qsort(d, k, sizeof(*d), cmp_i64);
	m = d[(k - 1) / 2];
	free(d);
	return m;
}

void
gaps_ends(const int64_t *t, size_t n, int64_t spacing, int64_t *end)
{
	size_t i, next = 0;

	/*
	 * Segments with the same start (two files of one moment) share the
	 * span up to the next later start.
	 */
	for (i = 0; i < n; i++) {
		if (next <= i)
			for (next = i + 1; next < n && t[next] == t[i]; next++)
				;
		if (next < n && t[next] - t[i] <= GAPS_HOLE * spacing)
			end[i] = t[next];
		else
			end[i] = t[i] + spacing;
	}
}

size_t
gaps_fill(const int64_t *peer, size_t np, const int64_t *local, size_t nl,
    int64_t from, int64_t until, uint8_t *want, int64_t *peer_end)
{
	int64_t *pe = NULL, *le = NULL, ps, ls;
	size_t i, j = 0, n = 0;

	if ((pe = malloc((np ? np : 1) * sizeof(*pe))) == NULL ||
	    (le = malloc((nl ? nl : 1) * sizeof(*le))) == NULL) {
		free(pe);
		return errno = ENOMEM, (size_t)-1;
	}
	/* One side's spacing stands in for the other's when it has one. */
	ps = gaps_spacing(peer, np, 0);
	ls = gaps_spacing(local, nl, 0);
	if (ps == 0)
		ps = ls != 0 ? ls : GAPS_DEFAULT_SPACING;
	if (ls == 0)
		ls = ps;
	gaps_ends(peer, np, ps, pe);
	gaps_ends(local, nl, ls, le);

	/*
	 * Local spans are ascending and do not overlap each other, so the
	 * first local span that ends after a peer span starts is the only
	 * one that can overlap it.
	 */
	for (i = 0; i < np; i++) {
		want[i] = 0;
		while (j < nl && le[j] <= peer[i])
			j++;
		if (peer[i] < from || pe[i] > until)
			continue;
		if (j < nl && local[j] < pe[i])
			continue;
		want[i] = 1;
		n++;
	}
	if (peer_end != NULL)
		for (i = 0; i < np; i++)
			peer_end[i] = pe[i];
	free(pe);
	free(le);
	return n;
}
