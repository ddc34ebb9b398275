/*
 * dvrfs-status's pure parts: gap merging, timeline ranges, folder pruning
 * spans, number formatting, dvrfs.json and live counter parsing, and the
 * outputs: text bars, Prometheus, HTML, JSON.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dvrpath.h"
#include "status_fmt.h"
#include "status_html.h"
#include "status_info.h"
#include "status_json.h"
#include "status_prom.h"
#include "status_report.h"
#include "status_scan.h"
#include "status_text.h"

/* Runs fn into a memory buffer; the caller frees the string. */
#define CAPTURE(buf, len, call) do {					\
	FILE *f_ = open_memstream(&(buf), &(len));			\
	ck_assert_ptr_nonnull(f_);					\
	call;								\
	ck_assert_int_eq(fclose(f_), 0);				\
} while (0)
#define OUT f_

START_TEST(gaps_merge_adjacent)
{
	struct sscan sc;

	sscan_init(&sc, 100);
	ck_assert_int_eq(sscan_seg(&sc, 90, 92, 10, 0, 0), 0);	/* too old */
	ck_assert_int_eq(sscan_seg(&sc, 100, 102, 10, 1, 10), 0);
	ck_assert_int_eq(sscan_seg(&sc, 102, 104, 10, 0, 4), 0);
	ck_assert_int_eq(sscan_seg(&sc, 104, 106, 10, 0, 0), 0);
	ck_assert_int_eq(sscan_seg(&sc, 110, 112, 10, 1, 10), 0);
	ck_assert_int_eq(sscan_seg(&sc, 112, 114, 10, 0, 0), 0);
	ck_assert_int_eq(sscan_seg(&sc, 114, 116, 10, 1, 10), 0);
	sscan_finish(&sc);
	ck_assert_uint_eq(sc.segs, 6);
	ck_assert_uint_eq(sc.bytes, 60);
	ck_assert_uint_eq(sc.segs_done, 3);
	ck_assert_uint_eq(sc.bytes_done, 30);
	ck_assert_uint_eq(sc.bytes_partial, 4);
	ck_assert_int_eq(sc.oldest, 100);
	ck_assert_int_eq(sc.newest, 114);
	ck_assert_int_eq(sc.newest_known, 114);
	ck_assert_uint_eq(sc.gaps.n, 2);
	/*
	 * Two missing segments, one range; it stops where the second ends
	 * (its mtime, 106): the primary has nothing from there to 110.
	 */
	ck_assert_int_eq(sc.gaps.v[0].start, 102);
	ck_assert_int_eq(sc.gaps.v[0].end, 106);
	ck_assert_int_eq(sc.gaps.v[1].start, 112);
	ck_assert_int_eq(sc.gaps.v[1].end, 114);
	sscan_clear(&sc);
}
END_TEST

START_TEST(gaps_live_edge)
{
	struct sscan sc;

	/* The last one's mtime is its end. */
	sscan_init(&sc, 0);
	sscan_seg(&sc, 100, 104, 1, 1, 1);
	sscan_seg(&sc, 104, 108, 1, 0, 0);
	sscan_finish(&sc);
	ck_assert_uint_eq(sc.gaps.n, 1);
	ck_assert_int_eq(sc.gaps.v[0].end, 108);
	sscan_clear(&sc);

	/* An mtime that is no end time: the spacing before it. */
	sscan_init(&sc, 0);
	sscan_seg(&sc, 100, 5, 1, 0, 0);
	sscan_seg(&sc, 106, 5, 1, 0, 0);
	sscan_finish(&sc);
	ck_assert_uint_eq(sc.gaps.n, 1);
	ck_assert_int_eq(sc.gaps.v[0].start, 100);
	ck_assert_int_eq(sc.gaps.v[0].end, 112);
	ck_assert_int_eq(sc.oldest, -1);
	ck_assert_int_eq(sc.newest, -1);
	sscan_clear(&sc);

	/* A single segment and nothing to go by: one second. */
	sscan_init(&sc, 0);
	sscan_seg(&sc, 100, 100 + 7200, 1, 0, 0);
	sscan_finish(&sc);
	ck_assert_int_eq(sc.gaps.v[0].end, 101);
	sscan_clear(&sc);
}
END_TEST

