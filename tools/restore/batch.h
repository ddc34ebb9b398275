/*
 * batch: which of dvrfs-restore's files share one request, and how the
 * answer to such a request is split (docs/protocol.md, "Several files of
 * a folder"). Over a long link each request costs a round trip, so the
 * files of one folder go several at a time, GET
 * /m4f/v1/files/EXPORT/FOLDER?name=A&name=B...; the answer carries their
 * bytes back to back, each file's size in X-M4F-Sizes and its SHA-256 in
 * X-M4F-Digests. No I/O.
 *
 * Convention: 0 on success, -1 with errno.
 */
#ifndef DVRFS_BATCH_H
#define DVRFS_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "m4f.h"

#define BATCH_FILES	8		/* files in one request */
#define BATCH_BYTES	(8ULL << 20)	/* and their bytes */

_Static_assert(BATCH_FILES <= M4F_FILES_MAX, "a bundle the origin takes");

/*
 * How many of the files v[idx[0..n)], in that order, go in the request
 * of the first one: the run of those in its folder, each of 1 to
 * BATCH_BYTES bytes, at most BATCH_FILES files and BATCH_BYTES bytes in
 * all. 1 when the first goes alone (0 when n is 0).
 */
size_t	batch_take(const struct m4f_entry *v, const size_t *idx, size_t n);

/*
 * Reads the answer to a request for the n files e[0..n) (1 to
 * BATCH_FILES): its X-M4F-Sizes value sizes and X-M4F-Digests value
 * digests (NULL when the answer had none). Stores in asize[i] the bytes
 * of file i in the answer and in want[i] the SHA-256 (hex) its bytes must
 * have: the listed one, else the answer's; "" when it has none, or when
 * the answer says it changed since it was listed (another size or hash):
 * that file is then asked for alone. Returns 0, or -1 with EBADMSG when
 * the answer cannot be split or checked (malformed, or not n files).
 */
int	batch_answer(const struct m4f_entry *const *e, size_t n,
	    const char *sizes, const char *digests, uint64_t *asize,
	    char (*want)[M4F_SHA256_HEX + 1]);

#endif
