/*
 * jsonget: typed reads of one member of a JSON object (jansson), shared by
 * the M4F documents and the mount's status files. A value of the wrong
 * type or out of range is rejected, never clamped or converted: reals are
 * not integers, and a string must not hold a NUL byte.
 *
 * Convention: each returns 1 when the member is there and good (its value
 * stored), 0 when it is absent or JSON null (nothing stored), -1 when it
 * is anything else (nothing stored). o may be NULL or not an object: its
 * members are then all absent.
 */
#ifndef DVRFS_JSONGET_H
#define DVRFS_JSONGET_H

#include <stdint.h>

#include <jansson.h>

/* An integer in [0, max] into *v. */
int	jsonget_uint(json_t *o, const char *key, uint64_t max, uint64_t *v);

/* true or false into *v as 1 or 0. */
int	jsonget_bool(json_t *o, const char *key, int *v);

/* A string into *s: o's own, valid while o holds it. */
int	jsonget_str(json_t *o, const char *key, const char **s);

#endif
