/*
 * tswriter: synthetic MPEG-TS segments. See tswriter.h.
 *
 * The segment is produced in chunks: a chunk buffer is filled with PRNG
 * output 8 bytes at a time and then the 4-byte TS headers (and, at the
 * start of each PES, the adaptation field and PES header) are written
 * over it. That keeps the per-byte cost at one 64-bit PRNG step per 8
 * bytes and the system call count at one write() per chunk.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tswriter.h"

#define TSW_PID_PMT	0x100
#define TSW_PID_ES	0x101
#define TSW_STREAM_TYPE	0x06	/* PES private data */
#define TSW_STREAM_ID	0xbd	/* private_stream_1 */
#define TSW_FPS		25
#define TSW_CHUNK	4096	/* packets per write() */
#define TSW_PTS_MASK	((UINT64_C(1) << 33) - 1)
/* The PCR runs this far (in 90 kHz ticks) ahead of the PTS. */
#define TSW_PCR_LEAD	9000

_Static_assert(TSW_PACKET % 4 == 0, "packets are written as 32-bit words");

struct tsw {
	size_t		 npackets;	/* in the whole segment */
	size_t		 nes;		/* payload packets: npackets - 2 */
	size_t		 nframes;	/* PES packets per segment */
	uint32_t	 dur_ms;
	uint8_t		 pat[TSW_PACKET];
	uint8_t		 pmt[TSW_PACKET];
	uint8_t		*buf;		/* TSW_CHUNK packets */
};

/* xoshiro256** (Blackman and Vigna, public domain), seeded by splitmix64. */
struct tsw_rng {
	uint64_t s[4];
};