/* What the primary has, what is local, and a hole in the recording. */
START_TEST(ranges_and_holes)
{
	struct sscan sc;

	sscan_init(&sc, 0);
	/* 2 s segments, mtime = end; 106..110 missing on the primary. */
	sscan_seg(&sc, 100, 102, 1, 1, 1);
	sscan_seg(&sc, 102, 104, 1, 1, 1);
	sscan_seg(&sc, 104, 106, 1, 0, 0);
	sscan_seg(&sc, 110, 112, 1, 1, 1);
	sscan_seg(&sc, 112, 114, 1, 0, 0);
	ck_assert_int_eq(sscan_finish(&sc), 0);
	ck_assert_uint_eq(sc.prim.n, 2);
	ck_assert_int_eq(sc.prim.v[0].start, 100);
	ck_assert_int_eq(sc.prim.v[0].end, 106);
	ck_assert_int_eq(sc.prim.v[1].start, 110);
	ck_assert_int_eq(sc.prim.v[1].end, 114);
	ck_assert_uint_eq(sc.local.n, 2);
	ck_assert_int_eq(sc.local.v[0].end, 104);
	ck_assert_int_eq(sc.local.v[1].start, 110);
	ck_assert_int_eq(sc.local.v[1].end, 112);
	ck_assert_uint_eq(sc.gaps.n, 2);
	ck_assert_int_eq(sc.gaps.v[0].start, 104);
	ck_assert_int_eq(sc.gaps.v[0].end, 106);
	ck_assert_int_eq(sc.edge, 114);
	ck_assert_int_eq(sscan_gap_seconds(&sc), 4);
	sscan_clear(&sc);

	/* No mtimes: a spacing much longer than the one before is a hole. */
	sscan_init(&sc, 0);
	sscan_seg(&sc, 0, 0, 1, 1, 1);
	sscan_seg(&sc, 10, 0, 1, 1, 1);
	sscan_seg(&sc, 20, 0, 1, 1, 1);
	sscan_seg(&sc, 60, 0, 1, 1, 1);
	sscan_finish(&sc);
	ck_assert_uint_eq(sc.prim.n, 2);
	ck_assert_int_eq(sc.prim.v[0].end, 30);
	ck_assert_int_eq(sc.prim.v[1].start, 60);
	ck_assert_int_eq(sc.prim.v[1].end, 100);	/* spacing before: 40 */
	sscan_clear(&sc);
}
END_TEST

START_TEST(text_bar)
{
	struct sscan sc;
	char bar[11];

	sscan_init(&sc, 0);
	/* 0..40 local, 40..50 missing, 50..60 half missing, 80..100 local */
	sscan_seg(&sc, 0, 40, 1, 1, 1);
	sscan_seg(&sc, 40, 50, 1, 0, 0);
	sscan_seg(&sc, 50, 55, 1, 0, 0);
	sscan_seg(&sc, 55, 60, 1, 1, 1);
	sscan_seg(&sc, 80, 100, 1, 1, 1);
	sscan_finish(&sc);
	ck_assert_str_eq(stl_bar(&sc, 0, 100, bar, 10), "####.+  ##");
	ck_assert_str_eq(stl_bar(&sc, 0, 100, bar, 0), "");
	sscan_clear(&sc);
}
END_TEST

