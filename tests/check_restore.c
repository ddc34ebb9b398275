/*
 * check_restore: dvrfs-restore's time-aware rule (gaps), its plan, its
 * batches of files (batch) and how files are put in place (local's
 * committer), without the network.
 */
#include <sys/stat.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "gaps.h"
#include "local.h"
#include "opts.h"
#include "plan.h"

/* 2026-11-28T07:00:00Z */
#define T0	1795849200LL

/* Starts from t0, every step s, n of them, into v (returns v). */
static int64_t *
series(int64_t *v, int64_t t0, int64_t step, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		v[i] = t0 + (int64_t)i * step;
	return v;
}

START_TEST(spacing_is_the_median)
{
	int64_t t[] = { 0, 2, 4, 6, 16, 18, 20 };
	int64_t same[] = { 5, 5, 5 };

	ck_assert_int_eq(gaps_spacing(t, 7, 9), 2);
	ck_assert_int_eq(gaps_spacing(t, 1, 9), 9);
	ck_assert_int_eq(gaps_spacing(t, 0, 9), 9);
	ck_assert_int_eq(gaps_spacing(same, 3, 7), 7);
}
END_TEST

START_TEST(ends_stop_at_holes)
{
	int64_t t[] = { 0, 2, 4, 6, 16, 18, 18, 20 }, e[8];

	gaps_ends(t, 8, 2, e);
	ck_assert_int_eq(e[0], 2);
	ck_assert_int_eq(e[2], 6);
	/* 10 s to the next: a hole, the span is the usual 2 s. */
	ck_assert_int_eq(e[3], 8);
	/* Two files of one moment share the span to the next later. */
	ck_assert_int_eq(e[5], 20);
	ck_assert_int_eq(e[6], 20);
	/* The last one. */
	ck_assert_int_eq(e[7], 22);
}
END_TEST

/* A local archive missing an hour: exactly that hour is wanted. */
START_TEST(fills_a_missing_hour)
{
	size_t n = 3 * 900, i, k = 0;
	int64_t *peer = malloc(n * sizeof(*peer)), *local, end[3 * 900];
	uint8_t *want = malloc(n);

	series(peer, T0, 4, n);
	local = malloc(n * sizeof(*local));
	for (i = 0; i < n; i++)
		if (i < 900 || i >= 1800)
			local[k++] = peer[i];
	ck_assert_uint_eq(gaps_fill(peer, n, local, k, 0, INT64_MAX, want,
	    end), 900);
	for (i = 0; i < n; i++)
		ck_assert_int_eq(want[i], i >= 900 && i < 1800);
	ck_assert_int_eq(end[1799], peer[1800]);
	free(peer);
	free(local);
	free(want);
}
END_TEST

/*
 * Ten minutes re-recorded one second later: the peer's segments there
 * overlap the local ones, none is wanted; nor at the stretch's edges.
 */
START_TEST(offset_stretch_is_left_alone)
{
	int64_t peer[450], local[450];
	uint8_t want[450];
	size_t i;

	series(peer, T0, 4, 450);
	memcpy(local, peer, sizeof(local));
	for (i = 150; i < 300; i++)
		local[i] += 1;
	ck_assert_uint_eq(gaps_fill(peer, 450, local, 450, 0, INT64_MAX, want,
	    NULL), 0);

	/* Only the second half of the stretch left locally: the first
	 * half is a gap again, up to the first offset segment. */
	ck_assert_uint_eq(gaps_fill(peer, 450, local + 225, 225, 0,
	    INT64_MAX, want, NULL), 225);
	for (i = 0; i < 225; i++)
		ck_assert_int_eq(want[i], 1);
	ck_assert_int_eq(want[225], 0);
}
END_TEST

