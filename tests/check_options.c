#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "options.h"

static char err[512];
static struct dvrfs_opts o;

/* Parses "prog SPEC /mnt -o OPTS"; returns what opts_parse returns. */
static int
parse(const char *spec, const char *opts)
{
	char *argv[] = { "mount.dvrfs", (char *)spec, "/mnt", "-o",
	    (char *)opts, NULL };

	opts_clear(&o);
	err[0] = '\0';
	return opts_parse(&o, opts ? 5 : 3, argv, err, sizeof(err));
}

START_TEST(spec_forms)
{
	ck_assert_int_eq(parse("primary:/storage", "store=/s"), 0);
	ck_assert_str_eq(o.host, "primary");
	ck_assert_str_eq(o.export, "/storage");
	ck_assert_int_eq(o.port, 80);
	ck_assert_int_eq(o.tls, 0);

	ck_assert_int_eq(parse("m4f://10.0.0.1:8001/storage/", "store=/s"), 0);
	ck_assert_str_eq(o.host, "10.0.0.1");
	ck_assert_str_eq(o.export, "/storage");
	ck_assert_int_eq(o.port, 8001);

	ck_assert_int_eq(parse("m4fs://origin.example/a/b", "store=/s"), 0);
	ck_assert_int_eq(o.tls, 1);
	ck_assert_int_eq(o.port, 443);
	ck_assert_str_eq(o.export, "/a/b");

	ck_assert_int_eq(parse("[::1]:/storage", "store=/s,port=8001"), 0);
	ck_assert_str_eq(o.host, "::1");
	ck_assert_int_eq(o.port, 8001);

	ck_assert_int_eq(parse("m4f://[::1]:9/x", "store=/s"), 0);
	ck_assert_int_eq(o.port, 9);
}
END_TEST

START_TEST(defaults_and_options)
{
	ck_assert_int_eq(parse("h:/s", "store=/st,depth=30m,replicate,"
	    "streams=news,sport,replication_port=8002,bwlimit=2M,"
	    "transfers=8,readahead=16,timeout=5,cluster_key=abc,_netdev,rw,"
	    "nofail,"
	    "x-systemd.automount,defaults"), 0);
	ck_assert_str_eq(o.store, "/st");
	ck_assert_int_eq(o.depth, 1800);
	ck_assert_int_eq(o.replicate, 1);
	ck_assert_uint_eq(o.nstreams, 2);
	ck_assert_str_eq(o.streams[0], "news");
	ck_assert_str_eq(o.streams[1], "sport");
	ck_assert_ptr_null(o.streams[2]);
	ck_assert_int_eq(o.replication_port, 8002);
	ck_assert_uint_eq(o.bwlimit, 2u << 20);
	ck_assert_int_eq(o.transfers, 8);
	ck_assert_int_eq(o.readahead, 16);
	ck_assert_int_eq(o.timeout, 5);
	ck_assert_str_eq(o.key, "abc");
	ck_assert_uint_eq(o.keylen, 3);
	ck_assert_int_eq(o.allow_other, 1);

	ck_assert_int_eq(parse("h:/s", "store=/st"), 0);
	ck_assert_int_eq(o.depth, 7 * 86400);
	ck_assert_int_eq(o.timeout, 10);
	ck_assert_int_eq(o.transfers, 4);
	ck_assert_int_eq(o.readahead, 8);
	ck_assert_int_eq(o.replicate, 0);
	ck_assert_ptr_null(o.streams);

	ck_assert_int_eq(parse("h:/s", "replicate,streams=a+b+c,store=/x"), 0);
	ck_assert_uint_eq(o.nstreams, 3);
	ck_assert_str_eq(o.streams[2], "c");
}
END_TEST

/* streams=NAME:DEPTH, as Flussonic configures a depth per stream. */
START_TEST(stream_depths)
{
	ck_assert_int_eq(parse("h:/s", "store=/x,replicate,depth=1h,"
	    "streams=news:30d+sport:7d+weather"), 0);
	ck_assert_uint_eq(o.nstreams, 3);
	ck_assert_str_eq(o.streams[0], "news");
	ck_assert_str_eq(o.streams[1], "sport");
	ck_assert_str_eq(o.streams[2], "weather");
	ck_assert_ptr_null(o.streams[3]);
	ck_assert_int_eq(o.stream_depth[0], 30 * 86400);
	ck_assert_int_eq(o.stream_depth[1], 7 * 86400);
	ck_assert_int_eq(o.stream_depth[2], 0);
	ck_assert_int_eq(opts_stream_depth(&o, "news"), 30 * 86400);
	ck_assert_int_eq(opts_stream_depth(&o, "weather"), 3600);
	ck_assert_int_eq(opts_stream_depth(&o, "other"), 3600);
	ck_assert_int_eq(opts_stream_wanted(&o, "sport", 5), 1);
	ck_assert_int_eq(opts_stream_wanted(&o, "sportx", 6), 0);

	/* The comma form, and a+b with depths. */
	ck_assert_int_eq(parse("h:/s", "store=/x,replicate,streams=a:10m,"
	    "b:30m,c,depth=2h"), 0);
	ck_assert_uint_eq(o.nstreams, 3);
	ck_assert_int_eq(opts_stream_depth(&o, "a"), 600);
	ck_assert_int_eq(opts_stream_depth(&o, "b"), 1800);
	ck_assert_int_eq(opts_stream_depth(&o, "c"), 7200);

	ck_assert_int_eq(parse("h:/s", "store=/x"), 0);
	ck_assert_int_eq(opts_stream_wanted(&o, "any", 3), 1);
	ck_assert_int_eq(opts_stream_depth(&o, "any"), 7 * 86400);
}
END_TEST

