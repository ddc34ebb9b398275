#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "playback.h"

#define NOW	1796000000LL	/* 2026-11-30 */

START_TEST(t_parse_good)
{
	struct pb_name n;

	ck_assert_int_eq(pb_parse("index.m3u8", NOW, &n), 0);
	ck_assert_int_eq(n.kind, PB_LIVE);
	ck_assert_int_eq(pb_parse("recording_status.json", NOW, &n), 0);
	ck_assert_int_eq(n.kind, PB_STATUS);
	ck_assert_int_eq(pb_parse("archive-1795990000-3600.m3u8", NOW, &n), 0);
	ck_assert_int_eq(n.kind, PB_VOD);
	ck_assert_int_eq(n.from, 1795990000);
	ck_assert_int_eq(n.duration, 3600);
	ck_assert_int_eq(pb_parse("index-1795990000-60.m3u8", NOW, &n), 0);
	ck_assert_int_eq(n.kind, PB_VOD);
	ck_assert_int_eq(pb_parse("archive-1795990000-86400.ts", NOW, &n), 0);
	ck_assert_int_eq(n.kind, PB_TS);
	ck_assert_int_eq(n.duration, 86400);
	ck_assert_int_eq(pb_parse("archive-1795999000-now.m3u8", NOW, &n), 0);
	ck_assert_int_eq(n.kind, PB_EVENT);
	ck_assert_int_eq(n.duration, 1000);
	/* FROM exactly now is not in the future. */
	ck_assert_int_eq(pb_parse("archive-1796000000-10.m3u8", NOW, &n), 0);
}
END_TEST

START_TEST(t_parse_bad)
{
	static const char *bad[] = {
		"", "index.m3u", "index.m3u8 ", "Index.m3u8", "archive-.m3u8",
		"archive-1795990000.m3u8", "archive-1795990000-.m3u8",
		"archive--1795990000-60.m3u8", "archive-+1795990000-60.m3u8",
		"archive-01795990000-60.m3u8", "archive-1795990000-060.m3u8",
		"archive-1795990000-0.m3u8", "archive-1795990000-86401.m3u8",
		"archive-1795990000-999999.m3u8", "archive-1796000001-60.m3u8",
		"archive-1795990000-60.m3u8x", "archive-1795990000-60.mp4",
		"archive-1795990000-60", "archive-1795990000-60.m3u8/",
		"index-1795990000-now.m3u8", "archive-1795990000-now.ts",
		"archive-1795900000-now.m3u8",	/* more than a day */
		"archive-1795990000-6 0.m3u8", "archive-0x10-60.m3u8",
		"archive-9999999999999-60.m3u8", "archive-1795990000-1e3.m3u8",
		"recording_status.json.bak", "archive-1795990000-60.m3u8\n",
		NULL
	};
	struct pb_name n;
	size_t i;

	for (i = 0; bad[i] != NULL; i++) {
		errno = 0;
		ck_assert_msg(pb_parse(bad[i], NOW, &n) == -1, "accepted '%s'",
		    bad[i]);
		ck_assert_int_eq(errno, ENOENT);
	}
}
END_TEST

/* n segments every step seconds from t0, names "HH/MM/SS.ts" style. */
static struct pb_seg *
segs(size_t n, int64_t t0, int step, char **names)
{
	struct pb_seg *v = calloc(n, sizeof(*v));
	char *nm = malloc(n * 16);
	size_t i;

	for (i = 0; i < n; i++) {
		v[i].t = t0 + (int64_t)i * step;
		v[i].id = i + 10;
		v[i].size = 1000;
		v[i].rel = (uint32_t)(i * 16);
		snprintf(nm + i * 16, 16, "s%05zu.ts", i);
	}
	*names = nm;
	return v;
}

