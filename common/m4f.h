/*
 * m4f: the M4F wire protocol (docs/protocol.md), shared by the dvrfs client
 * and m4f-origin: path validation, request signing and checking, and the
 * JSON of listings and feeds (jansson).
 *
 * Convention: functions returning int give 0 on success and -1 with errno
 * set on failure; functions returning pointers give NULL with errno set.
 */
#ifndef DVRFS_M4F_H
#define DVRFS_M4F_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define M4F_API_PREFIX		"/m4f/v1"
#define M4F_NAME_MAX		255
#define M4F_PATH_MAX		4096
/*
 * At most this many components in a path: a DVR tree is six levels below
 * its export (stream/YYYY/MM/DD/HH/MM/SS.ts); deeper is refused by both
 * sides, so that no walk over a tree recurses without bound.
 */
#define M4F_DEPTH_MAX		64
#define M4F_SHA256_HEX		64
#define M4F_AUTH_WINDOW		300	/* seconds either side of now */
#define M4F_LIST_LIMIT_DEFAULT	10000
#define M4F_LIST_LIMIT_MAX	100000
#define M4F_FEED_WAIT_DEFAULT	25
#define M4F_FEED_WAIT_MAX	60
/* The SHA-256 of a JSON answer's body, in lowercase hex. */
#define M4F_BODY_SHA256		"X-M4F-SHA256"
/* Several files of a folder in one answer: at most this many names. */
#define M4F_FILES_MAX		64
/* Their sizes, decimal, comma-separated, in the order asked. */
#define M4F_FILES_SIZES		"X-M4F-Sizes"
/* Their SHA-256s, lowercase hex, comma-separated, in the order asked. */
#define M4F_FILES_DIGESTS	"X-M4F-Digests"
/*
 * The origin computes a digest on the way out (Repr-Digest of a whole
 * file whose hash it does not know yet, Content-Digest of a range) only
 * for at most this many bytes: it hashes them before it sends them, and
 * they must still be in the page cache when it does.
 */
#define M4F_DIGEST_MAX		((uint64_t)64 << 20)

/*
 * Parses an X-M4F-Sizes value: 1 to max decimal sizes, comma-separated,
 * nothing else (no spaces, signs or leading zeros, none over 2^64-1).
 * Stores them in v and their count in *n. Returns 0, or -1 with errno
 * EINVAL.
 */
int	m4f_sizes_parse(const char *s, uint64_t *v, size_t max, size_t *n);

/*
 * Parses an X-M4F-Digests value: 1 to max SHA-256s of 64 lowercase hex
 * digits, comma-separated, nothing else. Copies them (NUL-terminated)
 * into v and their count into *n. Returns 0, or -1 with errno EINVAL.
 */
int	m4f_digests_parse(const char *s, char (*v)[M4F_SHA256_HEX + 1],
	    size_t max, size_t *n);

/*
 * Is target the text of a symbolic link at rel (a valid relative path
 * from the export's root) that stays inside the export? Relative, 1 to
 * M4F_PATH_MAX bytes, no control byte, components valid names, "." or
 * ".." (empty ones are skipped), and no ".." climbing above the export's
 * root when it is resolved from rel's folder. rel NULL: the syntax only.
 * Returns 0, or -1 with errno EINVAL (ENAMETOOLONG when too long).
 */
int	m4f_link_check(const char *rel, const char *target);

/*
 * Is name one valid path component? Not empty, not "." or "..", no '/',
 * no byte 0x01-0x1f or 0x7f, at most M4F_NAME_MAX bytes.
 * Returns 0, or -1 with errno EINVAL (ENAMETOOLONG when too long).
 */
int	m4f_name_check(const char *name, size_t len);

/*
 * Is rel a valid relative path: components joined by single '/', no
 * leading or trailing '/', each passing m4f_name_check, at most
 * M4F_PATH_MAX bytes and M4F_DEPTH_MAX components in all? The empty
 * string is valid (the root). Returns 0, or -1 with errno EINVAL,
 * ENAMETOOLONG, or E2BIG when it is deeper than M4F_DEPTH_MAX.
 */
int	m4f_path_check(const char *rel);

/* Is this name one the origin hides (leading '.' or ".tmp" suffix)? */
int	m4f_name_hidden(const char *name);

/*
 * Signing. m4f_sign() writes the 64 lowercase hex digits of
 * HMAC-SHA256(key, method "\n" target "\n" t) and a NUL into hex.
 * m4f_auth_header() writes the value of the Authorization header
 * ("M4F-HMAC-SHA256 t=T,sig=HEX") into buf; -1 with ENOSPC if it does not fit.
 */