/* A report of one stream with a gap, for the output tests. */
static void
small_report(struct srep *rep, struct srow *row, const char *name)
{
	memset(rep, 0, sizeof(*rep));
	memset(row, 0, sizeof(*row));
	snprintf(rep->store_dir, sizeof(rep->store_dir), "/st");
	snprintf(rep->mnt, sizeof(rep->mnt), "/mnt/d\"v\\r");
	rep->mi.depth = 1000;
	rep->now = 2000;
	rep->since = 1000;
	snprintf(row->name, sizeof(row->name), "%s", name);
	row->rate = 10.4;
	sscan_init(&row->sc, rep->since);
	sscan_seg(&row->sc, 1000, 1100, 100, 1, 100);
	sscan_seg(&row->sc, 1100, 1250, 100, 0, 0);
	sscan_seg(&row->sc, 1250, 1300, 100, 1, 100);
	sscan_finish(&row->sc);
	rep->rows = row;
	rep->nrows = 1;
}

START_TEST(prometheus)
{
	struct srep rep;
	struct srow row;
	char *buf = NULL;
	size_t len;

	CAPTURE(buf, len, sprom_label(OUT, "a\"b\\c\nd"));
	ck_assert_str_eq(buf, "a\\\"b\\\\c\\nd");
	free(buf);
	CAPTURE(buf, len, sprom_help(OUT, "x\"\\\n"));
	ck_assert_str_eq(buf, "x\"\\\\\\n");
	free(buf);

	small_report(&rep, &row, "ne\"ws");
	CAPTURE(buf, len, sprom_report(OUT, &rep));
	ck_assert_ptr_nonnull(strstr(buf, "# HELP dvrfs_stream_done_bytes "));
	ck_assert_ptr_nonnull(strstr(buf,
	    "# TYPE dvrfs_hash_failures_total counter\n"));
	ck_assert_ptr_nonnull(strstr(buf, "dvrfs_stream_done_bytes{mount="
	    "\"/mnt/d\\\"v\\\\r\",stream=\"ne\\\"ws\"} 200\n"));
	ck_assert_ptr_nonnull(strstr(buf, "dvrfs_stream_gap_seconds{mount="
	    "\"/mnt/d\\\"v\\\\r\",stream=\"ne\\\"ws\"} 150\n"));
	ck_assert_ptr_nonnull(strstr(buf,
	    "dvrfs_fill_rate_bytes_per_second{mount=\"/mnt/d\\\"v\\\\r\"} 10\n"));
	/* Not live: no read counters. */
	ck_assert_ptr_null(strstr(buf, "dvrfs_reads_total"));
	free(buf);
	sscan_clear(&row.sc);
}
END_TEST

START_TEST(html_page)
{
	struct srep rep;
	struct srow row;
	char *buf = NULL, *p;
	size_t len;

	CAPTURE(buf, len, shtml_text(OUT, "<a href=\"x\">&'"));
	ck_assert_str_eq(buf, "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
	free(buf);
	ck_assert(shtml_x(1500, 1000, 2000) == SHTML_W / 2);
	ck_assert(shtml_x(0, 1000, 2000) == 0);
	ck_assert(shtml_x(9000, 1000, 2000) == SHTML_W);
	ck_assert(shtml_x(5, 5, 5) == 0);

	small_report(&rep, &row, "<news>");
	CAPTURE(buf, len, shtml_report(OUT, &rep, 1));
	ck_assert(strncmp(buf, "<!DOCTYPE html>", 15) == 0);
	ck_assert_ptr_nonnull(strstr(buf, "http-equiv=\"refresh\""));
	ck_assert_ptr_nonnull(strstr(buf, "data-stream=\"&lt;news&gt;\" "
	    "data-from=\"1000\" data-to=\"2000\""));
	ck_assert_ptr_nonnull(strstr(buf, "<rect class=\"gap\" "
	    "data-from=\"1100\" data-to=\"1250\" x=\"100.00\" y=\"0\" "
	    "width=\"150.00\""));
	ck_assert_ptr_nonnull(strstr(buf, "<line class=\"edge\" "
	    "data-t=\"1300\" x1=\"300.00\""));
	ck_assert_ptr_null(strstr(buf, "<news>"));
	/* Nothing loaded from elsewhere. */
	ck_assert_ptr_null(strstr(buf, "src="));
	ck_assert_ptr_null(strstr(buf, "href="));
	ck_assert_ptr_null(strstr(buf, "http:"));
	p = buf + len - strlen("</html>\n");
	ck_assert_str_eq(p, "</html>\n");
	free(buf);
	sscan_clear(&row.sc);
}
END_TEST

START_TEST(json_timeline)
{
	struct srep rep;
	struct srow row;
	json_t *j, *s;

	small_report(&rep, &row, "news");
	ck_assert_ptr_nonnull(j = sjson_report(&rep));
	s = json_object_get(json_object_get(j, "streams"), "news");
	ck_assert_int_eq(json_array_size(json_object_get(s, "primary")), 1);
	ck_assert_int_eq(json_array_size(json_object_get(s, "local")), 2);
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(
	    json_object_get(s, "gaps"), 0), "end")), 1250);
	ck_assert_int_eq(json_integer_value(json_object_get(s, "live_edge")),
	    1300);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "from")), 1000);
	json_decref(j);
	sscan_clear(&row.sc);
}
END_TEST