/* A 1 s offset with a hole: a peer segment partly in the hole overlaps. */
START_TEST(partial_overlap_is_not_a_gap)
{
	/* Local: 0..40 every 4 s (+1), then nothing until 101. */
	int64_t local[] = { 1, 5, 9, 13, 17, 21, 25, 29, 33, 37, 101, 105 };
	int64_t peer[30];
	uint8_t want[30];
	size_t i;

	series(peer, 0, 4, 30);
	gaps_fill(peer, 30, local, 12, 0, INT64_MAX, want, NULL);
	/* Local 37 spans [37, 41): peer 40 overlaps it, 44 does not. */
	for (i = 0; i <= 10; i++)
		ck_assert_msg(want[i] == 0, "peer %d wanted", (int)peer[i]);
	for (i = 11; i <= 24; i++)
		ck_assert_msg(want[i] == 1, "peer %d not wanted", (int)peer[i]);
	/* Peer 100 spans [100, 104): local 101 covers it. */
	ck_assert_int_eq(want[25], 0);
	ck_assert_int_eq(want[26], 0);
}
END_TEST

START_TEST(depth_and_settle)
{
	int64_t peer[100];
	uint8_t want[100];
	size_t i;

	series(peer, 1000, 2, 100);	/* 1000 .. 1198 */
	ck_assert_uint_eq(gaps_fill(peer, 100, NULL, 0, 1100, 1150, want,
	    NULL), 25);
	for (i = 0; i < 100; i++)
		ck_assert_int_eq(want[i], peer[i] >= 1100 && peer[i] + 2 <=
		    1150);
}
END_TEST

START_TEST(nothing_local_nothing_peer)
{
	int64_t peer[3] = { 10, 12, 14 };
	uint8_t want[3];

	ck_assert_uint_eq(gaps_fill(peer, 3, NULL, 0, 0, INT64_MAX, want,
	    NULL), 3);
	ck_assert_uint_eq(gaps_fill(NULL, 0, peer, 3, 0, INT64_MAX, want,
	    NULL), 0);
	/* One segment on each side, no spacing known: 2 s spans. */
	ck_assert_uint_eq(gaps_fill(peer, 1, peer + 1, 1, 0, INT64_MAX, want,
	    NULL), 1);
	ck_assert_uint_eq(gaps_fill(peer, 1, peer, 1, 0, INT64_MAX, want,
	    NULL), 0);
}
END_TEST

