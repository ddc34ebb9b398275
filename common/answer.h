/*
 * answer: what makes an origin's answer checkable by the client that
 * asked — the digest of what it carries (RFC 9530 fields) and, with a
 * cluster key, a signature binding that digest to the request it answers
 * (docs/protocol.md, "Digests and signed answers").
 *
 * Convention: 0 on success, -1 with errno (EINVAL: malformed, EACCES:
 * a signature that does not match).
 */
#ifndef DVRFS_ANSWER_H
#define DVRFS_ANSWER_H

#include <stddef.h>
#include <stdint.h>

/* The SHA-256 of the whole file, when an answer carries all of it. */
#define ANSWER_REPR_DIGEST	"Repr-Digest"
/* The SHA-256 of the bytes this answer carries (a range). */
#define ANSWER_CONTENT_DIGEST	"Content-Digest"
/* The origin's signature of its answer, with -k. */
#define ANSWER_SIGNATURE	"X-M4F-Signature"

/* "sha-256=:" 44 base64 characters ":" and a NUL. */
#define ANSWER_DIGEST_LEN	(9 + 44 + 1 + 1)

/* The field value for the SHA-256 md, "sha-256=:BASE64:", into buf. */
void	answer_digest_format(const uint8_t md[32],
	    char buf[ANSWER_DIGEST_LEN]);

/*
 * The sha-256 member of a Repr-Digest or Content-Digest field value (a
 * dictionary: other algorithms are skipped, white space around members
 * allowed) into md. -1 with EINVAL when the field is malformed or has no
 * sha-256 member.
 */
int	answer_digest_parse(const char *field, uint8_t md[32]);

/*
 * The signature of an answer: lowercase hex HMAC-SHA256, keyed with the
 * cluster key, of
 *
 *	"M4F-ANSWER" "\n" REQSIG "\n" STATUS "\n" RANGE "\n" DIGEST
 *
 * REQSIG the sig= of the request's Authorization (the answer belongs to
 * that request alone), STATUS the decimal status code, RANGE the
 * Content-Range value or "", DIGEST the field that vouches for the body
 * (Repr-Digest, Content-Digest, X-M4F-SHA256 or X-M4F-Digests) or "".
 * range and digest may be NULL for "".
 */
int	answer_sign(const void *key, size_t keylen, const char *reqsig,
	    int status, const char *range, const char *digest,
	    char hex[65]);

/*
 * Checks a X-M4F-Signature value (may be NULL: EBADMSG) against what
 * answer_sign() computes, in constant time. 0, or -1 with EBADMSG
 * (missing or malformed) or EACCES (does not match).
 */
int	answer_check(const void *key, size_t keylen, const char *reqsig,
	    int status, const char *range, const char *digest,
	    const char *header);

#endif
