#include <stdint.h>

#include "bitmap.h"

uint64_t
bitmap_nblocks(uint64_t size, uint32_t bs)
{
	return size / bs + (size % bs != 0);
}

size_t
bitmap_bytes(uint64_t nblocks)
{
	return (size_t)(nblocks / 8 + (nblocks % 8 != 0));
}

uint64_t
bitmap_block_len(uint64_t size, uint32_t bs, uint64_t i)
{
	uint64_t n = bitmap_nblocks(size, bs);

	if (i >= n)
		return 0;
	if (i + 1 < n)
		return bs;
	return size - i * (uint64_t)bs;
}

int
bitmap_test(const uint8_t *b, uint64_t i)
{
	return (b[i / 8] >> (i % 8)) & 1;
}

void
bitmap_set(uint8_t *b, uint64_t i)
{
	b[i / 8] |= (uint8_t)(1u << (i % 8));
}

uint64_t
bitmap_count(const uint8_t *b, uint64_t nblocks)
{
	uint64_t i, n = 0;

	for (i = 0; i < nblocks / 8; i++)
		n += (uint64_t)__builtin_popcount(b[i]);
	for (i = nblocks / 8 * 8; i < nblocks; i++)
		n += (uint64_t)bitmap_test(b, i);
	return n;
}

uint64_t
bitmap_have(const uint8_t *b, uint64_t size, uint32_t bs)
{
	uint64_t n = bitmap_nblocks(size, bs), c;

	if (n == 0)
		return 0;
	/* Every set block is full except possibly the last one. */
	c = bitmap_count(b, n - 1) * bs;
	if (bitmap_test(b, n - 1))
		c += bitmap_block_len(size, bs, n - 1);
	return c;
}

int
bitmap_range(const uint8_t *b, uint64_t first, uint64_t last,
    uint64_t *missing)
{
	uint64_t i;

	for (i = first; i <= last && i >= first; i++) {
		/* Skip whole bytes of set bits. */
		if (i % 8 == 0 && i + 7 <= last && b[i / 8] == 0xff) {
			i += 7;
			continue;
		}
		if (!bitmap_test(b, i)) {
			if (missing != NULL)
				*missing = i;
			return 0;
		}
	}
	return 1;
}
