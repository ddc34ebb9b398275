/*
 * fuzz_origin: the parsers m4f-origin applies to a request before touching
 * the disk. The input is SIZE (8 bytes, little endian) then fields split
 * at '\n': a Range header, a query string, an Authorization header and a
 * request target.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "m4f.h"
#include "origin_fs.h"
#include "origin_req.h"

#include "fuzz.h"

#define NFIELDS	4

static const char key[] = "fuzz cluster key";

static size_t
count_char(const char *s, size_t n, char c)
{
	size_t i, k = 0;

	for (i = 0; i < n; i++)
		k += s[i] == c;
	return k;
}

static void
fuzz_range(const char *h, uint64_t size)
{
	uint64_t off = 0, len = 0;
	int rc;

	rc = oreq_range(h, size, &off, &len);
	FUZZ_ASSERT(rc == 0 || rc == 1 || rc == 416);
	if (rc == 1) {
		FUZZ_ASSERT(len >= 1 && off < size && len <= size - off);
		FUZZ_ASSERT(h != NULL && strcasestr(h, "bytes=") != NULL);
	}
	if (rc == 0 && h != NULL && strncmp(h, "bytes=", 6) == 0 &&
	    strchr(h, ',') == NULL && size > 0) {
		/* "bytes=0-" is always satisfiable. */
		FUZZ_ASSERT(strcmp(h, "bytes=0-") != 0);
	}
}

/* Every name= value, at most M4F_FILES_MAX of them, all or none. */
static void
fuzz_names(const char *q)
{
	char *names[M4F_FILES_MAX];
	size_t n, i;

	if (oreq_all(q, "name", names, M4F_FILES_MAX, &n) == -1) {
		FUZZ_ASSERT(n == 0);
		return;
	}
	FUZZ_ASSERT(n <= M4F_FILES_MAX);
	for (i = 0; i < n; i++) {
		FUZZ_ASSERT(names[i] != NULL);
		free(names[i]);
	}
}

static void
fuzz_query(const char *q)
{
	uint64_t v;
	char *s = NULL;
	int rc, present;

	rc = oreq_get(q, "after", &s);
	FUZZ_ASSERT(rc >= -1 && rc <= 1);
	FUZZ_ASSERT((rc == 1) == (s != NULL));
	free(s);
	if (oreq_num(q, "limit", 1, M4F_LIST_LIMIT_MAX,
	    M4F_LIST_LIMIT_DEFAULT, &v, &present) == 0)
		FUZZ_ASSERT(v >= 1 && v <= M4F_LIST_LIMIT_MAX);
	if (oreq_num(q, "since", 0, (uint64_t)1 << 53, 0, &v, &present) == 0)
		FUZZ_ASSERT(v <= (uint64_t)1 << 53);
	fuzz_names(q);
}

static void
fuzz_auth(const char *target, const char *header, int64_t now)
{
	char good[160], sig[65];
	int rc;

	/* The sig= an answer is signed over: 64 lowercase hex, if any. */
	if (oreq_sig(header, sig)) {
		FUZZ_ASSERT(strlen(sig) == 64 &&
		    strspn(sig, "0123456789abcdef") == 64);
		FUZZ_ASSERT(strstr(header, sig) != NULL);
	}
	rc = m4f_auth_check(key, sizeof(key) - 1, "GET", target, header, now);
	FUZZ_ASSERT(rc == 0 || errno == EBADMSG || errno == ETIME ||
	    errno == EACCES);
	FUZZ_ASSERT(m4f_auth_header(key, sizeof(key) - 1, "GET", target, now,
	    good, sizeof(good)) == 0);
	if (rc == 0)
		FUZZ_ASSERT(strncmp(header, "M4F-HMAC-SHA256 t=", 18) == 0);
	/* A fresh signature passes; the same for another method fails. */
	FUZZ_ASSERT(m4f_auth_check(key, sizeof(key) - 1, "GET", target, good,
	    now) == 0);
	FUZZ_ASSERT(m4f_auth_check(key, sizeof(key) - 1, "HEAD", target, good,
	    now) == -1 && errno == EACCES);
	FUZZ_ASSERT(m4f_auth_check(key, sizeof(key) - 1, "GET", target, good,
	    now + M4F_AUTH_WINDOW + 1) == -1 && errno == ETIME);
}

static void
fuzz_path(const char *target, size_t n)
{
	static const struct oexport ex[] = {
		{ .url = (char *)"/storage", .real = (char *)"/storage" },
		{ .url = (char *)"/storage/news", .real = (char *)"/x" },
	};
	const struct oexport *e;
	const char *rel;
	char *p, *esc, *back;
	int in_path;

	for (in_path = 0; in_path <= 1; in_path++) {
		if ((p = m4f_unescape(target, n, in_path)) == NULL)
			continue;
		FUZZ_ASSERT(strlen(p) <= n);
		if (in_path)
			FUZZ_ASSERT(count_char(p, strlen(p), '/') ==
			    count_char(target, n, '/'));
		if (m4f_path_check(p) == 0) {
			FUZZ_ASSERT(strlen(p) <= M4F_PATH_MAX);
			FUZZ_ASSERT(count_char(p, strlen(p), '/') <
			    M4F_DEPTH_MAX);
			FUZZ_ASSERT(p[0] != '/' && strstr(p, "//") == NULL);
			FUZZ_ASSERT(strcmp(p, "..") != 0 &&
			    strncmp(p, "../", 3) != 0 &&
			    strstr(p, "/../") == NULL);
			/* Escaping a valid path and decoding it is the identity. */
			esc = m4f_escape_path(p);
			FUZZ_ASSERT(esc != NULL);
			back = m4f_unescape(esc, strlen(esc), 1);
			FUZZ_ASSERT(back != NULL && strcmp(back, p) == 0);
			free(back);
			free(esc);
		}
		if (p[0] == '/' && (e = ofs_export(ex, 2, p, &rel)) != NULL) {
			FUZZ_ASSERT(rel >= p && rel <= p + strlen(p));
			FUZZ_ASSERT(rel[0] != '/' || strstr(p, "//") != NULL);
			FUZZ_ASSERT(strncmp(p, e->url, strlen(e->url)) == 0);
		}
		free(p);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *field[NFIELDS] = { NULL, NULL, NULL, NULL };
	uint64_t fsize = 0;
	char *buf, *p, *nl;
	size_t i;

	if (size < 8 || size > 65536)
		return 0;
	for (i = 0; i < 8; i++)
		fsize |= (uint64_t)data[i] << (8 * i);
	if ((buf = malloc(size - 8 + 1)) == NULL)
		return 0;
	memcpy(buf, data + 8, size - 8);
	buf[size - 8] = '\0';
	for (p = buf, i = 0; i < NFIELDS && p != NULL; i++) {
		field[i] = p;
		if ((nl = strchr(p, '\n')) != NULL)
			*nl++ = '\0';
		p = nl;
	}
	fuzz_range(field[0], fsize);
	fuzz_range(field[0], fsize & 0xffff);
	if (field[1] != NULL)
		fuzz_query(field[1]);
	if (field[3] != NULL) {
		fuzz_auth(field[3], field[2], (int64_t)(fsize & 0x3fffffff));
		fuzz_path(field[3], strlen(field[3]));
	}
	free(buf);
	return 0;
}
