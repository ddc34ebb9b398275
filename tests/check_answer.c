#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "answer.h"

/* SHA-256("hello"), and its field value as RFC 9530 writes it. */
static const char hello_field[] =
    "sha-256=:LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=:";

static void
sha(const char *s, uint8_t md[32])
{
	unsigned int n;

	EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL);
}

START_TEST(t_digest_format_parse)
{
	uint8_t md[32], back[32];
	char buf[ANSWER_DIGEST_LEN];

	sha("hello", md);
	answer_digest_format(md, buf);
	ck_assert_str_eq(buf, hello_field);
	ck_assert_int_eq(answer_digest_parse(buf, back), 0);
	ck_assert_mem_eq(md, back, 32);
	/* Other algorithms and white space around members are skipped. */
	ck_assert_int_eq(answer_digest_parse("sha-512=:AAAA:, "
	    "sha-256=:LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=: ", back),
	    0);
	ck_assert_mem_eq(md, back, 32);
}
END_TEST

START_TEST(t_digest_bad)
{
	static const char *bad[] = {
		"", " ", ",", "sha-256", "sha-256=", "sha-256=::",
		"sha-512=:LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=:",
		"sha-256=LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=",
		"sha-256=:LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ:",
		"sha-256=:LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ==:",
		"sha-256=:LPJNul-wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=:",
		/* not canonical: the last character's spare bits set */
		"sha-256=:LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCR=:",
		"SHA-256=:LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=:",
		"sha-256=:LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=:x",
		"a=1,,sha-256=:LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=:",
		NULL
	};
	uint8_t md[32];
	size_t i;

	ck_assert_int_eq(answer_digest_parse(NULL, md), -1);
	for (i = 0; bad[i] != NULL; i++) {
		errno = 0;
		ck_assert_msg(answer_digest_parse(bad[i], md) == -1,
		    "accepted '%s'", bad[i]);
		ck_assert_int_eq(errno, EINVAL);
	}
}
END_TEST

/* The value openssl dgst -hmac gives for the same message. */
START_TEST(t_sign_vector)
{
	char reqsig[65], hex[65];

	memset(reqsig, 'a', 64);
	reqsig[64] = '\0';
	ck_assert_int_eq(answer_sign("k3y", 3, reqsig, 206, "bytes 0-9/100",
	    "sha-256=:RBNvo1WzZ4oRRq0W9+hknpT7T8If536DEMBg9hyq/4o=:", hex), 0);
	ck_assert_str_eq(hex,
	    "d77e65ae547b7e887afd004c0909af9693b2e13b7e8850cedfaff8aa00cd0a47");
}
END_TEST

START_TEST(t_check)
{
	const char *d = hello_field;
	char hex[65];

	ck_assert_int_eq(answer_sign("key", 3, "r1", 200, NULL, d, hex), 0);
	ck_assert_int_eq(answer_check("key", 3, "r1", 200, "", d, hex), 0);
	/* Anything else that changes is refused. */
	ck_assert_int_eq(answer_check("kez", 3, "r1", 200, NULL, d, hex), -1);
	ck_assert_int_eq(errno, EACCES);
	ck_assert_int_eq(answer_check("key", 3, "r2", 200, NULL, d, hex), -1);
	ck_assert_int_eq(answer_check("key", 3, "r1", 206, NULL, d, hex), -1);
	ck_assert_int_eq(answer_check("key", 3, "r1", 200, "bytes 0-1/2", d,
	    hex), -1);
	ck_assert_int_eq(answer_check("key", 3, "r1", 200, NULL, "", hex), -1);
	ck_assert_int_eq(errno, EACCES);
	ck_assert_int_eq(answer_check("key", 3, "r1", 200, NULL, d, NULL), -1);
	ck_assert_int_eq(errno, EBADMSG);
	ck_assert_int_eq(answer_check("key", 3, "r1", 200, NULL, d, "abc"), -1);
	ck_assert_int_eq(errno, EBADMSG);
	ck_assert_int_eq(answer_sign("key", 3, NULL, 200, NULL, d, hex), -1);
	ck_assert_int_eq(answer_sign("key", 3, "r1", 99, NULL, d, hex), -1);
	ck_assert_int_eq(errno, EINVAL);
}
END_TEST

static Suite *
answer_suite(void)
{
	Suite *s = suite_create("answer");
	TCase *core = tcase_create("core"), *lim = tcase_create("limits");

	tcase_add_test(core, t_digest_format_parse);
	tcase_add_test(core, t_sign_vector);
	tcase_add_test(core, t_check);
	tcase_add_test(lim, t_digest_bad);
	suite_add_tcase(s, core);
	suite_add_tcase(s, lim);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(answer_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