START_TEST(t_vod_gap)
{
	struct pb_seg *v;
	char *names, *text;
	size_t len, first, end, i;
	double sp;

	v = segs(10, 1000, 2, &names);
	/* A 30-second hole after the fifth segment. */
	for (i = 5; i < 10; i++)
		v[i].t += 30;
	sp = pb_spacing(v, 10);
	ck_assert(sp == 2);
	ck_assert(pb_duration(v, 10, 3, sp) == 2);
	ck_assert(pb_duration(v, 10, 4, sp) == 2);	/* before the hole */
	ck_assert(pb_duration(v, 10, 9, sp) == 2);	/* the last */
	ck_assert_uint_eq(pb_range(v, 10, 1001, 1006, sp, &first, &end), 3);
	ck_assert_uint_eq(first, 0);
	ck_assert_uint_eq(end, 3);
	/* Entirely in the hole: nothing. */
	ck_assert_uint_eq(pb_range(v, 10, 1012, 1030, sp, &first, &end), 0);
	text = pb_m3u8(PB_VOD, v, 0, 10, sp, names, &len);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(len, strlen(text));
	ck_assert(strncmp(text, "#EXTM3U\n", 8) == 0);
	ck_assert_ptr_nonnull(strstr(text, "#EXT-X-PLAYLIST-TYPE:VOD\n"));
	ck_assert_ptr_nonnull(strstr(text, "#EXT-X-TARGETDURATION:2\n"));
	ck_assert_ptr_nonnull(strstr(text, "#EXT-X-MEDIA-SEQUENCE:500\n"));
	ck_assert_ptr_nonnull(strstr(text,
	    "#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:16:40.000Z\n"));
	ck_assert_ptr_nonnull(strstr(text, "#EXTINF:2.000,\ns00004.ts\n"
	    "#EXT-X-DISCONTINUITY\n"
	    "#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:17:20.000Z\n"
	    "#EXTINF:2.000,\ns00005.ts\n"));
	ck_assert_ptr_null(strstr(strstr(text, "DISCONTINUITY") + 1,
	    "DISCONTINUITY"));
	ck_assert(strcmp(text + len - 15, "#EXT-X-ENDLIST\n") == 0);
	free(text);
	text = pb_m3u8(PB_LIVE, v, 4, 10, sp, names, &len);
	ck_assert_ptr_null(strstr(text, "ENDLIST"));
	ck_assert_ptr_null(strstr(text, "PLAYLIST-TYPE"));
	free(text);
	text = pb_status("news", v, 10, sp, &len);
	ck_assert_str_eq(text, "[{\"stream\":\"news\",\"ranges\":"
	    "[{\"from\":1000,\"duration\":10},{\"from\":1040,\"duration\":10}],"
	    "\"local\":[]}]");
	free(text);
	v[6].local = v[7].local = 1;
	text = pb_status("news", v, 10, sp, &len);
	ck_assert_ptr_nonnull(strstr(text,
	    "\"local\":[{\"from\":1042,\"duration\":4}]"));
	free(text);
	free(v);
	free(names);
}
END_TEST

/* Uneven spacing: each duration is the distance to the next start. */
START_TEST(t_uneven)
{
	struct pb_seg *v;
	char *names, *text;
	size_t len;
	double sp;

	v = segs(4, 100, 4, &names);
	v[1].t = 103;		/* 3, 5, 4 */
	sp = pb_spacing(v, 4);
	ck_assert(sp == 4);
	ck_assert(pb_duration(v, 4, 0, sp) == 3);
	ck_assert(pb_duration(v, 4, 1, sp) == 5);
	text = pb_m3u8(PB_VOD, v, 0, 4, sp, names, &len);
	ck_assert_ptr_nonnull(strstr(text, "#EXT-X-TARGETDURATION:5\n"));
	ck_assert_ptr_nonnull(strstr(text, "#EXTINF:3.000,\ns00000.ts\n"));
	free(text);
	ck_assert(pb_spacing(v, 1) == 0);
	ck_assert(pb_duration(v, 1, 0, 0) == 2);
	free(v);
	free(names);
}
END_TEST

/* A day of 2 s segments: 43,200 entries, one playlist. */
START_TEST(t_day)
{
	struct pb_seg *v;
	struct timespec a, b;
	char *names, *text;
	size_t len, first, end, lines = 0, i;
	double sp;

	v = segs(43200, NOW - 86400, 2, &names);
	clock_gettime(CLOCK_MONOTONIC, &a);
	sp = pb_spacing(v, 43200);
	pb_range(v, 43200, NOW - 86400, NOW, sp, &first, &end);
	text = pb_m3u8(PB_VOD, v, first, end, sp, names, &len);
	clock_gettime(CLOCK_MONOTONIC, &b);
	ck_assert_ptr_nonnull(text);
	for (i = 0; i < len; i++)
		lines += text[i] == '\n';
	ck_assert_uint_eq(end - first, 43200);
	/* Header (5 lines), a date, two lines per segment, the end. */
	ck_assert_uint_eq(lines, 5 + 1 + 2 * 43200 + 1);
	printf("a day's playlist (43,200 segments, %zu bytes) in %.1f ms\n",
	    len, (double)(b.tv_sec - a.tv_sec) * 1e3 +
	    (double)(b.tv_nsec - a.tv_nsec) / 1e6);
	free(text);
	free(v);
	free(names);
}
END_TEST

static Suite *
playback_suite(void)
{
	Suite *s = suite_create("playback");
	TCase *core = tcase_create("core"), *limits = tcase_create("limits");

	tcase_add_test(core, t_parse_good);
	tcase_add_test(core, t_vod_gap);
	tcase_add_test(core, t_uneven);
	tcase_add_test(limits, t_parse_bad);
	tcase_add_test(limits, t_day);
	suite_add_tcase(s, core);
	suite_add_tcase(s, limits);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(playback_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