/* dvrfs-restore's -o: the options that apply to it, no others. */
START_TEST(restore_vocabulary)
{
	opts_clear(&o);
	opts_init(&o);
	ck_assert_int_eq(opts_spec(&o, "m4f://peer:8001/storage", err,
	    sizeof(err)), 0);
	ck_assert_int_eq(opts_list(&o, "depth=1h,streams=a:5m+b,port=9,"
	    "replication_port=8002,cluster_key=k,bwlimit=1M,transfers=2,"
	    "timeout=3,cafile=/ca", OPTS_RESTORE, 0, err, sizeof(err)), 0);
	opts_default_port(&o);
	ck_assert_int_eq(o.port, 9);
	ck_assert_int_eq(o.depth, 3600);
	ck_assert_int_eq(opts_stream_depth(&o, "a"), 300);
	ck_assert_int_eq(o.replication_port, 8002);
	ck_assert_int_eq(o.transfers, 2);
	ck_assert_int_eq(o.timeout, 3);
	ck_assert_uint_eq(o.bwlimit, 1u << 20);
	ck_assert_str_eq(o.cafile, "/ca");

	ck_assert_int_eq(opts_list(&o, "store=/x", OPTS_RESTORE, 0, err,
	    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "not an option of dvrfs-restore"));
	ck_assert_int_eq(opts_list(&o, "replicate", OPTS_RESTORE, 0, err,
	    sizeof(err)), -1);
	ck_assert_int_eq(opts_list(&o, "_netdev", OPTS_RESTORE, 1, err,
	    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "_netdev"));
	ck_assert_int_eq(opts_list(&o, "depth=0", OPTS_RESTORE, 0, err,
	    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "depth=0"));
	opts_clear(&o);
}
END_TEST

START_TEST(key_file)
{
	char path[] = "/tmp/dvrfs-key.XXXXXX";
	char opt[128];
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "s3cret\n", 7), 7);
	close(fd);
	snprintf(opt, sizeof(opt), "store=/s,cluster_key_file=%s", path);
	ck_assert_int_eq(parse("h:/s", opt), 0);
	ck_assert_str_eq(o.key, "s3cret");
	ck_assert_uint_eq(o.keylen, 6);

	fd = open(path, O_WRONLY | O_TRUNC);
	ck_assert_int_eq(write(fd, "\n", 1), 1);
	close(fd);
	ck_assert_int_eq(parse("h:/s", opt), -1);
	ck_assert_ptr_nonnull(strstr(err, "empty"));
	unlink(path);
	ck_assert_int_eq(parse("h:/s", opt), -1);
	ck_assert_ptr_nonnull(strstr(err, "No such file"));
}
END_TEST

START_TEST(durations_and_sizes)
{
	int64_t d;
	uint64_t s;

	ck_assert_int_eq(opts_duration("90", &d), 0);
	ck_assert_int_eq(d, 90);
	ck_assert_int_eq(opts_duration("7d", &d), 0);
	ck_assert_int_eq(d, 604800);
	ck_assert_int_eq(opts_duration("2h", &d), 0);
	ck_assert_int_eq(d, 7200);
	ck_assert_int_eq(opts_duration("", &d), -1);
	ck_assert_int_eq(opts_duration("-1", &d), -1);
	ck_assert_int_eq(opts_duration("5x", &d), -1);
	ck_assert_int_eq(opts_duration("5dd", &d), -1);
	ck_assert_int_eq(opts_duration("99999999999999999999", &d), -1);
	ck_assert_int_eq(errno, ERANGE);
	ck_assert_int_eq(opts_duration("999999999999999999d", &d), -1);
	ck_assert_int_eq(errno, ERANGE);

	ck_assert_int_eq(opts_size("500k", &s), 0);
	ck_assert_uint_eq(s, 500 * 1024);
	ck_assert_int_eq(opts_size("2MiB", &s), 0);
	ck_assert_uint_eq(s, 2 << 20);
	ck_assert_int_eq(opts_size("1G", &s), 0);
	ck_assert_uint_eq(s, 1 << 30);
	ck_assert_int_eq(opts_size("1Q", &s), -1);
	ck_assert_int_eq(opts_size("k", &s), -1);
	ck_assert_int_eq(opts_size("99999999999999T", &s), -1);
}
END_TEST

