#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include "dvrpath.h"

/* Exactly n decimal digits at s, value within [lo, hi]. */
static int
digits(const char *s, size_t n, int lo, int hi, int *out)
{
	size_t i;
	int v = 0;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int
leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t
days_from_civil(int y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int
dvrpath_time(const char *rel, int64_t *t, size_t *stream_len)
{
	static const int mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30,
	    31, 30, 31 };
	const char *comp[6], *p;
	size_t len, n;
	int y, mo, d, h, mi, s, i, dim;

	if (rel == NULL)
		goto bad;
	len = strlen(rel);
	/* Find the starts of the last six components, from the end. */
	p = rel + len;
	for (i = 5; i >= 0; i--) {
		const char *q = p;

		while (q > rel && q[-1] != '/')
			q--;
		if (q == rel)
			goto bad;	/* no STREAM before the date */
		comp[i] = q;
		p = q - 1;		/* at the slash */
	}
	/* STREAM: rel .. p, non-empty, no empty components. */
	n = (size_t)(p - rel);
	if (n == 0 || rel[0] == '/' || strstr(rel, "//") != NULL)
		goto bad;
	if (strlen(comp[0]) < 5 || comp[0][4] != '/' ||
	    digits(comp[0], 4, 1970, 9999, &y) == -1)
		goto bad;
	if (comp[1][2] != '/' || digits(comp[1], 2, 1, 12, &mo) == -1)
		goto bad;
	dim = mdays[mo - 1] + (mo == 2 && leap(y));
	if (comp[2][2] != '/' || digits(comp[2], 2, 1, dim, &d) == -1)
		goto bad;
	if (comp[3][2] != '/' || digits(comp[3], 2, 0, 23, &h) == -1)
		goto bad;
	if (comp[4][2] != '/' || digits(comp[4], 2, 0, 59, &mi) == -1)
		goto bad;
	/* SS.ext: two digits, a dot, a non-empty extension. */
	if (digits(comp[5], 2, 0, 60, &s) == -1 || comp[5][2] != '.' ||
	    comp[5][3] == '\0' || strchr(comp[5] + 3, '/') != NULL)
		goto bad;
	*t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
	if (stream_len != NULL)
		*stream_len = n;
	return 0;
bad:
	errno = EINVAL;
	return -1;
}

int
dvrpath_span(const char *rel, int64_t *start, int64_t *span)
{
	/* Complete the folder into the path of its first possible segment. */
	static const struct {
		const char	*suffix;
		int64_t		 span;
	} lv[] = {
		{ "/00/00.ts", 3600 },
		{ "/00/00/00.ts", 86400 },
		{ "/01/00/00/00.ts", 31 * 86400 },
		{ "/01/01/00/00/00.ts", 366 * 86400 },
	};
	char buf[PATH_MAX];
	size_t i;

	for (i = 0; i < sizeof(lv) / sizeof(lv[0]); i++) {
		if ((size_t)snprintf(buf, sizeof(buf), "%s%s", rel,
		    lv[i].suffix) >= sizeof(buf))
			break;
		if (dvrpath_time(buf, start, NULL) == 0) {
			*span = lv[i].span;
			return 0;
		}
	}
	errno = EINVAL;
	return -1;
}

