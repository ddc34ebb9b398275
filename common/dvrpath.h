/*
 * dvrpath: the time of a DVR segment from its path,
 * "STREAM/YYYY/MM/DD/HH/MM/SS.ext" where STREAM is every component before
 * the last six. Strict: fixed-width digits, real calendar dates, hours
 * 0-23, minutes 0-59, seconds 0-60 (a leap second). No locking, no state.
 */
#ifndef DVRFS_DVRPATH_H
#define DVRFS_DVRPATH_H

#include <stddef.h>
#include <stdint.h>

/*
 * Parses rel into the UTC time of the segment's start. Returns 0, or -1
 * with EINVAL if rel is not such a path. *stream_len (may be NULL) gets
 * the length of the STREAM part, without its trailing slash.
 */
int	dvrpath_time(const char *rel, int64_t *t, size_t *stream_len);

/*
 * Parses a DVR folder (STREAM/YYYY, …/MM, …/DD or …/HH) into the UTC
 * start of the time it can hold and that time's length at most (an hour,
 * a day, 31 days, 366 days). Returns 0, or -1 with EINVAL if rel is not
 * such a folder.
 */
int	dvrpath_span(const char *rel, int64_t *start, int64_t *span);

#endif
