/*
 * copy: dvrfs-restore's transfers. Copies the peer's files into the
 * local folder, transfers= at a time (libcurl multi), within bwlimit=,
 * each one crash-safe: written under a hidden temporary name in its
 * folder (local.h), checked against the peer's SHA-256 (the listing's,
 * else the answer's Repr-Digest; a file with neither is refused),
 * then handed over to local.h's committer, which gives it the peer's
 * mtime, fsyncs it, renames it to its name only if that name is still
 * free (an existing local file is never touched) and fsyncs its folder,
 * in batches while the transfers go on; a file counts as copied once
 * its folder is synced. A transient failure (the peer unreachable or stalled for
 * timeout=, a 5xx, a short or damaged answer) is retried with backoff.
 */
#ifndef DVRFS_COPY_H
#define DVRFS_COPY_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "m4f.h"

#define COPY_ATTEMPTS	5	/* tries per file */

struct dvrfs_opts;
struct peer;

struct copy_stats {
	size_t		 done;		/* files copied */
	uint64_t	 bytes;		/* their bytes */
	uint64_t	 bytes_now;	/* with what is in flight */
	size_t		 vanished;	/* gone from the peer meanwhile */
	size_t		 existed;	/* appeared locally meanwhile */
	size_t		 bad_digest;	/* failed verification */
	size_t		 unreachable;	/* the peer failed them */
	size_t		 failed;	/* other errors */
	int		 fatal;		/* what stopped the run: EACCES (key
					   refused), ENOSPC (disk full),
					   ECONNREFUSED (the peer is down),
					   EINTR (stop), 0 */
};

/*
 * Called with each copied file's name (rel), and with rel NULL about
 * twice a second.
 */
typedef void	copy_cb(void *arg, const struct copy_stats *, const char *rel);

/*
 * Copies the files v[idx[0..n)] (names relative to the export and to
 * dirfd) in that order. Adds to *st. Stops early on a fatal error, or
 * when *stop becomes set (its temporaries removed). Returns 0 when every
 * file was copied, vanished or appeared meanwhile, else -1.
 */
int	copy_run(struct peer *, int dirfd, const struct m4f_entry *v,
	    const size_t *idx, size_t n, const struct dvrfs_opts *o,
	    struct copy_stats *st, copy_cb *cb, void *arg,
	    volatile sig_atomic_t *stop);

#endif
