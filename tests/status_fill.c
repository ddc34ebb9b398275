/*
 * status_fill STORE BASE: builds a store for tests/it_status.sh through
 * the store API, without a primary or a mount. Streams, segment times
 * relative to BASE (a unix time), sizes and which are complete:
 *
 *   news	20 segments at BASE + 2i, 1000 + i bytes, mtime = end;
 *		complete except i = 5, 6, 7 and 19 (the live edge);
 *		plus 3 complete segments at BASE - 7200 + 2i (outside a
 *		one-hour depth)
 *   sport	10 segments at BASE + 4i, 5000 bytes each, all complete
 *   extra	2 segments at BASE, BASE + 2, not complete
 *
 * Exits 0 when the store is written, 1 otherwise.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "store.h"

#define NSEG_MAX 64

struct seg {
	char		 path[128];
	int64_t		 t;
	size_t		 size;
	int		 complete;
	char		 sha[65];
	unsigned char	*data;
};

static struct seg segs[NSEG_MAX];
static size_t nsegs;

static void
hex(const unsigned char *d, size_t n, char *out)
{
	static const char x[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = x[d[i] >> 4];
		out[2 * i + 1] = x[d[i] & 15];
	}
	out[2 * n] = '\0';
}

static int
add(const char *stream, int64_t t, size_t size, int complete)
{
	struct seg *s = &segs[nsegs];
	unsigned char md[32];
	unsigned int mdlen;
	time_t tt = (time_t)t;
	struct tm tm;
	size_t i, n;

	if (nsegs == NSEG_MAX || gmtime_r(&tt, &tm) == NULL)
		return -1;
	n = (size_t)snprintf(s->path, sizeof(s->path), "%s/", stream);
	strftime(s->path + n, sizeof(s->path) - n, "%Y/%m/%d/%H/%M/%S.ts", &tm);
	s->t = t;
	s->size = size;
	s->complete = complete;
	if ((s->data = malloc(size)) == NULL)
		return -1;
	for (i = 0; i < size; i++)
		s->data[i] = (unsigned char)(i * 7 + (size_t)t + nsegs);
	if (EVP_Digest(s->data, size, md, &mdlen, EVP_sha256(), NULL) != 1)
		return -1;
	hex(md, 32, s->sha);
	nsegs++;
	return 0;
}

int
main(int argc, char **argv)
{
	struct store_remote v[NSEG_MAX];
	uint64_t ids[NSEG_MAX];
	struct store *st;
	int64_t base;
	size_t i;
	int rc = 1;

	if (argc != 3) {
		fprintf(stderr, "usage: status_fill STORE BASE\n");
		return 1;
	}
	base = strtoll(argv[2], NULL, 10);
	for (i = 0; i < 3; i++)
		if (add("news", base - 7200 + 2 * (int64_t)i, 900, 1) == -1)
			return 1;
	for (i = 0; i < 20; i++)
		if (add("news", base + 2 * (int64_t)i, 1000 + i,
		    !(i >= 5 && i <= 7) && i != 19) == -1)
			return 1;
	for (i = 0; i < 10; i++)
		if (add("sport", base + 4 * (int64_t)i, 5000, 1) == -1)
			return 1;
	for (i = 0; i < 2; i++)
		if (add("extra", base + 2 * (int64_t)i, 700, 0) == -1)
			return 1;
	for (i = 0; i < nsegs; i++) {
		v[i].name = segs[i].path;
		v[i].type = STORE_FILE;
		v[i].size = segs[i].size;
		/* news and extra: 2 s segments, sport: 4 s; mtime = end. */
		v[i].mtime = segs[i].t + (strncmp(segs[i].path, "sport/", 6)
		    == 0 ? 4 : 2);
		v[i].sha256 = segs[i].sha;
	}
	if ((st = store_open(argv[1], NULL)) == NULL) {
		perror(argv[1]);
		return 1;
	}
	if (store_apply_listing(st, "", v, nsegs, 1, 1, time(NULL), ids) == -1) {
		perror("store_apply_listing");
		goto out;
	}
	for (i = 0; i < nsegs; i++)
		if (segs[i].complete && store_put_file(st, ids[i],
		    segs[i].data, segs[i].size) == -1) {
			fprintf(stderr, "store_put_file %s: %s\n",
			    segs[i].path, strerror(errno));
			goto out;
		}
	if (store_sync(st) == -1) {
		perror("store_sync");
		goto out;
	}
	rc = 0;
out:
	store_close(st);
	for (i = 0; i < nsegs; i++)
		free(segs[i].data);
	return rc;
}