static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static void
rng_seed(struct tsw_rng *r, uint64_t seed)
{
	int i;

	for (i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

static inline uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static inline uint64_t
rng_next(struct tsw_rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

static void
rng_fill(struct tsw_rng *r, uint8_t *p, size_t len)
{
	uint64_t v;
	size_t i;

	for (i = 0; i + 8 <= len; i += 8) {
		v = rng_next(r);
		memcpy(p + i, &v, 8);
	}
	if (i < len) {
		v = rng_next(r);
		memcpy(p + i, &v, len - i);
	}
}

/* CRC-32/MPEG-2: polynomial 0x04c11db7, MSB first, no final xor. */
static uint32_t
crc32_mpeg(const uint8_t *p, size_t len)
{
	uint32_t crc = 0xffffffff;
	size_t i;
	int b;

	for (i = 0; i < len; i++) {
		crc ^= (uint32_t)p[i] << 24;
		for (b = 0; b < 8; b++)
			crc = (crc & 0x80000000) ? (crc << 1) ^ 0x04c11db7 :
			    crc << 1;
	}
	return crc;
}

/*
 * Puts a PSI section (starting with table_id) into a PUSI packet on pid,
 * appends its CRC and pads with 0xff. len is the section without CRC.
 */
static void
psi_packet(uint8_t *pkt, unsigned pid, const uint8_t *sec, size_t len)
{
	uint32_t crc;

	memset(pkt, 0xff, TSW_PACKET);
	pkt[0] = 0x47;
	pkt[1] = 0x40 | (uint8_t)(pid >> 8);
	pkt[2] = (uint8_t)pid;
	pkt[3] = 0x10;
	pkt[4] = 0;		/* pointer_field */
	memcpy(pkt + 5, sec, len);
	crc = crc32_mpeg(sec, len);
	pkt[5 + len] = (uint8_t)(crc >> 24);
	pkt[6 + len] = (uint8_t)(crc >> 16);
	pkt[7 + len] = (uint8_t)(crc >> 8);
	pkt[8 + len] = (uint8_t)crc;
}

static void
build_psi(struct tsw *w)
{
	const uint8_t pat[] = {
		0x00, 0xb0, 13, 0x00, 0x01, 0xc1, 0x00, 0x00,
		0x00, 0x01, 0xe0 | (TSW_PID_PMT >> 8), TSW_PID_PMT & 0xff,
	};
	const uint8_t pmt[] = {
		0x02, 0xb0, 18, 0x00, 0x01, 0xc1, 0x00, 0x00,
		0xe0 | (TSW_PID_ES >> 8), TSW_PID_ES & 0xff, 0xf0, 0x00,
		TSW_STREAM_TYPE, 0xe0 | (TSW_PID_ES >> 8), TSW_PID_ES & 0xff,
		0xf0, 0x00,
	};

	psi_packet(w->pat, 0, pat, sizeof(pat));
	psi_packet(w->pmt, TSW_PID_PMT, pmt, sizeof(pmt));
}

struct tsw *
tsw_new(size_t npackets, uint32_t dur_ms)
{
	struct tsw *w;

	if (npackets < TSW_MIN_PACKETS || dur_ms == 0 ||
	    npackets > SIZE_MAX / TSW_PACKET) {
		errno = EINVAL;
		return NULL;
	}
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	if ((w->buf = malloc((size_t)TSW_CHUNK * TSW_PACKET)) == NULL) {
		free(w);
		return NULL;
	}
	w->npackets = npackets;
	w->nes = npackets - 2;
	w->dur_ms = dur_ms;
	w->nframes = ((uint64_t)dur_ms * TSW_FPS + 999) / 1000;
	if (w->nframes == 0)
		w->nframes = 1;
	if (w->nframes > w->nes)
		w->nframes = w->nes;
	build_psi(w);
	return w;
}

void
tsw_free(struct tsw *w)
{
	if (w == NULL)
		return;
	free(w->buf);
	free(w);
}

static void
put_ts(uint8_t *p, unsigned prefix, uint64_t ts)
{
	p[0] = (uint8_t)(prefix << 4 | ((ts >> 29) & 0x0e) | 1);
	p[1] = (uint8_t)(ts >> 22);
	p[2] = (uint8_t)(((ts >> 14) & 0xfe) | 1);
	p[3] = (uint8_t)(ts >> 7);
	p[4] = (uint8_t)(((ts << 1) & 0xfe) | 1);
}

/*
 * Writes the first packet header of a PES over pkt: adaptation field
 * with the PCR (and the random access flag on the first PES of the
 * segment), then a PES header with the PTS. The rest is payload.
 */
static void
pes_start(uint8_t *pkt, unsigned cc, uint64_t pts, int first)
{
	uint64_t pcr = (pts - TSW_PCR_LEAD) & TSW_PTS_MASK;

	pkt[0] = 0x47;
	pkt[1] = 0x40 | (TSW_PID_ES >> 8);
	pkt[2] = TSW_PID_ES & 0xff;
	pkt[3] = 0x30 | (cc & 0x0f);
	pkt[4] = 7;			/* adaptation_field_length */
	pkt[5] = first ? 0x50 : 0x10;	/* random access, PCR flag */
	pkt[6] = (uint8_t)(pcr >> 25);
	pkt[7] = (uint8_t)(pcr >> 17);
	pkt[8] = (uint8_t)(pcr >> 9);
	pkt[9] = (uint8_t)(pcr >> 1);
	pkt[10] = (uint8_t)((pcr & 1) << 7 | 0x7e);
	pkt[11] = 0;
	/* PES: unbounded length, ends at the next payload_unit_start. */
	pkt[12] = 0x00;
	pkt[13] = 0x00;
	pkt[14] = 0x01;
	pkt[15] = TSW_STREAM_ID;
	pkt[16] = 0x00;
	pkt[17] = 0x00;
	pkt[18] = 0x80;			/* marker bits */
	pkt[19] = 0x80;			/* PTS only */
	pkt[20] = 5;			/* PES_header_data_length */
	put_ts(pkt + 21, 2, pts);
}

static int
write_all(int fd, const uint8_t *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
tsw_write(struct tsw *w, int fd, uint64_t start_ms, uint64_t seq,
    uint64_t seed)
{
	struct tsw_rng rng;
	uint64_t pts0 = (start_ms * 90) & TSW_PTS_MASK;
	uint64_t cc0 = seq * w->nes;
	size_t per = w->nes / w->nframes, extra = w->nes % w->nframes;
	size_t frame = 0, left_in_frame = 0, j = 0, n, k;
	uint8_t *pkt;

	rng_seed(&rng, seed);
	while (j < w->nes + 2) {
		n = w->nes + 2 - j;
		if (n > TSW_CHUNK)
			n = TSW_CHUNK;
		rng_fill(&rng, w->buf, n * TSW_PACKET);
		for (k = 0; k < n; k++, j++) {
			pkt = w->buf + k * TSW_PACKET;
			if (j == 0) {
				memcpy(pkt, w->pat, TSW_PACKET);
				pkt[3] |= seq & 0x0f;
				continue;
			}
			if (j == 1) {
				memcpy(pkt, w->pmt, TSW_PACKET);
				pkt[3] |= seq & 0x0f;
				continue;
			}
			unsigned cc = (unsigned)((cc0 + j - 2) & 0x0f);
			if (left_in_frame == 0) {
				uint64_t pts = pts0 + (uint64_t)frame *
				    w->dur_ms * 90 / w->nframes;
				pes_start(pkt, cc, pts & TSW_PTS_MASK,
				    frame == 0);
				left_in_frame = per + (frame < extra);
				frame++;
			} else {
				pkt[0] = 0x47;
				pkt[1] = TSW_PID_ES >> 8;
				pkt[2] = TSW_PID_ES & 0xff;
				pkt[3] = 0x10 | cc;
			}
			left_in_frame--;
		}
		if (write_all(fd, w->buf, n * TSW_PACKET) == -1)
			return -1;
	}
	return 0;
}
