/*
 * origin_req: the parsers m4f-origin applies to a request before it
 * touches the disk: query parameters and the Range header. Strings come
 * from the network: every number is bounds-checked, a bad one refused.
 */
#include <stdlib.h>
#include <string.h>

#include "m4f.h"
#include "origin_req.h"

/*
 * The next value of key in the raw query from *pos on, decoded, in *val
 * (malloc'd); *pos moves past it. Returns 1 when found, 0 when there is
 * no more, -1 when malformed.
 */
static int
oreq_next(const char **pos, const char *key, char **val)
{
	const char *p, *end, *eq;
	size_t klen = strlen(key);

	*val = NULL;
	for (p = *pos; p != NULL && *p != '\0'; p = *end ? end + 1 : end) {
		end = strchrnul(p, '&');
		eq = memchr(p, '=', (size_t)(end - p));
		if ((eq ? (size_t)(eq - p) : (size_t)(end - p)) != klen ||
		    strncmp(p, key, klen) != 0)
			continue;
		if (eq == NULL)
			return -1;
		*pos = end;
		*val = m4f_unescape(eq + 1, (size_t)(end - eq - 1), 0);
		return *val ? 1 : -1;
	}
	return 0;
}

/* The first value of key in the raw query: oreq_next() from its start. */
int
oreq_get(const char *query, const char *key, char **val)
{
	return oreq_next(&query, key, val);
}

/*
 * Every value of key in the raw query, decoded, in vals (malloc'd, the
 * caller frees *n of them). Returns 0, or -1 when one is malformed or
 * there are more than max (then nothing is left to free).
 */
int
oreq_all(const char *query, const char *key, char **vals, size_t max,
    size_t *n)
{
	char *v;
	int r;

	*n = 0;
	while ((r = oreq_next(&query, key, &v)) == 1) {
		if (*n == max) {
			free(v);
			r = -1;
			break;
		}
		vals[(*n)++] = v;
	}
	if (r == 0)
		return 0;
	while (*n > 0)
		free(vals[--*n]);
	return -1;
}

/* A decimal number in [lo, hi]; 0 or -1. */
int
oreq_parse_num(const char *s, uint64_t lo, uint64_t hi, uint64_t *v)
{
	uint64_t n = 0;

	if (*s == '\0' || strlen(s) > 19)
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		n = n * 10 + (uint64_t)(*s - '0');
	}
	if (n < lo || n > hi)
		return -1;
	*v = n;
	return 0;
}

/* An optional numeric query parameter: 0 with *v set (or def), -1 bad. */
int
oreq_num(const char *q, const char *key, uint64_t lo, uint64_t hi,
    uint64_t def, uint64_t *v, int *present)
{
	char *s;
	int rc;

	*v = def;
	if ((rc = oreq_get(q, key, &s)) <= 0) {
		if (present)
			*present = 0;
		return rc;
	}
	if (present)
		*present = 1;
	rc = oreq_parse_num(s, lo, hi, v);
	free(s);
	return rc;
}

/*
 * 1*DIGIT at *p, any length: the value in *v, saturated at UINT64_MAX (a
 * position past any file). *p moves past the digits. 0, or -1 for none.
 */
static int
range_num(const char **p, uint64_t *v)
{
	const char *s = *p;
	uint64_t n = 0;

	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (n > (UINT64_MAX - 9) / 10)
			n = UINT64_MAX;
		else
			n = n * 10 + (uint64_t)(*s - '0');
	}
	*p = s;
	*v = n;
	return 0;
}

/*
 * RFC 9110, 14.1.2: "bytes=" then first-pos "-" [last-pos] or "-"
 * suffix-length, with optional white space around the field value. A
 * number too large for 64 bits is a position past the end: unsatisfiable
 * as a first-pos, clamped as a last-pos, the whole file as a suffix. A
 * range set with several ranges is answered whole (a server may ignore
 * the field); a malformed one, or trailing garbage, is refused (416).
 */
int
oreq_range(const char *h, uint64_t size, uint64_t *off, uint64_t *len)
{
	const char *p, *end;
	uint64_t a, b;

	if (h == NULL)
		return 0;
	while (*h == ' ' || *h == '\t')
		h++;
	if (strncasecmp(h, "bytes=", 6) != 0 || strchr(h, ',') != NULL)
		return 0;
	p = h + 6;
	end = p + strlen(p);
	while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if (*p == '-') {		/* bytes=-N: the last N */
		p++;
		if (range_num(&p, &b) == -1 || p != end)
			return 416;
		if (b == 0 || size == 0)
			return 416;
		*len = b < size ? b : size;
		*off = size - *len;
		return 1;
	}
	if (range_num(&p, &a) == -1 || *p++ != '-')
		return 416;
	if (p == end)
		b = UINT64_MAX;
	else if (range_num(&p, &b) == -1 || p != end || b < a)
		return 416;
	if (a >= size)
		return 416;
	if (b >= size)
		b = size - 1;
	*off = a;
	*len = b - a + 1;
	return 1;
}

int
oreq_sig(const char *h, char sig[65])
{
	const char *p;
	size_t i;

	for (p = h; p != NULL && (p = strstr(p, "sig=")) != NULL; p += 4) {
		if (p != h && p[-1] != ',' && p[-1] != ' ')
			continue;
		for (i = 0; i < 64; i++)
			if (!((p[4 + i] >= '0' && p[4 + i] <= '9') ||
			    (p[4 + i] >= 'a' && p[4 + i] <= 'f')))
				break;
		if (i < 64 || (p[68] != '\0' && p[68] != ',' && p[68] != ' '))
			continue;
		memcpy(sig, p + 4, 64);
		sig[64] = '\0';
		return 1;
	}
	return 0;
}
