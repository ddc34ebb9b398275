/*
 * clock: the monotonic clock in milliseconds, for timeouts, rates and
 * back-off (never for times shown or stored: those are wall clock).
 */
#ifndef DVRFS_CLOCK_H
#define DVRFS_CLOCK_H

#include <stdint.h>

/* Milliseconds of CLOCK_MONOTONIC. */
int64_t	clock_ms(void);

#endif