static char *
seg_name(const char *stream, int64_t t)
{
	char *s, ts[32];
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(ts, sizeof(ts), "%Y/%m/%d/%H/%M/%S", &tm);
	ck_assert_int_ge(asprintf(&s, "%s/%s.ts", stream, ts), 0);
	return s;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The plan: streams=, per-stream depths, other files, sizes and ranges.
 * news misses 07:30-07:40; sport has nothing locally.
 */
START_TEST(plan_streams_and_ranges)
{
	struct dvrfs_opts o;
	struct m4f_entry peer[2 * 900 + 2];
	char *local[900 + 1], err[256];
	struct plan *p;
	int64_t now = T0 + 3600;
	size_t np = 0, nl = 0, i;

	for (i = 0; i < 900; i++) {
		int64_t t = T0 + (int64_t)i * 4;

		peer[np] = (struct m4f_entry){ .name = seg_name("news", t),
		    .type = M4F_FILE, .size = 100 };
		np++;
		peer[np] = (struct m4f_entry){ .name = seg_name("sport", t),
		    .type = M4F_FILE, .size = 10 };
		np++;
		if (i < 450 || i >= 600)
			local[nl++] = strdup(peer[np - 2].name);
	}
	peer[np++] = (struct m4f_entry){ .name = strdup("news/logo.png"),
	    .type = M4F_FILE, .size = 7 };
	peer[np++] = (struct m4f_entry){ .name = strdup("index.html"),
	    .type = M4F_FILE, .size = 3 };
	local[nl++] = strdup("index.html");
	qsort(local, nl, sizeof(*local), cmp_str);

	/* All streams, depth 7d: news's gap, all sport, the logo. */
	opts_init(&o);
	p = plan_make(peer, np, local, nl, &o, now);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(p->ns, 2);
	ck_assert_str_eq(p->s[0].name, "news");
	ck_assert_uint_eq(p->s[0].files, 151);
	ck_assert_uint_eq(p->s[0].bytes, 150 * 100 + 7);
	ck_assert_uint_eq(p->s[0].nr, 1);
	ck_assert_int_eq(p->s[0].r[0].from, T0 + 1800);
	ck_assert_int_eq(p->s[0].r[0].to, T0 + 2400);
	ck_assert_str_eq(p->s[1].name, "sport");
	/* The newest segment of sport is within the settle time. */
	ck_assert_uint_eq(p->s[1].files, 897);
	ck_assert_uint_eq(p->ncopy, 151 + 897);
	/* Newest first within a stream. */
	ck_assert_str_eq(peer[p->copy[0]].name, "news/2026/11/28/07/39/56.ts");
	plan_free(p);

	/* streams=news:20m: the gap is older than 20 minutes. */
	ck_assert_int_eq(opts_list(&o, "streams=news:20m", OPTS_RESTORE, 0,
	    err, sizeof(err)), 0);
	p = plan_make(peer, np, local, nl, &o, now);
	ck_assert_uint_eq(p->ns, 1);
	ck_assert_uint_eq(p->ncopy, 1);
	ck_assert_str_eq(peer[p->copy[0]].name, "news/logo.png");
	plan_free(p);
	opts_clear(&o);

	/* streams=news:50m+sport:1m. */
	opts_init(&o);
	ck_assert_int_eq(opts_list(&o, "streams=news:50m+sport:1m",
	    OPTS_RESTORE, 0, err, sizeof(err)), 0);
	p = plan_make(peer, np, local, nl, &o, now);
	ck_assert_uint_eq(p->s[0].files, 151);
	ck_assert_uint_eq(p->s[1].files, 15 - 3);
	plan_free(p);
	opts_clear(&o);

	for (i = 0; i < np; i++)
		free(peer[i].name);
	for (i = 0; i < nl; i++)
		free(local[i]);
}
END_TEST

/* The local recording re-cut 1 s later in the gap: nothing to copy. */
START_TEST(plan_overlap_counted)
{
	struct dvrfs_opts o;
	struct m4f_entry peer[100];
	char *local[100];
	struct plan *p;
	size_t i;

	for (i = 0; i < 100; i++) {
		peer[i] = (struct m4f_entry){ .name = seg_name("a",
		    T0 + (int64_t)i * 4), .type = M4F_FILE, .size = 1 };
		local[i] = seg_name("a", T0 + (int64_t)i * 4 + (i >= 50));
	}
	qsort(local, 100, sizeof(*local), cmp_str);
	opts_init(&o);
	p = plan_make(peer, 100, local, 100, &o, T0 + 3600);
	ck_assert_uint_eq(p->ncopy, 0);
	ck_assert_uint_eq(p->s[0].overlap, 50);
	plan_free(p);
	for (i = 0; i < 100; i++) {
		free(peer[i].name);
		free(local[i]);
	}
}
END_TEST

/* A file entry: name and size, sha256 hex or "" (not known). */
static struct m4f_entry
file_ent(const char *name, uint64_t size, const char *sha)
{
	struct m4f_entry e = { .name = (char *)name, .type = M4F_FILE,
	    .size = size };

	snprintf(e.sha256, sizeof(e.sha256), "%s", sha);
	return e;
}

#define H1 "1111111111111111111111111111111111111111111111111111111111111111"
#define H2 "2222222222222222222222222222222222222222222222222222222222222222"
#define H3 "3333333333333333333333333333333333333333333333333333333333333333"

/* The files of one folder go together, up to 8 files or 8 MiB. */
START_TEST(batch_takes_a_folder)
{
	struct m4f_entry v[20];
	size_t idx[20], i;
	char names[20][32];

	for (i = 0; i < 20; i++) {
		snprintf(names[i], sizeof(names[i]), "a/2026/11/28/07/%02d/%02d.ts",
		    i < 12 ? 0 : 1, (int)(i % 12) * 4);
		v[i] = file_ent(names[i], 1 << 20, "");
		idx[i] = 19 - i;	/* in any order */
	}
	/* 8 files of 1 MiB are 8 MiB. */
	ck_assert_uint_eq(batch_take(v, idx, 20), 8);
	/* The run of folder 01 ends where folder 00 starts. */
	ck_assert_uint_eq(batch_take(v, idx + 6, 14), 2);
	ck_assert_uint_eq(batch_take(v, idx + 8, 12), 8);
	ck_assert_uint_eq(batch_take(v, idx + 16, 4), 4);
	ck_assert_uint_eq(batch_take(v, idx + 19, 1), 1);
	ck_assert_uint_eq(batch_take(v, idx, 0), 0);
	/* A bit more than 1 MiB each: 7 fit. */
	for (i = 0; i < 20; i++)
		v[i].size = (1 << 20) + 188;
	ck_assert_uint_eq(batch_take(v, idx, 20), 7);
}
END_TEST

/* An empty file, one past 8 MiB, and files at the top. */
START_TEST(batch_limits)
{
	struct m4f_entry v[4] = {
		file_ent("x.ts", 100, ""), file_ent("y.ts", 0, ""),
		file_ent("z.ts", 100, ""), file_ent("d/w.ts", 100, ""),
	};
	size_t idx[] = { 0, 1, 2, 3 }, idx2[] = { 0, 2, 3 };

	ck_assert_uint_eq(batch_take(v, idx, 4), 1);
	ck_assert_uint_eq(batch_take(v, idx + 1, 3), 1);
	ck_assert_uint_eq(batch_take(v, idx2, 3), 2);
	v[0].size = BATCH_BYTES;
	ck_assert_uint_eq(batch_take(v, idx2, 3), 1);
	v[0].size = BATCH_BYTES + 1;
	ck_assert_uint_eq(batch_take(v, idx2, 3), 1);
	v[0].size = BATCH_BYTES - 100;
	ck_assert_uint_eq(batch_take(v, idx2, 3), 2);
}
END_TEST

/* Each file's hash: the listed one, else the answer's. */
START_TEST(batch_answer_hashes)
{
	struct m4f_entry v[3] = {
		file_ent("a/1.ts", 5, H1), file_ent("a/2.ts", 7, ""),
		file_ent("a/3.ts", 9, H3),
	};
	const struct m4f_entry *e[3] = { &v[0], &v[1], &v[2] };
	char want[3][M4F_SHA256_HEX + 1];
	uint64_t asize[3];

	ck_assert_int_eq(batch_answer(e, 3, "5,7,9", H1 "," H2 "," H3,
	    asize, want), 0);
	ck_assert_uint_eq(asize[1], 7);
	ck_assert_str_eq(want[0], H1);
	ck_assert_str_eq(want[1], H2);
	ck_assert_str_eq(want[2], H3);

	/* No X-M4F-Digests: the listed hashes only. */
	ck_assert_int_eq(batch_answer(e, 3, "5,7,9", NULL, asize, want), 0);
	ck_assert_str_eq(want[0], H1);
	ck_assert_str_eq(want[1], "");
	ck_assert_str_eq(want[2], H3);

	/* The third changed since it was listed: another hash, another
	 * size; the others stay. */
	ck_assert_int_eq(batch_answer(e, 3, "5,7,9", H1 "," H2 "," H2,
	    asize, want), 0);
	ck_assert_str_eq(want[0], H1);
	ck_assert_str_eq(want[2], "");
	ck_assert_int_eq(batch_answer(e, 3, "5,8,9", H1 "," H2 "," H3,
	    asize, want), 0);
	ck_assert_uint_eq(asize[1], 8);
	ck_assert_str_eq(want[1], "");
	ck_assert_str_eq(want[2], H3);
}
END_TEST

/* An answer that cannot be split is refused whole. */
START_TEST(batch_answer_refused)
{
	struct m4f_entry v[2] = {
		file_ent("a/1.ts", 5, H1), file_ent("a/2.ts", 7, ""),
	};
	const struct m4f_entry *e[2] = { &v[0], &v[1] };
	char want[2][M4F_SHA256_HEX + 1];
	uint64_t asize[2];

	ck_assert_int_eq(batch_answer(e, 2, NULL, NULL, asize, want), -1);
	ck_assert_int_eq(batch_answer(e, 2, "5", H1, asize, want), -1);
	ck_assert_int_eq(batch_answer(e, 2, "5,7,9", NULL, asize, want), -1);
	ck_assert_int_eq(batch_answer(e, 2, "5, 7", NULL, asize, want), -1);
	ck_assert_int_eq(batch_answer(e, 2, "5,07", NULL, asize, want), -1);
	ck_assert_int_eq(batch_answer(e, 2, "5,-7", NULL, asize, want), -1);
	ck_assert_int_eq(batch_answer(e, 2, "5,7", H1, asize, want), -1);
	ck_assert_int_eq(batch_answer(e, 2, "5,7", H1 "," H2 "," H3, asize,
	    want), -1);
	ck_assert_int_eq(batch_answer(e, 2, "5,7", H1 ",XYZ", asize, want),
	    -1);
	ck_assert_int_eq(batch_answer(e, 0, "5", NULL, asize, want), -1);
	ck_assert_int_eq(batch_answer(e, 2, "5,7", H1 "," H2, asize, want),
	    0);
}
END_TEST

/* A temporary file of rel under dirfd holding text; its descriptor. */
static int
tmp_file(int dirfd, const char *rel, const char *text, char **tmp)
{
	int fd;

	*tmp = local_tmp_name(rel);
	ck_assert_ptr_nonnull(*tmp);
	fd = openat(dirfd, *tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	return fd;
}

/* What file rel under dirfd holds (up to 63 bytes), "" when missing. */
static const char *
contents(int dirfd, const char *rel, char buf[64])
{
	ssize_t n;
	int fd;

	buf[0] = '\0';
	if ((fd = openat(dirfd, rel, O_RDONLY)) == -1)
		return buf;
	n = read(fd, buf, 63);
	buf[n > 0 ? n : 0] = '\0';
	close(fd);
	return buf;
}

static void
note_done(void *arg, void *cookie, int err)
{
	((int *)arg)[(intptr_t)cookie] = err;
}

START_TEST(commit_puts_in_place)
{
	char top[] = "/tmp/check_restore.XXXXXX", buf[64], *tmp[3];
	static const char *const rel[3] = { "a/1.ts", "a/2.ts", "b/3.ts" };
	int err[3] = { -1, -1, -1 }, dirfd, fd, i;
	struct local_commit *c;
	struct stat st, before;
	char **names;
	size_t n;

	ck_assert_ptr_nonnull(mkdtemp(top));
	dirfd = open(top, O_RDONLY | O_DIRECTORY);
	ck_assert_int_ge(dirfd, 0);
	ck_assert_int_eq(mkdirat(dirfd, "a", 0755), 0);
	ck_assert_int_eq(mkdirat(dirfd, "b", 0755), 0);
	/* The recorder wrote a/2.ts meanwhile. */
	fd = openat(dirfd, "a/2.ts", O_WRONLY | O_CREAT, 0644);
	ck_assert_int_eq(write(fd, "local", 5), 5);
	close(fd);
	ck_assert_int_eq(fstatat(dirfd, "a/2.ts", &before, 0), 0);

	c = local_commit_new(dirfd, NULL, NULL);
	ck_assert_ptr_nonnull(c);
	for (i = 0; i < 3; i++) {
		fd = tmp_file(dirfd, rel[i], rel[i], &tmp[i]);
		ck_assert_int_eq(local_commit_add(c, fd, tmp[i], rel[i],
		    1795849200 + i, (void *)(intptr_t)i), 0);
	}
	ck_assert_uint_eq(local_commit_pending(c), 3);
	local_commit_wait(c);
	ck_assert_uint_eq(local_commit_reap(c, note_done, err), 3);
	ck_assert_uint_eq(local_commit_pending(c), 0);
	local_commit_free(c);

	ck_assert_int_eq(err[0], 0);
	ck_assert_int_eq(err[1], EEXIST);
	ck_assert_int_eq(err[2], 0);
	ck_assert_str_eq(contents(dirfd, "a/1.ts", buf), "a/1.ts");
	ck_assert_str_eq(contents(dirfd, "b/3.ts", buf), "b/3.ts");
	ck_assert_int_eq(fstatat(dirfd, "b/3.ts", &st, 0), 0);
	ck_assert_int_eq(st.st_mtime, 1795849202);
	/* The recorder's file is untouched: bytes, inode, mtime. */
	ck_assert_str_eq(contents(dirfd, "a/2.ts", buf), "local");
	ck_assert_int_eq(fstatat(dirfd, "a/2.ts", &st, 0), 0);
	ck_assert_uint_eq(st.st_ino, before.st_ino);
	ck_assert_int_eq(st.st_mtime, before.st_mtime);
	/* No temporary file is left, and the scan sees the three files. */
	ck_assert_int_eq(local_scan(dirfd, NULL, 0, &names, &n, NULL), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(names[0], "a/1.ts");
	ck_assert_str_eq(names[1], "a/2.ts");
	ck_assert_str_eq(names[2], "b/3.ts");
	local_names_free(names, n);
	ck_assert_int_eq(faccessat(dirfd, "a/.2.ts" LOCAL_TMP, F_OK, 0), -1);
	for (i = 0; i < 3; i++)
		unlinkat(dirfd, rel[i], 0);
	unlinkat(dirfd, "a", AT_REMOVEDIR);
	unlinkat(dirfd, "b", AT_REMOVEDIR);
	close(dirfd);
	rmdir(top);
}
END_TEST

START_TEST(commit_free_waits)
{
	char top[] = "/tmp/check_restore.XXXXXX", buf[64], *tmp;
	struct local_commit *c;
	int dirfd, fd;

	local_commit_free(NULL);
	ck_assert_ptr_nonnull(mkdtemp(top));
	dirfd = open(top, O_RDONLY | O_DIRECTORY);
	ck_assert_int_ge(dirfd, 0);
	c = local_commit_new(dirfd, NULL, NULL);
	ck_assert_ptr_nonnull(c);
	fd = tmp_file(dirfd, "top.ts", "bytes", &tmp);
	ck_assert_int_eq(local_commit_add(c, fd, tmp, "top.ts", 0, NULL), 0);
	/* Freed without a wait: the file handed over is still put in place. */
	local_commit_free(c);
	ck_assert_str_eq(contents(dirfd, "top.ts", buf), "bytes");
	ck_assert_int_eq(faccessat(dirfd, ".top.ts" LOCAL_TMP, F_OK, 0), -1);
	unlinkat(dirfd, "top.ts", 0);
	close(dirfd);
	rmdir(top);
}
END_TEST

static Suite *
restore_suite(void)
{
	Suite *s = suite_create("restore");
	TCase *core = tcase_create("core"), *limits = tcase_create("limits");

	tcase_add_test(core, spacing_is_the_median);
	tcase_add_test(core, ends_stop_at_holes);
	tcase_add_test(core, fills_a_missing_hour);
	tcase_add_test(core, offset_stretch_is_left_alone);
	tcase_add_test(core, partial_overlap_is_not_a_gap);
	tcase_add_test(core, plan_streams_and_ranges);
	tcase_add_test(core, plan_overlap_counted);
	tcase_add_test(core, batch_takes_a_folder);
	tcase_add_test(core, batch_answer_hashes);
	tcase_add_test(core, commit_puts_in_place);
	tcase_add_test(limits, batch_limits);
	tcase_add_test(limits, batch_answer_refused);
	tcase_add_test(limits, depth_and_settle);
	tcase_add_test(limits, nothing_local_nothing_peer);
	tcase_add_test(limits, commit_free_waits);
	suite_add_tcase(s, core);
	suite_add_tcase(s, limits);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(restore_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
