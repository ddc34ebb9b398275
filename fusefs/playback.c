#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "playback.h"

/*
 * A strict decimal of 1 to maxdig digits at *s, no sign, no leading zero
 * (but "0" itself). *s moves past it. 0, or -1.
 */
static int
strict_num(const char **s, size_t maxdig, int64_t *out)
{
	const char *p = *s;
	int64_t v = 0;
	size_t n = 0;

	if (*p == '0' && p[1] >= '0' && p[1] <= '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++, n++) {
		if (n == maxdig)
			return -1;
		v = v * 10 + (*p - '0');
	}
	if (n == 0)
		return -1;
	*s = p;
	*out = v;
	return 0;
}

int
pb_parse(const char *name, int64_t now, struct pb_name *out)
{
	const char *p;
	int archive, is_now = 0;

	memset(out, 0, sizeof(*out));
	if (strcmp(name, "index.m3u8") == 0)
		return out->kind = PB_LIVE, 0;
	if (strcmp(name, "recording_status.json") == 0)
		return out->kind = PB_STATUS, 0;
	if (strncmp(name, "archive-", 8) == 0)
		archive = 1, p = name + 8;
	else if (strncmp(name, "index-", 6) == 0)
		archive = 0, p = name + 6;
	else
		goto bad;
	/* Unix seconds: 12 digits reach the year 33658. */
	if (strict_num(&p, 12, &out->from) == -1 || *p++ != '-')
		goto bad;
	if (strncmp(p, "now", 3) == 0) {
		is_now = 1;
		p += 3;
	} else if (strict_num(&p, 5, &out->duration) == -1)
		goto bad;
	if (strcmp(p, ".m3u8") == 0)
		out->kind = is_now ? PB_EVENT : PB_VOD;
	else if (strcmp(p, ".ts") == 0 && archive && !is_now)
		out->kind = PB_TS;
	else
		goto bad;
	if (is_now && !archive)
		goto bad;
	if (out->from > now)
		goto bad;
	if (is_now) {
		out->duration = now - out->from;
		if (out->duration > PB_DURATION_MAX)
			goto bad;
	} else if (out->duration < 1 || out->duration > PB_DURATION_MAX)
		goto bad;
	return 0;
bad:
	memset(out, 0, sizeof(*out));
	errno = ENOENT;
	return -1;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

double
pb_spacing(const struct pb_seg *v, size_t n)
{
	int64_t *d;
	double m;
	size_t i;

	if (n < 2 || (d = malloc((n - 1) * sizeof(*d))) == NULL)
		return 0;
	for (i = 0; i + 1 < n; i++)
		d[i] = v[i + 1].t - v[i].t;
	qsort(d, n - 1, sizeof(*d), cmp_i64);
	m = (double)d[(n - 1) / 2];
	free(d);
	return m;
}

double
pb_duration(const struct pb_seg *v, size_t n, size_t i, double spacing)
{
	double s = spacing > 0 ? spacing : 2, next;

	if (i + 1 < n) {
		next = (double)(v[i + 1].t - v[i].t);
		if (next > 0 && next <= PB_GAP_FACTOR * s)
			return next;
	}
	return s;
}

/* Segment i is the first after a gap (or the very first). */
static int
after_gap(const struct pb_seg *v, size_t i, double spacing)
{
	double s = spacing > 0 ? spacing : 2;

	return i > 0 && (double)(v[i].t - v[i - 1].t) > PB_GAP_FACTOR * s;
}

size_t
pb_range(const struct pb_seg *v, size_t n, int64_t from, int64_t to,
    double spacing, size_t *first, size_t *end)
{
	size_t i;

	*first = *end = 0;
	for (i = 0; i < n && (double)v[i].t +
	    pb_duration(v, n, i, spacing) <= (double)from; i++)
		;
	*first = i;
	for (; i < n && v[i].t < to; i++)
		;
	*end = i;
	return *end - *first;
}

static void
iso_time(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
}

char *
pb_m3u8(enum pb_kind kind, const struct pb_seg *v, size_t first, size_t end,
    double spacing, const char *names, size_t *len)
{
	double d, target = 1;
	char *text = NULL, when[40];
	size_t i, n = end, cap = 0;
	long long seq;
	FILE *f;

	for (i = first; i < end; i++) {
		d = pb_duration(v, n, i, spacing);
		if (d > target)
			target = d;
	}
	/* Numbered by time, so that a sliding window keeps each segment's
	 * number from one answer to the next. */
	seq = first < end ? (long long)(v[first].t / (spacing >= 1 ?
	    (int64_t)llround(spacing) : 1)) : 0;
	if ((f = open_memstream(&text, &cap)) == NULL)
		return NULL;
	fprintf(f, "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:%d\n"
	    "#EXT-X-MEDIA-SEQUENCE:%lld\n", (int)ceil(target), seq);
	if (kind == PB_VOD)
		fputs("#EXT-X-PLAYLIST-TYPE:VOD\n", f);
	else if (kind == PB_EVENT)
		fputs("#EXT-X-PLAYLIST-TYPE:EVENT\n", f);
	for (i = first; i < end; i++) {
		if (i > first && after_gap(v, i, spacing))
			fputs("#EXT-X-DISCONTINUITY\n", f);
		if (i == first || after_gap(v, i, spacing)) {
			iso_time(v[i].t, when, sizeof(when));
			fprintf(f, "#EXT-X-PROGRAM-DATE-TIME:%s\n", when);
		}
		fprintf(f, "#EXTINF:%.3f,\n%s\n", pb_duration(v, n, i, spacing),
		    names + v[i].rel);
	}
	if (kind == PB_VOD)
		fputs("#EXT-X-ENDLIST\n", f);
	if (fclose(f) != 0) {
		free(text);
		errno = ENOMEM;
		return NULL;
	}
	*len = cap;
	return text;
}

/*
 * Appends to arr the ranges of the segments of v for which want() holds
 * (all, or the local ones): a gap or a segment left out ends a range.
 */
static int
add_ranges(json_t *arr, const struct pb_seg *v, size_t n, double spacing,
    int local_only)
{
	size_t i, start = 0;
	int open = 0;
	double end = 0;

	for (i = 0; i <= n; i++) {
		int in = i < n && (!local_only || v[i].local);

		if (open && (!in || after_gap(v, i, spacing))) {
			if (json_array_append_new(arr, json_pack("{s:I, s:I}",
			    "from", (json_int_t)v[start].t, "duration",
			    (json_int_t)llround(end - (double)v[start].t))) == -1)
				return -1;
			open = 0;
		}
		if (!in)
			continue;
		if (!open)
			start = i, open = 1;
		end = (double)v[i].t + pb_duration(v, n, i, spacing);
	}
	return 0;
}

char *
pb_status(const char *stream, const struct pb_seg *v, size_t n,
    double spacing, size_t *len)
{
	json_t *j, *all, *local;
	char *text = NULL;

	all = json_array();
	local = json_array();
	j = json_pack("[{s:s, s:o, s:o}]", "stream", stream, "ranges", all,
	    "local", local);
	if (j == NULL || add_ranges(all, v, n, spacing, 0) == -1 ||
	    add_ranges(local, v, n, spacing, 1) == -1 ||
	    (text = json_dumps(j, JSON_COMPACT)) == NULL) {
		json_decref(j);
		errno = ENOMEM;
		return NULL;
	}
	json_decref(j);
	*len = strlen(text);
	return text;
}