START_TEST(folder_spans)
{
	int64_t t, span;

	ck_assert_int_eq(dvrpath_span("news/2026/11/27/07", &t, &span), 0);
	ck_assert_int_eq(t, 1795762800);	/* 2026-11-27T07:00:00Z */
	ck_assert_int_eq(span, 3600);
	ck_assert_int_eq(dvrpath_span("news/2026/11/27", &t, &span), 0);
	ck_assert_int_eq(t, 1795737600);
	ck_assert_int_eq(span, 86400);
	ck_assert_int_eq(dvrpath_span("news/2026/11", &t, &span), 0);
	ck_assert_int_eq(span, 31 * 86400);
	ck_assert_int_eq(dvrpath_span("news/2026", &t, &span), 0);
	ck_assert_int_eq(span, 366 * 86400);
	ck_assert_int_eq(dvrpath_span("a/b/2026/11/27/07", &t, &span), 0);
	ck_assert_int_eq(span, 3600);
	/* Minute folders and non-DVR folders are not pruned. */
	ck_assert_int_eq(dvrpath_span("news/2026/11/27/07/13", &t, &span), -1);
	ck_assert_int_eq(dvrpath_span("news", &t, &span), -1);
	ck_assert_int_eq(dvrpath_span("news/big", &t, &span), -1);
}
END_TEST

START_TEST(formatting)
{
	char b[32];

	ck_assert_str_eq(sfmt_bytes(0, b, sizeof(b)), "0B");
	ck_assert_str_eq(sfmt_bytes(1023, b, sizeof(b)), "1023B");
	ck_assert_str_eq(sfmt_bytes(1536, b, sizeof(b)), "1.50K");
	ck_assert_str_eq(sfmt_bytes(20190, b, sizeof(b)), "19.7K");
	ck_assert_str_eq(sfmt_bytes(1048575, b, sizeof(b)), "1023K");
	ck_assert_str_eq(sfmt_bytes(5ULL << 30, b, sizeof(b)), "5.00G");
	ck_assert_str_eq(sfmt_rate(-1, b, sizeof(b)), "-");
	ck_assert_str_eq(sfmt_rate(2.5 * 1048576, b, sizeof(b)), "2.50M/s");
	ck_assert_str_eq(sfmt_duration(-1, b, sizeof(b)), "-");
	ck_assert_str_eq(sfmt_duration(65, b, sizeof(b)), "1:05");
	ck_assert_str_eq(sfmt_duration(3723, b, sizeof(b)), "1:02:03");
	ck_assert_str_eq(sfmt_duration(2 * 86400 + 3 * 3600 + 5, b, sizeof(b)),
	    "2d03h");
	ck_assert_str_eq(sfmt_time(1795762984, b, sizeof(b)),
	    "2026-11-27T07:03:04Z");
	ck_assert_str_eq(sfmt_time(-1, b, sizeof(b)), "-");
	ck_assert(sfmt_percent(16153, 20190) == 80.0);
	ck_assert(sfmt_percent(9999, 10000) == 99.9);
	ck_assert(sfmt_percent(0, 0) == 100.0);
	ck_assert(sfmt_percent(5, 0) == 100.0);
	ck_assert_int_eq(sfmt_eta(10, 10, -1), 0);
	ck_assert_int_eq(sfmt_eta(0, 10, -1), -1);
	ck_assert_int_eq(sfmt_eta(0, 10, 0), -1);
	ck_assert_int_eq(sfmt_eta(0, 10, 3), 4);
}
END_TEST

