/*
 * origin_req: parsing what a client sends, apart from the HTTP server so
 * that tests and fuzz harnesses reach it. Functions return 0 on success
 * and -1 for a malformed value unless said otherwise; nothing here logs.
 */
#ifndef ORIGIN_REQ_H
#define ORIGIN_REQ_H

#include <stddef.h>
#include <stdint.h>

/*
 * The first value of key in the raw query, decoded, in *val (malloc'd,
 * the caller frees). Returns 1 when found, 0 when absent, -1 malformed.
 */
int	oreq_get(const char *query, const char *key, char **val);

/*
 * Every value of key in the raw query, decoded, in vals (malloc'd, the
 * caller frees *n of them). Returns 0, or -1 when one is malformed or
 * there are more than max (then nothing is left to free).
 */
int	oreq_all(const char *query, const char *key, char **vals, size_t max,
	    size_t *n);

/* A decimal number in [lo, hi] in *v: 0 or -1. */
int	oreq_parse_num(const char *s, uint64_t lo, uint64_t hi, uint64_t *v);

/*
 * An optional numeric query parameter in [lo, hi]: 0 with *v set (def
 * when absent, *present says which; present may be NULL), -1 malformed.
 */
int	oreq_num(const char *q, const char *key, uint64_t lo, uint64_t hi,
	    uint64_t def, uint64_t *v, int *present);

/*
 * A Range header against size. Returns 1 with [*off, *off + *len) for a
 * single satisfiable range, 0 to send the whole file (no header, another
 * unit, several ranges), 416 when it cannot be satisfied or is malformed.
 */
int	oreq_range(const char *h, uint64_t size, uint64_t *off, uint64_t *len);

/*
 * The sig= value of an Authorization header (h may be NULL) into sig: 1
 * when there is one of 64 lowercase hex digits, else 0. It only finds
 * the value an answer's signature binds to (m4f_auth_check judges the
 * header).
 */
int	oreq_sig(const char *h, char sig[65]);

#endif
