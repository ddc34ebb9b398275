/*
 * tswriter: synthetic MPEG-TS segments for dvr-fake.
 *
 * A segment is a whole number of 188-byte packets: one PAT, one PMT and
 * then a single elementary stream (PID 0x101, private data, stream type
 * 0x06) cut into 25 PES packets per second. Each PES carries a PTS, the
 * first TS packet of each PES carries the PCR, the continuity counters
 * continue from one segment to the next, and every payload byte comes
 * from a PRNG seeded by the caller, so the data is incompressible and the
 * same seed gives the same bytes.
 *
 * Functions returning int return 0 on success and -1 with errno set.
 */
#ifndef DVRFS_TSWRITER_H
#define DVRFS_TSWRITER_H

#include <stddef.h>
#include <stdint.h>

#define TSW_PACKET	188
/* PAT + PMT + at least two payload packets. */
#define TSW_MIN_PACKETS	4

struct tsw;

/*
 * A writer for segments of npackets packets (>= TSW_MIN_PACKETS) lasting
 * dur_ms milliseconds (> 0). Returns NULL with errno set (EINVAL, ENOMEM).
 * Free with tsw_free().
 */
struct tsw	*tsw_new(size_t npackets, uint32_t dur_ms);
void		 tsw_free(struct tsw *);

/*
 * Writes one segment to fd: start_ms is its start as milliseconds since
 * the epoch (it sets the PTS and PCR), seq its number in the stream (it
 * sets the continuity counters), seed selects the payload bytes. Writes
 * exactly npackets * 188 bytes or fails (short writes are retried).
 */
int		 tsw_write(struct tsw *, int fd, uint64_t start_ms, uint64_t seq,
		    uint64_t seed);

#endif