static const char live[] = "{\"reads_local\":5,\"reads_fetched\":3,"
    "\"reads_failed\":1,\"bytes_local\":500,\"bytes_fetched\":300,"
    "\"fetcher\":{\"bytes_viewer\":1,\"bytes_live\":2,\"bytes_backfill\":3,"
    "\"requests\":4,\"failures\":0,\"bad_answers\":0,\"connected\":true,"
    "\"auth_failed\":false},\"crawler\":{\"done\":7,\"done_bytes\":7000,"
    "\"failed\":0,\"queued\":9,\"expired\":0},\"hash_failures\":2}";

START_TEST(live_counters)
{
	struct sinfo_live l;

	ck_assert_int_eq(sinfo_live_parse(live, strlen(live), &l), 0);
	ck_assert_uint_eq(l.reads_local, 5);
	ck_assert_uint_eq(l.reads_fetched, 3);
	ck_assert_uint_eq(l.reads_failed, 1);
	ck_assert_uint_eq(l.bytes_local, 500);
	ck_assert_uint_eq(l.bytes_fetched, 300);
	ck_assert_uint_eq(l.hash_failures, 2);
	ck_assert_uint_eq(l.crawler_done_bytes, 7000);
	ck_assert_uint_eq(l.crawler_queued, 9);
	ck_assert_int_eq(l.connected, 1);
	ck_assert_int_eq(l.auth_failed, 0);
	sinfo_live_clear(&l);

	/* Missing counters are 0, connected unknown. */
	ck_assert_int_eq(sinfo_live_parse("{}", 2, &l), 0);
	ck_assert_uint_eq(l.reads_local, 0);
	ck_assert_int_eq(l.connected, -1);
	sinfo_live_clear(&l);
}
END_TEST

START_TEST(mount_json)
{
	static const char j[] = "{\"spec\": \"host:/storage\", \"mountpoint\": "
	    "\"/mnt/dvr\", \"depth\": 604800, \"replicate\": true, "
	    "\"streams\": [\"news\",\"sport\"], \"pid\": 1234}";
	static const char n[] = "{\"spec\": null, \"pid\": null, "
	    "\"max_size\": null, \"replicate\": null}";
	struct sinfo_mount m;

	ck_assert_int_eq(sinfo_mount_parse(j, strlen(j), &m), 0);
	ck_assert_str_eq(m.spec, "host:/storage");
	ck_assert_str_eq(m.mountpoint, "/mnt/dvr");
	ck_assert_int_eq(m.depth, 604800);
	ck_assert_int_eq(m.replicate, 1);
	ck_assert_uint_eq(m.nstreams, 2);
	ck_assert_str_eq(m.streams[1], "sport");
	ck_assert_ptr_null(m.streams[2]);
	ck_assert_int_eq(m.pid, 1234);
	sinfo_mount_clear(&m);

	ck_assert_int_eq(sinfo_mount_parse("{\"streams\": null}", 17, &m), 0);
	ck_assert_ptr_null(m.streams);
	ck_assert_int_eq(m.depth, SINFO_DEPTH_DEFAULT);
	sinfo_mount_clear(&m);

	/* null is "not known", but for the depth (bad_json). */
	ck_assert_int_eq(sinfo_mount_parse(n, strlen(n), &m), 0);
	ck_assert_ptr_null(m.spec);
	ck_assert_int_eq(m.pid, 0);
	ck_assert_uint_eq(m.max_size, 0);
	ck_assert_int_eq(m.replicate, 0);
	sinfo_mount_clear(&m);
}
END_TEST

