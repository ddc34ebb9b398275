/*
 * status_fmt: numbers for people, as dvrfs-status prints them. Each
 * function writes a NUL-terminated string into buf (truncated to len) and
 * returns buf. No state, thread-safe.
 */
#ifndef DVRFS_STATUS_FMT_H
#define DVRFS_STATUS_FMT_H

#include <stddef.h>
#include <stdint.h>

/* Binary multiples, three significant digits: "999B", "1.50K", "12.3G". */
char	*sfmt_bytes(uint64_t n, char *buf, size_t len);
/* A rate in bytes/s like sfmt_bytes plus "/s"; "-" when rate < 0. */
char	*sfmt_rate(double rate, char *buf, size_t len);
/* A duration: "0:05", "1:02:03", "2d03h"; "-" when s < 0. */
char	*sfmt_duration(int64_t s, char *buf, size_t len);
/* UTC ISO-8601 "2026-11-27T07:13:04Z"; "-" when t < 0. */
char	*sfmt_time(int64_t t, char *buf, size_t len);

/* done of total in percent, rounded down to 0.1; 100 when total is 0. */
double	 sfmt_percent(uint64_t done, uint64_t total);
/* Seconds left at rate, or -1 when unknown (no rate); 0 when done. */
int64_t	 sfmt_eta(uint64_t done, uint64_t total, double rate);

#endif
