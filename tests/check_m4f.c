/* Unit tests of fetcher/m4f.c: paths, signatures, listing and feed JSON. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "m4f.h"

#define KEY	"cluster-secret"
#define SHA	"3f0a000000000000000000000000000000000000000000000000000000000001"
#define NOW	1795763600

static struct m4f_listing *
dec_list(const char *json, int recursive)
{
	char err[128] = "";

	return m4f_listing_decode(json, strlen(json), recursive, err,
	    sizeof(err));
}

static struct m4f_feed *
dec_feed(const char *json)
{
	char err[128] = "";

	return m4f_feed_decode(json, strlen(json), err, sizeof(err));
}

/* A listing with one entry whose JSON object is ENTRY. */
static struct m4f_listing *
one_entry(const char *entry, int recursive)
{
	char buf[8192];

	snprintf(buf, sizeof(buf),
	    "{\"path\":\"/storage\",\"entries\":[%s],\"next\":null}", entry);
	return dec_list(buf, recursive);
}

START_TEST(body_digest)
{
	char hex[M4F_SHA256_HEX + 1];

	ck_assert_int_eq(m4f_sha256_hex("abc", 3, hex), 0);
	ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223"
	    "b00361a396177a9cb410ff61f20015ad");
	ck_assert_int_eq(m4f_sha256_hex("", 0, hex), 0);
	ck_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb924"
	    "27ae41e4649b934ca495991b7852b855");
}
END_TEST