/* Bad input is refused, not clamped. */
START_TEST(bad_json)
{
	static const char *const mounts[] = {
		"", "[]", "{\"depth\": 0}", "{\"depth\": -5}",
		"{\"depth\": 99999999999}", "{\"depth\": \"7d\"}",
		"{\"streams\": \"news\"}", "{\"streams\": [\"../etc\"]}",
		"{\"streams\": [\"/abs\"]}", "{\"streams\": [\"\"]}",
		"{\"streams\": [1]}", "{\"pid\": -1}", "{\"spec\": 5}",
		"{\"replicate\": 1}", "{\"depth\": 1", "{\"depth\": null}",
		"{\"pid\": 2147483648}", "{\"max_size\": -1}",
		"{\"max_size\": 1.5}", NULL
	};
	static const char *const lives[] = {
		"", "[1]", "{\"reads_local\": -1}", "{\"reads_local\": 1.5}",
		"{\"reads_local\": \"5\"}", "{\"fetcher\": 3}",
		"{\"fetcher\": {\"connected\": 1}}",
		"{\"crawler\": {\"done_bytes\": -2}}", "{\"a\":", NULL
	};
	struct sinfo_mount m;
	struct sinfo_live l;
	size_t i;

	for (i = 0; mounts[i] != NULL; i++) {
		errno = 0;
		ck_assert_msg(sinfo_mount_parse(mounts[i], strlen(mounts[i]),
		    &m) == -1, "accepted %s", mounts[i]);
		ck_assert_int_eq(errno, EINVAL);
		sinfo_mount_clear(&m);
	}
	for (i = 0; lives[i] != NULL; i++) {
		ck_assert_msg(sinfo_live_parse(lives[i], strlen(lives[i]),
		    &l) == -1, "accepted %s", lives[i]);
		sinfo_live_clear(&l);
	}
}
END_TEST

/*
 * Many gaps grow the array; huge numbers do not overflow the formats
 * (UINT64_MAX is 2^64 as a double, so it prints as 16.0E).
 */
START_TEST(many_and_huge)
{
	struct sscan sc;
	char b[32];
	int64_t t;

	sscan_init(&sc, 0);
	for (t = 0; t < 200000; t += 2)
		ck_assert_int_eq(sscan_seg(&sc, t, t + 2, 1, (t / 2) % 2, 0), 0);
	sscan_finish(&sc);
	ck_assert_uint_eq(sc.gaps.n, 50000);
	ck_assert_int_eq(sc.gaps.v[49999].start, 199996);
	ck_assert_int_eq(sc.gaps.v[49999].end, 199998);
	sscan_clear(&sc);
	sscan_clear(NULL);

	ck_assert_str_eq(sfmt_bytes(UINT64_MAX, b, sizeof(b)), "16.0E");
	ck_assert_str_eq(sfmt_rate(1e30, b, sizeof(b)), "16.0E/s");
	ck_assert_int_eq(sfmt_eta(0, UINT64_MAX, 1e-9), -1);
	ck_assert_str_eq(sfmt_bytes(12345, b, 4), "12.");	/* truncated */
}
END_TEST

static Suite *
status_suite(void)
{
	Suite *s = suite_create("status");
	TCase *core = tcase_create("core"), *limits = tcase_create("limits");

	tcase_add_test(core, gaps_merge_adjacent);
	tcase_add_test(core, gaps_live_edge);
	tcase_add_test(core, ranges_and_holes);
	tcase_add_test(core, text_bar);
	tcase_add_test(core, prometheus);
	tcase_add_test(core, html_page);
	tcase_add_test(core, json_timeline);
	tcase_add_test(core, folder_spans);
	tcase_add_test(core, formatting);
	tcase_add_test(core, live_counters);
	tcase_add_test(core, mount_json);
	tcase_add_test(limits, bad_json);
	tcase_add_test(limits, many_and_huge);
	suite_add_tcase(s, core);
	suite_add_tcase(s, limits);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(status_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
