#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bitmap.h"

START_TEST(t_nblocks)
{
	ck_assert_uint_eq(bitmap_nblocks(0, 4096), 0);
	ck_assert_uint_eq(bitmap_nblocks(1, 4096), 1);
	ck_assert_uint_eq(bitmap_nblocks(4096, 4096), 1);
	ck_assert_uint_eq(bitmap_nblocks(4097, 4096), 2);
	ck_assert_uint_eq(bitmap_nblocks(3 * 4096, 4096), 3);
	ck_assert_uint_eq(bitmap_bytes(0), 0);
	ck_assert_uint_eq(bitmap_bytes(1), 1);
	ck_assert_uint_eq(bitmap_bytes(8), 1);
	ck_assert_uint_eq(bitmap_bytes(9), 2);
	ck_assert_uint_eq(bitmap_block_len(0, 4096, 0), 0);
	ck_assert_uint_eq(bitmap_block_len(1, 4096, 0), 1);
	ck_assert_uint_eq(bitmap_block_len(8192, 4096, 1), 4096);
	ck_assert_uint_eq(bitmap_block_len(8192, 4096, 2), 0);
	ck_assert_uint_eq(bitmap_block_len(8193, 4096, 2), 1);
}
END_TEST

START_TEST(t_set_range)
{
	uint8_t b[4] = { 0 };
	uint64_t miss = 99;

	ck_assert_int_eq(bitmap_range(b, 0, 0, &miss), 0);
	ck_assert_uint_eq(miss, 0);
	bitmap_set(b, 0);
	bitmap_set(b, 1);
	bitmap_set(b, 3);
	ck_assert_int_eq(bitmap_range(b, 0, 1, NULL), 1);
	ck_assert_int_eq(bitmap_range(b, 0, 3, &miss), 0);
	ck_assert_uint_eq(miss, 2);
	ck_assert_int_eq(bitmap_range(b, 3, 3, NULL), 1);
	ck_assert_uint_eq(bitmap_count(b, 32), 3);
	/* have: 3 blocks of a 10-byte file in 4-byte blocks (last short). */
	memset(b, 0, sizeof(b));
	bitmap_set(b, 0);
	bitmap_set(b, 2);
	ck_assert_uint_eq(bitmap_have(b, 10, 4), 4 + 2);
	ck_assert_uint_eq(bitmap_have(b, 0, 4), 0);
}
END_TEST

START_TEST(t_full_bytes)
{
	uint8_t b[3];
	uint64_t miss = 0;

	memset(b, 0xff, sizeof(b));
	ck_assert_int_eq(bitmap_range(b, 0, 23, NULL), 1);
	b[2] = 0x7f;
	ck_assert_int_eq(bitmap_range(b, 0, 23, &miss), 0);
	ck_assert_uint_eq(miss, 23);
	ck_assert_int_eq(bitmap_range(b, 5, 22, NULL), 1);
	ck_assert_int_eq(bitmap_range(b, 5, 4, NULL), 1);
}
END_TEST

START_TEST(t_large)
{
	/* 5 GiB + 3 in 1 MiB blocks: 5121 blocks, the last 3 bytes. */
	uint64_t size = 5ULL * 1024 * 1024 * 1024 + 3, n;
	uint8_t *b;

	n = bitmap_nblocks(size, 1 << 20);
	ck_assert_uint_eq(n, 5121);
	ck_assert_uint_eq(bitmap_block_len(size, 1 << 20, 5120), 3);
	b = calloc(1, bitmap_bytes(n));
	bitmap_set(b, 5120);
	bitmap_set(b, 4096);
	ck_assert_uint_eq(bitmap_have(b, size, 1 << 20), (1 << 20) + 3);
	ck_assert_int_eq(bitmap_test(b, 4096), 1);
	ck_assert_int_eq(bitmap_test(b, 4097), 0);
	free(b);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("bitmap");
	TCase *core = tcase_create("core"), *limits = tcase_create("limits");

	tcase_add_test(core, t_set_range);
	tcase_add_test(core, t_full_bytes);
	tcase_add_test(limits, t_nblocks);
	tcase_add_test(limits, t_large);
	suite_add_tcase(s, core);
	suite_add_tcase(s, limits);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(suite());
	int nf;

	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? 0 : 1;
}
