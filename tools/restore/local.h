/*
 * local: the local DVR folder dvrfs-restore copies into: its lock, what
 * it holds, the names of the temporary files it writes there, and how a
 * verified one is put in place (docs/man/dvrfs-restore.8: never over an
 * existing file, never a partial one under a final name).
 *
 * Convention: 0 on success, -1 with errno.
 */
#ifndef DVRFS_LOCAL_H
#define DVRFS_LOCAL_H

#include <stddef.h>
#include <stdint.h>

/* The suffix of dvrfs-restore's temporary files: ".NAME" LOCAL_TMP. */
#define LOCAL_TMP	".dvrfs-restore.tmp"

/*
 * Opens folder dir and locks it against another dvrfs-restore (shared
 * when shared is set: a dry run). Returns the folder's descriptor (close
 * it to unlock), or -1 with errno (EWOULDBLOCK: locked).
 */
int	local_open(const char *dir, int shared);

/*
 * Every visible file under dirfd (not a name starting with '.' or ending
 * in ".tmp", in no such folder) as a path relative to it, sorted with
 * strcmp, into a malloc'd *v of *n strings (free with local_names_free).
 * With streams (NULL-terminated, may be NULL) only those top-level
 * folders are read. With clean set, the temporary files of an earlier
 * dvrfs-restore (killed) are removed on the way and counted in *cleaned.
 */
int	local_scan(int dirfd, char *const *streams, int clean,
	    char ***v, size_t *n, size_t *cleaned);
void	local_names_free(char **v, size_t n);

/* Is name one of dvrfs-restore's temporary names? */
int	local_is_tmp(const char *name);

/*
 * The temporary name of rel ("a/b/.NAME.dvrfs-restore.tmp"), malloc'd,
 * or NULL with errno (ENAMETOOLONG when its last component would be too
 * long).
 */
char	*local_tmp_name(const char *rel);

/* fsync of the folder dir, relative to dirfd ("" for dirfd itself). */
int	local_sync_dir(int dirfd, const char *dir);

/*
 * Creates the folders of rel's parent that are missing, each made
 * durable in its own parent. *last (NULL at first, free it) remembers
 * the last folder known to exist.
 */
int	local_mkparents(int dirfd, const char *rel, char **last);

/*
 * The committer: a thread that puts verified temporary files in place
 * in batches (group commit), off the transfers' thread. For each file
 * of a batch: the peer's mtime and fsync; then the renames, each only if
 * its name is still free (EEXIST otherwise: a file that appeared
 * meanwhile is never touched; the temporary file goes); then one fsync
 * of each folder a rename went into. A file is reported done only once
 * its folder is synced. A file that fails leaves no temporary behind.
 *
 * local_commit_add and local_commit_reap are called from one thread;
 * wake(warg) is called from the committer's after each batch, so that
 * thread can reap.
 */
struct local_commit;

typedef void	local_wake_cb(void *warg);
/* A file's end: err 0 (in place and durable) or its errno. */
typedef void	local_done_cb(void *arg, void *cookie, int err);

/* A committer for files under dirfd. NULL, errno. */
struct local_commit *local_commit_new(int dirfd, local_wake_cb *wake,
	    void *warg);

/*
 * Hands the verified temporary file tmp (malloc'd, taken; relative to
 * dirfd), open as fd (taken), over to be put in place as rel (kept by
 * reference until it is reaped) with the peer's mtime, and starts its
 * write-back. Waits while LOCAL_COMMIT_MAX files are not reaped yet.
 * 0, or -1 with ENOMEM: nothing was taken.
 */
#define LOCAL_COMMIT_MAX	256
int	local_commit_add(struct local_commit *, int fd, char *tmp,
	    const char *rel, int64_t mtime, void *cookie);

/* Calls done for each file finished since the last call; how many. */
size_t	local_commit_reap(struct local_commit *, local_done_cb *done,
	    void *arg);

/* Files handed over and not reaped yet. */
size_t	local_commit_pending(struct local_commit *);

/* Waits until every file handed over is finished (not reaped). */
void	local_commit_wait(struct local_commit *);

/* Waits for the files handed over, stops the thread. NULL is fine. */
void	local_commit_free(struct local_commit *);

#endif