int	m4f_sign(const void *key, size_t keylen, const char *method,
	    const char *target, int64_t t, char hex[M4F_SHA256_HEX + 1]);
int	m4f_auth_header(const void *key, size_t keylen, const char *method,
	    const char *target, int64_t now, char *buf, size_t bufsz);

/*
 * Checks an Authorization header value (may be NULL) against the key, the
 * request and the clock. Returns 0 if it is valid, else -1 with errno
 * EBADMSG (missing or malformed), ETIME (outside the window) or EACCES
 * (wrong signature). Compares in constant time.
 */
int	m4f_auth_check(const void *key, size_t keylen, const char *method,
	    const char *target, const char *header, int64_t now);

enum m4f_type { M4F_FILE = 'f', M4F_DIR = 'd', M4F_LINK = 'l' };

struct m4f_entry {
	char		*name;		/* relative, validated by m4f_path_check */
	enum m4f_type	 type;
	uint64_t	 size;		/* files only */
	int64_t		 mtime;
	/* Files only, else "". "" on a file: the origin does not know it yet. */
	char		 sha256[M4F_SHA256_HEX + 1];
	char		*target;	/* links only: the link's text, else NULL */
};

struct m4f_listing {
	char		*path;		/* absolute URL path of the listed folder */
	struct m4f_entry *entries;
	size_t		 n;
	char		*next;		/* NULL on the last page */
};

/*
 * Encodes a listing as JSON. Returns a malloc'd NUL-terminated string the
 * caller frees, or NULL.
 */
char	*m4f_listing_encode(const struct m4f_listing *);

/*
 * Decodes and validates a listing: every field typed and in range, every
 * name a valid relative path (single component unless recursive), sha256
 * 64 hex digits or null (not known yet: "") on files, target a link's
 * text (m4f_link_check, its syntax: where it leads is the store's to
 * check) on links. On failure returns NULL with errno EBADMSG and, if
 * err is not NULL, a one-line reason in err. The caller frees the result
 * with m4f_listing_free().
 */
struct m4f_listing *m4f_listing_decode(const char *json, size_t len,
	    int recursive, char *err, size_t errlen);
void	m4f_listing_free(struct m4f_listing *);

enum m4f_op { M4F_ADD = 'a', M4F_DEL = 'd' };

struct m4f_event {
	uint64_t	 seq;
	enum m4f_op	 op;
	struct m4f_entry e;	/* e.name relative to the export */
};

struct m4f_feed {
	char		 epoch[33];
	uint64_t	 seq;
	int		 reset;
	struct m4f_event *events;
	size_t		 n;
};

/* As the listing functions, for feed answers. */
char	*m4f_feed_encode(const struct m4f_feed *);
struct m4f_feed *m4f_feed_decode(const char *json, size_t len, char *err,
	    size_t errlen);
void	m4f_feed_free(struct m4f_feed *);

/* Writes the 2n lowercase hex digits of in[0..n) and a NUL into out. */
void	m4f_hex_encode(const unsigned char *in, size_t n, char *out);

/* Writes SHA-256(buf) into md. Returns 0, or -1 with errno. */
int	m4f_sha256(const void *buf, size_t len, unsigned char md[32]);

/*
 * Writes the 64 lowercase hex digits of SHA-256(buf) and a NUL into hex.
 * Returns 0, or -1 with errno.
 */
int	m4f_sha256_hex(const void *buf, size_t len,
	    char hex[M4F_SHA256_HEX + 1]);

/*
 * Percent-decodes src (len bytes) into a malloc'd string. Refuses (NULL,
 * errno EINVAL) malformed escapes, an encoded NUL and, when in_path is
 * set, an encoded '/'.
 */
char	*m4f_unescape(const char *src, size_t len, int in_path);

/*
 * Percent-encodes a relative path for a URL, leaving '/' and unreserved
 * characters (RFC 3986) as they are. Returns malloc'd string or NULL.
 */
char	*m4f_escape_path(const char *path);

/*
 * The value of header line (n bytes, as libcurl hands it over, CRLF
 * included) if its field is name (any case), without the white space
 * around it, into dst. Returns 1 if it was that field and the value
 * fits, else 0.
 */
int	m4f_header_value(const char *line, size_t n, const char *name,
	    char *dst, size_t dstsz);

#endif