/* X-M4F-Sizes: exact decimal lists only, as many as asked at most. */
START_TEST(sizes_parse)
{
	static const char *bad[] = { "", ",", "1,", ",1", "1,,2", " 1",
	    "1 ", "+1", "-1", "01", "00", "1a", "18446744073709551616",
	    "99999999999999999999", "1;2" };
	uint64_t v[4];
	size_t n = 0, i;

	ck_assert_int_eq(m4f_sizes_parse("1048664,0,18446744073709551615",
	    v, 4, &n), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_uint_eq(v[0], 1048664);
	ck_assert_uint_eq(v[1], 0);
	ck_assert_uint_eq(v[2], UINT64_MAX);
	ck_assert_int_eq(m4f_sizes_parse("1,2,3,4", v, 4, &n), 0);
	ck_assert_uint_eq(n, 4);
	ck_assert_int_eq(m4f_sizes_parse("1,2,3,4,5", v, 4, &n), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(m4f_sizes_parse(NULL, v, 4, &n), -1);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		ck_assert_msg(m4f_sizes_parse(bad[i], v, 4, &n) == -1 &&
		    errno == EINVAL, "accepted \"%s\"", bad[i]);
	}
}
END_TEST

START_TEST(name_valid)
{
	ck_assert_int_eq(m4f_name_check("04.ts", 5), 0);
	ck_assert_int_eq(m4f_name_check("...", 3), 0);
	ck_assert_int_eq(m4f_name_check(".x", 2), 0);
	ck_assert_int_eq(m4f_name_check("a b~ü", strlen("a b~ü")), 0);
}
END_TEST

START_TEST(name_invalid)
{
	errno = 0;
	ck_assert_int_eq(m4f_name_check("", 0), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(m4f_name_check(".", 1), -1);
	ck_assert_int_eq(m4f_name_check("..", 2), -1);
	ck_assert_int_eq(m4f_name_check("a/b", 3), -1);
	ck_assert_int_eq(m4f_name_check("a\0b", 3), -1);
	ck_assert_int_eq(m4f_name_check("a\nb", 3), -1);
	ck_assert_int_eq(m4f_name_check("a\x1f", 2), -1);
	ck_assert_int_eq(m4f_name_check("a\x7f", 2), -1);
	ck_assert_int_eq(m4f_name_check(NULL, 1), -1);
}
END_TEST

START_TEST(path_valid)
{
	ck_assert_int_eq(m4f_path_check(""), 0);
	ck_assert_int_eq(m4f_path_check("news"), 0);
	ck_assert_int_eq(m4f_path_check("news/2026/11/27/07/13/04.ts"), 0);
}
END_TEST

START_TEST(path_invalid)
{
	static const char *bad[] = { "/", "/a", "a/", "a//b", "a/../b", "..",
	    "a/.", "./a", "a/\x01", NULL };
	int i;

	for (i = 0; bad[i] != NULL; i++) {
		errno = 0;
		ck_assert_msg(m4f_path_check(bad[i]) == -1, "%s", bad[i]);
		ck_assert_int_eq(errno, EINVAL);
	}
}
END_TEST

START_TEST(hidden)
{
	ck_assert(m4f_name_hidden(".x"));
	ck_assert(m4f_name_hidden("y.tmp"));
	ck_assert(m4f_name_hidden("a/.part/b.ts"));
	ck_assert(m4f_name_hidden("a/b.ts.tmp"));
	ck_assert(!m4f_name_hidden("04.ts"));
	ck_assert(!m4f_name_hidden("a.tmpx/b"));
	ck_assert(!m4f_name_hidden("tmp"));
	ck_assert(!m4f_name_hidden(""));
}
END_TEST

START_TEST(sign_roundtrip)
{
	char h[256], hex[M4F_SHA256_HEX + 1];

	ck_assert_int_eq(m4f_sign(KEY, strlen(KEY), "GET", "/storage/a.ts",
	    NOW, hex), 0);
	ck_assert_int_eq(strlen(hex), 64);
	ck_assert_int_eq(m4f_auth_header(KEY, strlen(KEY), "GET",
	    "/storage/a.ts", NOW, h, sizeof(h)), 0);
	ck_assert_int_eq(m4f_auth_check(KEY, strlen(KEY), "GET",
	    "/storage/a.ts", h, NOW), 0);
	ck_assert_ptr_nonnull(strstr(h, hex));
}
END_TEST

/* The doc's openssl command line gives this for this key and message. */
START_TEST(sign_known_vector)
{
	char hex[M4F_SHA256_HEX + 1];

	/* printf 'GET\n/x\n0' | openssl dgst -sha256 -hmac key -r */
	ck_assert_int_eq(m4f_sign("key", 3, "GET", "/x", 0, hex), 0);
	ck_assert_str_eq(hex,
	    "d42b02586bc857d1637f38d6b86255ad0e4099d5226051f38d15786a8655f703");
}
END_TEST

START_TEST(auth_wrong_key)
{
	char h[256];

	ck_assert_int_eq(m4f_auth_header("other", 5, "GET", "/s/a", NOW, h,
	    sizeof(h)), 0);
	errno = 0;
	ck_assert_int_eq(m4f_auth_check(KEY, strlen(KEY), "GET", "/s/a", h,
	    NOW), -1);
	ck_assert_int_eq(errno, EACCES);
}
END_TEST

START_TEST(auth_clock)
{
	char h[256];

	ck_assert_int_eq(m4f_auth_header(KEY, strlen(KEY), "GET", "/s/a", NOW,
	    h, sizeof(h)), 0);
	ck_assert_int_eq(m4f_auth_check(KEY, strlen(KEY), "GET", "/s/a", h,
	    NOW + 299), 0);
	ck_assert_int_eq(m4f_auth_check(KEY, strlen(KEY), "GET", "/s/a", h,
	    NOW - 299), 0);
	ck_assert_int_eq(m4f_auth_check(KEY, strlen(KEY), "GET", "/s/a", h,
	    NOW + 300), 0);
	errno = 0;
	ck_assert_int_eq(m4f_auth_check(KEY, strlen(KEY), "GET", "/s/a", h,
	    NOW + 301), -1);
	ck_assert_int_eq(errno, ETIME);
	errno = 0;
	ck_assert_int_eq(m4f_auth_check(KEY, strlen(KEY), "GET", "/s/a", h,
	    NOW - 301), -1);
	ck_assert_int_eq(errno, ETIME);
}
END_TEST

START_TEST(auth_replay)
{
	char h[256];

	ck_assert_int_eq(m4f_auth_header(KEY, strlen(KEY), "GET", "/s/a", NOW,
	    h, sizeof(h)), 0);
	errno = 0;
	ck_assert_int_eq(m4f_auth_check(KEY, strlen(KEY), "GET", "/s/b", h,
	    NOW), -1);
	ck_assert_int_eq(errno, EACCES);
	ck_assert_int_eq(m4f_auth_check(KEY, strlen(KEY), "HEAD", "/s/a", h,
	    NOW), -1);
	ck_assert_int_eq(m4f_auth_check(KEY, strlen(KEY), "GET", "/s/a?x=1",
	    h, NOW), -1);
}
END_TEST

START_TEST(auth_malformed)
{
	static const char *bad[] = { "", "Basic abc", "M4F-HMAC-SHA256 t=,sig=",
	    "M4F-HMAC-SHA256 t=-5,sig=" SHA, "M4F-HMAC-SHA256 sig=" SHA,
	    "M4F-HMAC-SHA256 t=1795763600,sig=" SHA "0",
	    "M4F-HMAC-SHA256 t=1795763600,sig=3F0A",
	    "M4F-HMAC-SHA256 t=99999999999999999999999,sig=" SHA,
	    "m4f-hmac-sha256 t=1795763600,sig=" SHA, NULL };
	int i;

	errno = 0;
	ck_assert_int_eq(m4f_auth_check(KEY, 3, "GET", "/", NULL, NOW), -1);
	ck_assert_int_eq(errno, EBADMSG);
	for (i = 0; bad[i] != NULL; i++) {
		errno = 0;
		ck_assert_msg(m4f_auth_check(KEY, 3, "GET", "/", bad[i], NOW) ==
		    -1, "%s", bad[i]);
		ck_assert_int_eq(errno, EBADMSG);
	}
}
END_TEST

START_TEST(auth_header_nospace)
{
	char h[20];

	errno = 0;
	ck_assert_int_eq(m4f_auth_header(KEY, 3, "GET", "/", NOW, h,
	    sizeof(h)), -1);
	ck_assert_int_eq(errno, ENOSPC);
}
END_TEST

START_TEST(listing_roundtrip)
{
	struct m4f_entry e[2] = {
		{ .name = "07", .type = M4F_DIR, .mtime = 1795763584 },
		{ .name = "07/13/04.ts", .type = M4F_FILE, .size = 1048764,
		  .mtime = 1795763586, .sha256 = SHA },
	};
	struct m4f_listing l = { .path = "/storage/news", .entries = e,
	    .n = 2, .next = "07/13/04.ts" }, *d;
	char *s;

	s = m4f_listing_encode(&l);
	ck_assert_ptr_nonnull(s);
	d = dec_list(s, 1);
	ck_assert_ptr_nonnull(d);
	ck_assert_str_eq(d->path, "/storage/news");
	ck_assert_uint_eq(d->n, 2);
	ck_assert_str_eq(d->entries[0].name, "07");
	ck_assert_int_eq(d->entries[0].type, M4F_DIR);
	ck_assert_str_eq(d->entries[0].sha256, "");
	ck_assert_str_eq(d->entries[1].name, "07/13/04.ts");
	ck_assert_uint_eq(d->entries[1].size, 1048764);
	ck_assert_int_eq(d->entries[1].mtime, 1795763586);
	ck_assert_str_eq(d->entries[1].sha256, SHA);
	ck_assert_str_eq(d->next, "07/13/04.ts");
	/* Not recursive: "07/13/04.ts" is not a single component. */
	errno = 0;
	ck_assert_ptr_null(dec_list(s, 0));
	ck_assert_int_eq(errno, EBADMSG);
	m4f_listing_free(d);
	free(s);
}
END_TEST

START_TEST(listing_null_sha)
{
	struct m4f_listing *d;
	struct m4f_feed *f;
	static const char *feed = "{\"epoch\":\"e1\",\"seq\":2,\"reset\":false,"
	    "\"events\":[{\"seq\":2,\"op\":\"add\",\"type\":\"f\",\"name\":"
	    "\"a/b.ts\",\"size\":5,\"mtime\":7,\"sha256\":null}]}";

	d = one_entry("{\"name\":\"a\",\"type\":\"f\",\"size\":9,\"mtime\":1,"
	    "\"sha256\":null}", 0);
	ck_assert_ptr_nonnull(d);
	ck_assert_int_eq(d->entries[0].type, M4F_FILE);
	ck_assert_uint_eq(d->entries[0].size, 9);
	ck_assert_str_eq(d->entries[0].sha256, "");
	m4f_listing_free(d);
	f = m4f_feed_decode(feed, strlen(feed), NULL, 0);
	ck_assert_ptr_nonnull(f);
	ck_assert_str_eq(f->events[0].e.sha256, "");
	m4f_feed_free(f);
	/* null is "not known", not "absent": the field stays required. */
	ck_assert_ptr_null(one_entry("{\"name\":\"a\",\"type\":\"f\","
	    "\"size\":9,\"mtime\":1}", 0));
	ck_assert_ptr_null(one_entry("{\"name\":\"a\",\"type\":\"f\","
	    "\"size\":9,\"mtime\":1,\"sha256\":\"\"}", 0));
	ck_assert_ptr_null(one_entry("{\"name\":\"a\",\"type\":\"f\","
	    "\"size\":9,\"mtime\":1,\"sha256\":0}", 0));
}
END_TEST

START_TEST(listing_links)
{
	static const struct { const char *name, *target; } good[] = {
		{ "alias", "news" }, { "a/b", "../c" }, { "a/b/c", "./d/../e" },
		{ "a/b", "x//y/" }, { "a/b", "../a/../z" }, { NULL, NULL } };
	static const char *bad[] = {
	    /* absolute, empty, missing, not a string */
	    "{\"name\":\"l\",\"type\":\"l\",\"mtime\":1,\"target\":\"/etc\"}",
	    "{\"name\":\"l\",\"type\":\"l\",\"mtime\":1,\"target\":\"\"}",
	    "{\"name\":\"l\",\"type\":\"l\",\"mtime\":1}",
	    "{\"name\":\"l\",\"type\":\"l\",\"mtime\":1,\"target\":5}",
	    "{\"name\":\"l\",\"type\":\"l\",\"mtime\":1,\"target\":null}",
	    "{\"name\":\"l\",\"type\":\"l\",\"target\":\"x\"}",
	    /* NUL and control bytes */
	    "{\"name\":\"l\",\"type\":\"l\",\"mtime\":1,\"target\":\"a\\u0000b\"}",
	    "{\"name\":\"l\",\"type\":\"l\",\"mtime\":1,\"target\":\"a\\nb\"}",
	    NULL };
	char e[5000], longt[4200];
	struct m4f_listing *d;
	int i;

	for (i = 0; good[i].name != NULL; i++) {
		snprintf(e, sizeof(e), "{\"name\":\"%s\",\"type\":\"l\","
		    "\"mtime\":3,\"target\":\"%s\"}", good[i].name,
		    good[i].target);
		d = one_entry(e, 1);
		ck_assert_msg(d != NULL, "%s", e);
		ck_assert_int_eq(d->entries[0].type, M4F_LINK);
		ck_assert_int_eq(d->entries[0].mtime, 3);
		ck_assert_str_eq(d->entries[0].target, good[i].target);
		m4f_listing_free(d);
	}
	for (i = 0; bad[i] != NULL; i++)
		ck_assert_msg(one_entry(bad[i], 1) == NULL, "%s", bad[i]);
	/* Too long: a target past M4F_PATH_MAX bytes. */
	memset(longt, 'a', sizeof(longt));
	for (i = 100; i < 4150; i += 100)
		longt[i] = '/';
	longt[4150] = '\0';
	snprintf(e, sizeof(e), "{\"name\":\"l\",\"type\":\"l\",\"mtime\":1,"
	    "\"target\":\"%s\"}", longt);
	ck_assert_ptr_null(one_entry(e, 1));
	longt[4000] = '\0';
	snprintf(e, sizeof(e), "{\"name\":\"l\",\"type\":\"l\",\"mtime\":1,"
	    "\"target\":\"%s\"}", longt);
	d = one_entry(e, 1);
	ck_assert_ptr_nonnull(d);
	m4f_listing_free(d);
	/* Inside the export, from where the link is. */
	ck_assert_int_eq(m4f_link_check("news/alias", "../sport"), 0);
	ck_assert_int_eq(m4f_link_check("a/b/l", "../../c/./d"), 0);
	ck_assert_int_eq(m4f_link_check("alias", "../x"), -1);
	ck_assert_int_eq(m4f_link_check("a/l", "../../x"), -1);
	ck_assert_int_eq(m4f_link_check("a/l", "b/../../../x"), -1);
	ck_assert_int_eq(m4f_link_check("a/l", "/etc"), -1);
	ck_assert_int_eq(m4f_link_check("../l", "x"), -1);
	/* A del event of a link names it only. */
	{
		static const char *feed = "{\"epoch\":\"e1\",\"seq\":2,"
		    "\"reset\":false,\"events\":[{\"seq\":2,\"op\":\"del\","
		    "\"type\":\"l\",\"name\":\"alias\"}]}";
		struct m4f_feed *f = m4f_feed_decode(feed, strlen(feed), NULL,
		    0);

		ck_assert_ptr_nonnull(f);
		ck_assert_int_eq(f->events[0].e.type, M4F_LINK);
		ck_assert_ptr_null(f->events[0].e.target);
		m4f_feed_free(f);
	}
}
END_TEST

START_TEST(digests_parse)
{
	char v[3][M4F_SHA256_HEX + 1], two[200];
	size_t n = 0;

	ck_assert_int_eq(m4f_digests_parse(SHA, v, 3, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(v[0], SHA);
	snprintf(two, sizeof(two), "%s,%s", SHA, SHA);
	ck_assert_int_eq(m4f_digests_parse(two, v, 3, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(m4f_digests_parse(two, v, 1, &n), -1);
	snprintf(two, sizeof(two), "%s, %s", SHA, SHA);
	ck_assert_int_eq(m4f_digests_parse(two, v, 3, &n), -1);
	snprintf(two, sizeof(two), "%s,", SHA);
	ck_assert_int_eq(m4f_digests_parse(two, v, 3, &n), -1);
	ck_assert_int_eq(m4f_digests_parse("", v, 3, &n), -1);
	ck_assert_int_eq(m4f_digests_parse(NULL, v, 3, &n), -1);
	ck_assert_int_eq(m4f_digests_parse("3F0A", v, 3, &n), -1);
	snprintf(two, sizeof(two), "%.63sG", SHA);
	ck_assert_int_eq(m4f_digests_parse(two, v, 3, &n), -1);
}
END_TEST

START_TEST(listing_empty_last_page)
{
	struct m4f_listing *d;

	d = dec_list("{\"path\":\"/s\",\"entries\":[],\"next\":null}", 0);
	ck_assert_ptr_nonnull(d);
	ck_assert_uint_eq(d->n, 0);
	ck_assert_ptr_null(d->next);
	m4f_listing_free(d);
	m4f_listing_free(NULL);
}
END_TEST

START_TEST(listing_hostile_names)
{
	char big[400], e[600];
	static const char *names[] = { "\"..\"", "\".\"", "\"a/../b\"",
	    "\"/etc\"", "\"a/\"", "\"\"", "\"a\\u0000b\"", "\"a\\nb\"",
	    "\"a\\u007fb\"", "5", "null", NULL };
	int i;

	for (i = 0; names[i] != NULL; i++) {
		snprintf(e, sizeof(e), "{\"name\":%s,\"type\":\"d\","
		    "\"mtime\":1}", names[i]);
		ck_assert_msg(one_entry(e, 1) == NULL, "%s", names[i]);
	}
	memset(big, 'a', 300);
	big[300] = '\0';
	snprintf(e, sizeof(e), "{\"name\":\"%s\",\"type\":\"d\",\"mtime\":1}",
	    big);
	ck_assert_ptr_null(one_entry(e, 1));
	big[255] = '\0';
	snprintf(e, sizeof(e), "{\"name\":\"%s\",\"type\":\"d\",\"mtime\":1}",
	    big);
	struct m4f_listing *ok = one_entry(e, 0);
	ck_assert_ptr_nonnull(ok);
	m4f_listing_free(ok);
}
END_TEST

START_TEST(listing_bad_types)
{
	static const char *bad[] = {
	    "{\"name\":\"a\",\"type\":\"x\",\"mtime\":1}",
	    "{\"name\":\"a\",\"type\":\"l\",\"mtime\":1}",
	    "{\"name\":\"a\",\"type\":\"d\"}",
	    "{\"name\":\"a\",\"type\":\"d\",\"mtime\":\"1\"}",
	    "{\"name\":\"a\",\"type\":\"d\",\"mtime\":1.5}",
	    "{\"name\":\"a\",\"type\":\"d\",\"mtime\":true}",
	    "{\"name\":\"a\",\"type\":\"d\",\"mtime\":null}",
	    "{\"name\":\"a\",\"type\":\"d\",\"mtime\":-1}",
	    "{\"name\":\"a\",\"type\":\"f\",\"size\":9007199254740993,"
	    "\"mtime\":1,\"sha256\":null}",
	    "{\"type\":\"d\",\"mtime\":1}",
	    "{\"name\":\"a\",\"type\":\"f\",\"mtime\":1,\"sha256\":\"" SHA "\"}",
	    "{\"name\":\"a\",\"type\":\"f\",\"size\":1,\"mtime\":1}",
	    "{\"name\":\"a\",\"type\":\"f\",\"size\":1,\"mtime\":1,"
	    "\"sha256\":\"3F0A\"}",
	    "{\"name\":\"a\",\"type\":\"f\",\"size\":1,\"mtime\":1,"
	    "\"sha256\":\"" SHA "0\"}",
	    "{\"name\":\"a\",\"type\":\"f\",\"size\":1,\"mtime\":1,"
	    "\"sha256\":\"3F0A000000000000000000000000000000000000000000000000"
	    "000000000001\"}",
	    "[1,2]", "\"a\"", NULL };
	int i;

	for (i = 0; bad[i] != NULL; i++)
		ck_assert_msg(one_entry(bad[i], 0) == NULL, "%s", bad[i]);
}
END_TEST

START_TEST(listing_bad_documents)
{
	static const char *bad[] = {
	    "", "{", "[]", "null", "{\"path\":\"/s\",\"entries\":[]}",
	    "{\"path\":\"/s\",\"entries\":{},\"next\":null}",
	    "{\"path\":\"s\",\"entries\":[],\"next\":null}",
	    "{\"path\":\"/\",\"entries\":[],\"next\":null}",
	    "{\"path\":\"/s/../x\",\"entries\":[],\"next\":null}",
	    "{\"path\":\"/s\",\"entries\":[],\"next\":5}",
	    "{\"path\":\"/s\",\"entries\":[],\"next\":\"../x\"}",
	    "{\"path\":\"/s\",\"entries\":[],\"next\":\"\"}",
	    "{\"path\":\"/s\",\"path\":\"/t\",\"entries\":[],\"next\":null}",
	    NULL };
	int i;

	for (i = 0; bad[i] != NULL; i++) {
		errno = 0;
		ck_assert_msg(dec_list(bad[i], 1) == NULL, "%s", bad[i]);
		ck_assert_int_eq(errno, EBADMSG);
	}
}
END_TEST

START_TEST(listing_err_text)
{
	const char *j = "{\"path\":\"/s\",\"entries\":[{\"name\":\"..\","
	    "\"type\":\"d\",\"mtime\":1}],\"next\":null}";
	char err[128] = "";

	ck_assert_ptr_null(m4f_listing_decode(j, strlen(j), 0, err,
	    sizeof(err)));
	ck_assert_str_eq(err, "bad entry name");
	ck_assert_ptr_null(m4f_listing_decode(j, strlen(j), 0, NULL, 0));
}
END_TEST

START_TEST(numbers)
{
	struct m4f_listing *d;
	static const char *bad[] = { "-1", "9007199254740993",
	    "18446744073709551616", "1e3", "99999999999999999999999999", NULL };
	char e[512];
	int i;

	for (i = 0; bad[i] != NULL; i++) {
		snprintf(e, sizeof(e), "{\"name\":\"a\",\"type\":\"f\","
		    "\"size\":%s,\"mtime\":1,\"sha256\":\"" SHA "\"}", bad[i]);
		ck_assert_msg(one_entry(e, 0) == NULL, "size %s", bad[i]);
		snprintf(e, sizeof(e), "{\"name\":\"a\",\"type\":\"d\","
		    "\"mtime\":%s}", bad[i]);
		ck_assert_msg(one_entry(e, 0) == NULL, "mtime %s", bad[i]);
	}
	d = one_entry("{\"name\":\"a\",\"type\":\"f\",\"size\":9007199254740992,"
	    "\"mtime\":0,\"sha256\":\"" SHA "\"}", 0);
	ck_assert_ptr_nonnull(d);
	ck_assert_uint_eq(d->entries[0].size, 9007199254740992ULL);
	m4f_listing_free(d);
}
END_TEST

START_TEST(feed_roundtrip)
{
	struct m4f_event ev[2] = {
		{ .seq = 1041, .op = M4F_ADD, .e = { .name = "news/06.ts",
		  .type = M4F_FILE, .size = 10, .mtime = 5, .sha256 = SHA } },
		{ .seq = 1042, .op = M4F_DEL, .e = { .name = "news/04.ts",
		  .type = M4F_FILE } },
	};
	struct m4f_feed f = { .epoch = "5f1c2a9e0b7d4c31", .seq = 1042,
	    .reset = 0, .events = ev, .n = 2 }, *d;
	char *s;

	s = m4f_feed_encode(&f);
	ck_assert_ptr_nonnull(s);
	ck_assert_ptr_null(strstr(s, "\"sha256\":\"\""));
	d = dec_feed(s);
	ck_assert_ptr_nonnull(d);
	ck_assert_str_eq(d->epoch, "5f1c2a9e0b7d4c31");
	ck_assert_uint_eq(d->seq, 1042);
	ck_assert_int_eq(d->reset, 0);
	ck_assert_uint_eq(d->n, 2);
	ck_assert_int_eq(d->events[0].op, M4F_ADD);
	ck_assert_str_eq(d->events[0].e.sha256, SHA);
	ck_assert_uint_eq(d->events[0].e.size, 10);
	ck_assert_int_eq(d->events[1].op, M4F_DEL);
	ck_assert_str_eq(d->events[1].e.name, "news/04.ts");
	m4f_feed_free(d);
	m4f_feed_free(NULL);
	free(s);
}
END_TEST

START_TEST(feed_bad)
{
	static const char *bad[] = {
	    "{\"epoch\":\"\",\"seq\":1,\"reset\":false,\"events\":[]}",
	    "{\"epoch\":\"a b\",\"seq\":1,\"reset\":false,\"events\":[]}",
	    "{\"epoch\":\"000000000000000000000000000000000\",\"seq\":1,"
	    "\"reset\":false,\"events\":[]}",
	    "{\"epoch\":\"e\",\"seq\":-1,\"reset\":false,\"events\":[]}",
	    "{\"epoch\":\"e\",\"seq\":1,\"reset\":0,\"events\":[]}",
	    "{\"epoch\":\"e\",\"seq\":1,\"reset\":false}",
	    "{\"epoch\":\"e\",\"seq\":1,\"reset\":false,\"events\":[{\"seq\":1,"
	    "\"op\":\"mv\",\"name\":\"a\",\"type\":\"f\"}]}",
	    "{\"epoch\":\"e\",\"seq\":1,\"reset\":false,\"events\":[{\"seq\":1,"
	    "\"op\":\"add\",\"name\":\"a\",\"type\":\"f\",\"mtime\":1}]}",
	    "{\"epoch\":\"e\",\"seq\":1,\"reset\":false,\"events\":[{\"seq\":1,"
	    "\"op\":\"del\",\"name\":\"../a\",\"type\":\"f\"}]}",
	    "{\"epoch\":\"e\",\"seq\":1,\"reset\":false,\"events\":[{"
	    "\"op\":\"del\",\"name\":\"a\",\"type\":\"f\"}]}",
	    NULL };
	struct m4f_feed *d;
	int i;

	for (i = 0; bad[i] != NULL; i++) {
		errno = 0;
		ck_assert_msg(dec_feed(bad[i]) == NULL, "%s", bad[i]);
		ck_assert_int_eq(errno, EBADMSG);
	}
	d = dec_feed("{\"epoch\":\"e\",\"seq\":1,\"reset\":true,\"events\":[]}");
	ck_assert_ptr_nonnull(d);
	ck_assert_int_eq(d->reset, 1);
	m4f_feed_free(d);
}
END_TEST

START_TEST(unescape)
{
	char *s;

	s = m4f_unescape("a%20b%7e", 8, 1);
	ck_assert_str_eq(s, "a b~");
	free(s);
	s = m4f_unescape("a%2Fb", 5, 0);
	ck_assert_str_eq(s, "a/b");
	free(s);
	ck_assert_ptr_null(m4f_unescape("a%2Fb", 5, 1));
	ck_assert_ptr_null(m4f_unescape("a%2fb", 5, 1));
	ck_assert_ptr_null(m4f_unescape("a%00b", 5, 0));
	ck_assert_ptr_null(m4f_unescape("a%", 2, 0));
	ck_assert_ptr_null(m4f_unescape("a%4", 3, 0));
	ck_assert_ptr_null(m4f_unescape("a%zz", 4, 0));
	ck_assert_ptr_null(m4f_unescape("a\0b", 3, 0));
	/* Only len bytes are read. */
	s = m4f_unescape("ab%41", 2, 0);
	ck_assert_str_eq(s, "ab");
	free(s);
}
END_TEST

START_TEST(escape)
{
	char *s, *u;

	s = m4f_escape_path("news/a b/%x/ü.ts~");
	ck_assert_str_eq(s, "news/a%20b/%25x/%C3%BC.ts~");
	u = m4f_unescape(s, strlen(s), 0);
	ck_assert_str_eq(u, "news/a b/%x/ü.ts~");
	free(u);
	free(s);
}
END_TEST

START_TEST(path_limits)
{
	char name[300], *p;
	size_t n = M4F_PATH_MAX + 1, i;

	memset(name, 'a', sizeof(name));
	ck_assert_int_eq(m4f_name_check(name, 255), 0);
	errno = 0;
	ck_assert_int_eq(m4f_name_check(name, 256), -1);
	ck_assert_int_eq(errno, ENAMETOOLONG);

	/* 4096 bytes in 100-byte components is fine, 4097 is not. */
	p = malloc(n + 1);
	for (i = 0; i < n; i++)
		p[i] = (i % 101 == 100) ? '/' : 'b';
	p[M4F_PATH_MAX] = '\0';
	if (p[M4F_PATH_MAX - 1] == '/')
		p[M4F_PATH_MAX - 1] = 'b';
	ck_assert_int_eq(m4f_path_check(p), 0);
	p[M4F_PATH_MAX] = 'b';
	p[n] = '\0';
	errno = 0;
	ck_assert_int_eq(m4f_path_check(p), -1);
	ck_assert_int_eq(errno, ENAMETOOLONG);

	/* M4F_DEPTH_MAX components are fine, one more is not. */
	for (i = 0; i < M4F_DEPTH_MAX; i++)
		memcpy(p + 2 * i, "d/", 2);
	p[2 * M4F_DEPTH_MAX - 1] = '\0';
	ck_assert_int_eq(m4f_path_check(p), 0);
	p[2 * M4F_DEPTH_MAX - 1] = '/';
	memcpy(p + 2 * M4F_DEPTH_MAX, "f", 2);
	errno = 0;
	ck_assert_int_eq(m4f_path_check(p), -1);
	ck_assert_int_eq(errno, E2BIG);
	free(p);
}
END_TEST

/* What the origin sends: unknown hashes as null, links as links. */
START_TEST(listing_encode_null_and_link)
{
	struct m4f_entry e[3] = {
		{ .name = "a.ts", .type = M4F_FILE, .size = 7, .mtime = 1 },
		{ .name = "b.ts", .type = M4F_FILE, .size = 8, .mtime = 2,
		  .sha256 = SHA },
		{ .name = "news2", .type = M4F_LINK, .mtime = 3,
		  .target = "news" },
	};
	struct m4f_listing l = { .path = "/storage", .entries = e, .n = 3 };
	struct m4f_event ev = { .seq = 9, .op = M4F_ADD, .e = e[2] };
	struct m4f_feed f = { .epoch = "5f1c2a9e0b7d4c31", .seq = 9,
	    .events = &ev, .n = 1 };
	char *s;

	s = m4f_listing_encode(&l);
	ck_assert_ptr_nonnull(s);
	ck_assert_ptr_nonnull(strstr(s, "{\"name\":\"a.ts\",\"type\":\"f\","
	    "\"size\":7,\"mtime\":1,\"sha256\":null}"));
	ck_assert_ptr_nonnull(strstr(s, "\"sha256\":\"" SHA "\"}"));
	ck_assert_ptr_nonnull(strstr(s, "{\"name\":\"news2\",\"type\":\"l\","
	    "\"mtime\":3,\"target\":\"news\"}"));
	free(s);
	s = m4f_feed_encode(&f);
	ck_assert_ptr_nonnull(s);
	ck_assert_ptr_nonnull(strstr(s, "\"op\":\"add\",\"name\":\"news2\","
	    "\"type\":\"l\",\"mtime\":3,\"target\":\"news\"}"));
	free(s);
	/* A link without its text cannot be encoded. */
	e[2].target = NULL;
	ck_assert_ptr_null(m4f_listing_encode(&l));
}
END_TEST

START_TEST(listing_large)
{
	struct m4f_listing l = { .path = "/storage" }, *d;
	char *s;
	size_t i;

	l.n = 20000;
	l.entries = calloc(l.n, sizeof(*l.entries));
	for (i = 0; i < l.n; i++) {
		if (asprintf(&l.entries[i].name, "d/%06zu.ts", i) < 0)
			ck_abort();
		l.entries[i].type = M4F_FILE;
		l.entries[i].size = i;
		strcpy(l.entries[i].sha256, SHA);
	}
	s = m4f_listing_encode(&l);
	d = dec_list(s, 1);
	ck_assert_ptr_nonnull(d);
	ck_assert_uint_eq(d->n, l.n);
	ck_assert_str_eq(d->entries[19999].name, "d/019999.ts");
	m4f_listing_free(d);
	free(s);
	for (i = 0; i < l.n; i++)
		free(l.entries[i].name);
	free(l.entries);
}
END_TEST

START_TEST(header_value)
{
	static const char line[] = "Repr-Digest:  sha-256=:AAAA=: \r\n";
	char v[64];

	ck_assert_int_eq(m4f_header_value(line, strlen(line), "repr-digest",
	    v, sizeof(v)), 1);
	ck_assert_str_eq(v, "sha-256=:AAAA=:");
	ck_assert_int_eq(m4f_header_value(line, strlen(line), "Repr",
	    v, sizeof(v)), 0);
	ck_assert_int_eq(m4f_header_value(line, strlen(line), "Repr-Digest",
	    v, 8), 0);
	ck_assert_int_eq(m4f_header_value("X: \r\n", 5, "x", v,
	    sizeof(v)), 1);
	ck_assert_str_eq(v, "");
}
END_TEST

static Suite *
m4f_suite(void)
{
	Suite *s = suite_create("m4f");
	TCase *core = tcase_create("core"), *lim = tcase_create("limits");

	tcase_add_test(core, sizes_parse);
	tcase_add_test(core, name_valid);
	tcase_add_test(core, body_digest);
	tcase_add_test(core, name_invalid);
	tcase_add_test(core, path_valid);
	tcase_add_test(core, path_invalid);
	tcase_add_test(core, hidden);
	tcase_add_test(core, sign_roundtrip);
	tcase_add_test(core, sign_known_vector);
	tcase_add_test(core, auth_wrong_key);
	tcase_add_test(core, auth_replay);
	tcase_add_test(core, auth_malformed);
	tcase_add_test(core, listing_roundtrip);
	tcase_add_test(core, listing_empty_last_page);
	tcase_add_test(core, listing_null_sha);
	tcase_add_test(core, listing_links);
	tcase_add_test(core, digests_parse);
	tcase_add_test(core, listing_hostile_names);
	tcase_add_test(core, listing_bad_types);
	tcase_add_test(core, listing_bad_documents);
	tcase_add_test(core, listing_err_text);
	tcase_add_test(core, feed_roundtrip);
	tcase_add_test(core, listing_encode_null_and_link);
	tcase_add_test(core, feed_bad);
	tcase_add_test(core, unescape);
	tcase_add_test(core, escape);
	tcase_add_test(core, header_value);
	tcase_add_test(lim, auth_clock);
	tcase_add_test(lim, auth_header_nospace);
	tcase_add_test(lim, numbers);
	tcase_add_test(lim, path_limits);
	tcase_add_test(lim, listing_large);
	suite_add_tcase(s, core);
	suite_add_tcase(s, lim);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(m4f_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
