#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include <jansson.h>

#include "jsonget.h"

/* The members every case reads: each type once, and an absent key. */
static json_t *
doc(void)
{
	json_t *o = json_loads("{\"n\": 42, \"zero\": 0, \"neg\": -1, "
	    "\"real\": 1.0, \"null\": null, \"t\": true, \"f\": false, "
	    "\"s\": \"abc\", \"empty\": \"\", \"nul\": \"a\\u0000b\", "
	    "\"obj\": {}, \"arr\": [1]}", JSON_ALLOW_NUL, NULL);

	ck_assert_ptr_nonnull(o);
	return o;
}

START_TEST(t_uint)
{
	json_t *o = doc();
	uint64_t v = 7;

	ck_assert_int_eq(jsonget_uint(o, "n", UINT64_MAX, &v), 1);
	ck_assert_uint_eq(v, 42);
	ck_assert_int_eq(jsonget_uint(o, "zero", 0, &v), 1);
	ck_assert_uint_eq(v, 0);
	/* Absent and null store nothing. */
	v = 7;
	ck_assert_int_eq(jsonget_uint(o, "missing", UINT64_MAX, &v), 0);
	ck_assert_int_eq(jsonget_uint(o, "null", UINT64_MAX, &v), 0);
	ck_assert_uint_eq(v, 7);
	ck_assert_int_eq(jsonget_uint(NULL, "n", UINT64_MAX, &v), 0);
	ck_assert_int_eq(jsonget_uint(json_object_get(o, "arr"), "n",
	    UINT64_MAX, &v), 0);
	json_decref(o);
}
END_TEST

START_TEST(t_bool_str)
{
	json_t *o = doc();
	const char *s = NULL;
	int b = 5;

	ck_assert_int_eq(jsonget_bool(o, "t", &b), 1);
	ck_assert_int_eq(b, 1);
	ck_assert_int_eq(jsonget_bool(o, "f", &b), 1);
	ck_assert_int_eq(b, 0);
	b = 5;
	ck_assert_int_eq(jsonget_bool(o, "missing", &b), 0);
	ck_assert_int_eq(jsonget_bool(o, "null", &b), 0);
	ck_assert_int_eq(b, 5);

	ck_assert_int_eq(jsonget_str(o, "s", &s), 1);
	ck_assert_str_eq(s, "abc");
	ck_assert_int_eq(jsonget_str(o, "empty", &s), 1);
	ck_assert_str_eq(s, "");
	s = NULL;
	ck_assert_int_eq(jsonget_str(o, "missing", &s), 0);
	ck_assert_int_eq(jsonget_str(o, "null", &s), 0);
	ck_assert_ptr_null(s);
	json_decref(o);
}
END_TEST

/* Wrong types and values out of range are refused, and store nothing. */
START_TEST(t_bad)
{
	static const char *const notuint[] = {
		"neg", "real", "t", "s", "obj", "arr", NULL
	};
	static const char *const notbool[] = {
		"n", "zero", "s", "obj", NULL
	};
	static const char *const notstr[] = {
		"nul", "n", "t", "obj", "arr", NULL
	};
	json_t *o = doc();
	const char *s = NULL;
	uint64_t v = 7;
	size_t i;
	int b = 5;

	for (i = 0; notuint[i] != NULL; i++)
		ck_assert_msg(jsonget_uint(o, notuint[i], UINT64_MAX, &v) ==
		    -1, "accepted %s", notuint[i]);
	ck_assert_int_eq(jsonget_uint(o, "n", 41, &v), -1);
	ck_assert_uint_eq(v, 7);
	for (i = 0; notbool[i] != NULL; i++)
		ck_assert_msg(jsonget_bool(o, notbool[i], &b) == -1,
		    "accepted %s", notbool[i]);
	ck_assert_int_eq(b, 5);
	for (i = 0; notstr[i] != NULL; i++)
		ck_assert_msg(jsonget_str(o, notstr[i], &s) == -1,
		    "accepted %s", notstr[i]);
	ck_assert_ptr_null(s);
	json_decref(o);
}
END_TEST

/* The ends of the integer range: INT64_MAX is the largest jansson reads. */
START_TEST(t_range)
{
	json_t *o = json_loads("{\"max\": 9223372036854775807, "
	    "\"min\": -9223372036854775808, \"p53\": 9007199254740992, "
	    "\"p53p1\": 9007199254740993}", 0, NULL);
	uint64_t v;

	ck_assert_ptr_nonnull(o);
	ck_assert_int_eq(jsonget_uint(o, "max", UINT64_MAX, &v), 1);
	ck_assert_uint_eq(v, INT64_MAX);
	ck_assert_int_eq(jsonget_uint(o, "min", UINT64_MAX, &v), -1);
	ck_assert_int_eq(jsonget_uint(o, "p53", (uint64_t)1 << 53, &v), 1);
	ck_assert_uint_eq(v, (uint64_t)1 << 53);
	ck_assert_int_eq(jsonget_uint(o, "p53p1", (uint64_t)1 << 53, &v), -1);
	json_decref(o);
}
END_TEST

static Suite *
jsonget_suite(void)
{
	Suite *s = suite_create("jsonget");
	TCase *core = tcase_create("core"), *lim = tcase_create("limits");

	tcase_add_test(core, t_uint);
	tcase_add_test(core, t_bool_str);
	tcase_add_test(lim, t_bad);
	tcase_add_test(lim, t_range);
	suite_add_tcase(s, core);
	suite_add_tcase(s, lim);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(jsonget_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