/* Each bad command line fails with one line that names the culprit. */
START_TEST(bad_input)
{
	static const struct { const char *spec, *opts, *named; } bad[] = {
		{ "primary", "store=/s", "HOST:/PATH" },
		{ "primary:storage", "store=/s", "absolute" },
		{ ":/storage", "store=/s", "no host" },
		{ "http://h/s", "store=/s", "scheme" },
		{ "m4f://h:99999/s", "store=/s", "port" },
		{ "m4f://h:/s", "store=/s", "port" },
		{ "h:/s/../etc", "store=/s", "bad path" },
		{ "h;rm:/s", "store=/s", "host" },
		{ "h:/s", "", "store=" },
		{ "h:/s", "store=/s,port=0", "port=0" },
		{ "h:/s", "store=/s,port=http", "port=http" },
		{ "h:/s", "store=/s,depth=7w", "depth=7w" },
		{ "h:/s", "store=/s,depth=0", "depth=0" },
		{ "h:/s", "store=/s,timeout=0", "timeout=0" },
		{ "h:/s", "store=/s,transfers=65", "transfers=65" },
		{ "h:/s", "store=/s,readahead=65", "readahead=65" },
		{ "h:/s", "store=/s,readahead=-1", "readahead=-1" },
		{ "h:/s", "store=/s,bwlimit=fast", "bwlimit=fast" },
		{ "h:/s", "store=/s,bwlimit=10", "bwlimit=10" },
		{ "h:/s", "store=/s,block_size=3000", "block_size=3000" },
		{ "h:/s", "store=/s,bogus=1", "bogus=1" },
		{ "h:/s", "store=/s,frobnicate", "frobnicate" },
		{ "h:/s", "store=/s,replicate,streams=../x", "../x" },
		{ "h:/s", "store=/s,replicate,streams=a:7w", "depth of 'a'" },
		{ "h:/s", "store=/s,replicate,streams=a:", "depth of 'a'" },
		{ "h:/s", "store=/s,replicate,streams=a:0", "depth of 'a'" },
		{ "h:/s", "store=/s,replicate,streams=a:367d", "depth of 'a'" },
		{ "h:/s", "store=/s,replicate,streams=:5m", "bad stream name" },
		{ "h:/s", "store=/s,replicate,streams=a,b:1x", "depth of 'b'" },
		{ "h:/s", "store=/s,streams=a", "needs replicate" },
		{ "h:/s", "store=", "store=" },
		{ "h:/s", "store=/s,cluster_key=", "cluster_key" },
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(parse(bad[i].spec, bad[i].opts) == -1,
		    "accepted %s -o %s", bad[i].spec, bad[i].opts);
		ck_assert_msg(strstr(err, bad[i].named) != NULL,
		    "%s -o %s: '%s' does not name '%s'", bad[i].spec,
		    bad[i].opts, err, bad[i].named);
		ck_assert_ptr_null(strchr(err, '\n'));
	}
}
END_TEST

START_TEST(flags)
{
	char *argv[] = { "mount.dvrfs", "-s", "-f", "h:/s", "/mnt", "-o",
	    "store=/s,unknown_but_sloppy", "-n", "-v", NULL };
	char *few[] = { "mount.dvrfs", "h:/s", NULL };

	opts_clear(&o);
	ck_assert_int_eq(opts_parse(&o, 9, argv, err, sizeof(err)), 0);
	ck_assert_int_eq(o.foreground, 1);
	ck_assert_int_eq(o.verbose, 1);
	ck_assert_str_eq(o.mountpoint, "/mnt");
	opts_clear(&o);
	ck_assert_int_eq(opts_parse(&o, 2, few, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "usage");
}
END_TEST

START_TEST(long_values)
{
	char *big = malloc(10000);

	memset(big, 'a', 9999);
	big[9999] = '\0';
	memcpy(big, "store=/", 7);
	ck_assert_int_eq(parse("h:/s", big), 0);
	memcpy(big, "cluster_key=", 12);
	ck_assert_int_eq(parse("h:/s", big), -1);
	free(big);
}
END_TEST

static Suite *
options_suite(void)
{
	Suite *s = suite_create("options");
	TCase *core = tcase_create("core"), *limits = tcase_create("limits");

	tcase_add_test(core, spec_forms);
	tcase_add_test(core, defaults_and_options);
	tcase_add_test(core, key_file);
	tcase_add_test(core, stream_depths);
	tcase_add_test(core, restore_vocabulary);
	tcase_add_test(core, flags);
	tcase_add_test(limits, durations_and_sizes);
	tcase_add_test(limits, bad_input);
	tcase_add_test(limits, long_values);
	suite_add_tcase(s, core);
	suite_add_tcase(s, limits);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(options_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	opts_clear(&o);
	return failed == 0 ? 0 : 1;
}
