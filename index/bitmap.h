/*
 * bitmap: which fixed-size blocks of a file are present. A file of size
 * bytes in blocks of bs bytes has ceil(size / bs) blocks, the last one
 * possibly short; an empty file has none. Bit i is byte i / 8, bit i % 8.
 * Plain functions on caller-owned memory; no locking.
 */
#ifndef DVRFS_BITMAP_H
#define DVRFS_BITMAP_H

#include <stddef.h>
#include <stdint.h>

/* Number of blocks of a file of size bytes. bs must not be 0. */
uint64_t bitmap_nblocks(uint64_t size, uint32_t bs);
/* Bytes needed for the bitmap of nblocks blocks. */
size_t	bitmap_bytes(uint64_t nblocks);
/* Length of block i of a file of size bytes (0 past the end). */
uint64_t bitmap_block_len(uint64_t size, uint32_t bs, uint64_t i);

int	bitmap_test(const uint8_t *, uint64_t i);
void	bitmap_set(uint8_t *, uint64_t i);
/* Number of set bits among the first nblocks. */
uint64_t bitmap_count(const uint8_t *, uint64_t nblocks);
/* Bytes present of a file of size bytes: sum of the set blocks' lengths. */
uint64_t bitmap_have(const uint8_t *, uint64_t size, uint32_t bs);

/*
 * Are all blocks in [first, last] set? Returns 1, or 0 with *missing (when
 * not NULL) set to the first unset block number. first > last is 1.
 */
int	bitmap_range(const uint8_t *, uint64_t first, uint64_t last,
	    uint64_t *missing);

#endif
