#ifndef RATES_H
#define RATES_H

#include <stdint.h>

/*
 * Bytes per second by stream over the last RATES_SECS whole seconds, so
 * that a rate can be read at once rather than measured by the reader.
 * Not thread-safe: the caller holds its own lock.
 */
#define RATES_SECS	5
#define RATES_MAX	256	/* streams followed; more are not counted */

struct rates;

struct rates	*rates_new(void);
void		 rates_free(struct rates *);
/* Counts bytes of stream (the first component of a path) at second now. */
void		 rates_add(struct rates *, const char *stream, int64_t now,
		    uint64_t bytes);
/* Calls cb with each stream seen and its rate at second now. */
void		 rates_each(const struct rates *, int64_t now,
		    void (*cb)(void *, const char *stream, double bps),
		    void *arg);

#endif
