/*
 * rates: per-stream byte rates kept in one-second buckets, so that the
 * mount can say how fast each stream fills without the reader waiting.
 */
#include <stdlib.h>
#include <string.h>

#include "rates.h"

#define NBUCKETS	(RATES_SECS + 1)	/* the current second too */

struct srate {
	char		 name[256];
	int64_t		 sec[NBUCKETS];
	uint64_t	 bytes[NBUCKETS];
};

struct rates {
	struct srate	 v[RATES_MAX];
	size_t		 n;
};

struct rates *
rates_new(void)
{
	return calloc(1, sizeof(struct rates));
}

void
rates_free(struct rates *r)
{
	free(r);
}

static struct srate *
find(struct rates *r, const char *stream)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		if (strcmp(r->v[i].name, stream) == 0)
			return &r->v[i];
	if (r->n == RATES_MAX || strlen(stream) >= sizeof(r->v[0].name))
		return NULL;
	memset(&r->v[r->n], 0, sizeof(r->v[0]));
	memcpy(r->v[r->n].name, stream, strlen(stream) + 1);
	return &r->v[r->n++];
}

void
rates_add(struct rates *r, const char *stream, int64_t now, uint64_t bytes)
{
	struct srate *s;
	size_t b;

	if (now < 0 || (s = find(r, stream)) == NULL)
		return;
	b = (size_t)(now % NBUCKETS);
	if (s->sec[b] != now) {
		s->sec[b] = now;
		s->bytes[b] = 0;
	}
	s->bytes[b] += bytes;
}

void
rates_each(const struct rates *r, int64_t now,
    void (*cb)(void *, const char *, double), void *arg)
{
	uint64_t sum;
	size_t i, b;

	for (i = 0; i < r->n; i++) {
		sum = 0;
		/* Whole seconds only: the current one is still filling. */
		for (b = 0; b < NBUCKETS; b++)
			if (r->v[i].sec[b] < now &&
			    r->v[i].sec[b] >= now - RATES_SECS)
				sum += r->v[i].bytes[b];
		cb(arg, r->v[i].name, (double)sum / RATES_SECS);
	}
}
