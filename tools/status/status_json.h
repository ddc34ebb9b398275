/*
 * status_json: the JSON of dvrfs-status -j (a whole report, with the
 * timeline ranges of every stream) and of -w -j (one line a second).
 * Each returns a new reference the caller decrefs, or NULL when out of
 * memory.
 */
#ifndef DVRFS_STATUS_JSON_H
#define DVRFS_STATUS_JSON_H

#include <jansson.h>

#include "status_report.h"

json_t	*sjson_report(const struct srep *rep);
/* -w -j: each row's progress and rate, without the timelines. */
json_t	*sjson_watch(const struct srep *rep);

#endif
