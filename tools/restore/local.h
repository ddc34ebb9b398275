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
 * Puts the verified temporary file tmp (open as fd, which is closed) in
 * place as rel: the peer's mtime, fsync, rename only if rel is still
 * free (EEXIST otherwise: a file that appeared meanwhile is never
 * touched). The folder is synced once the next file lands in another
 * one: *syncdir (NULL at first) is the folder with renames not synced,
 * for local_sync_dir() at the end; free it.
 */
int	local_land(int dirfd, int fd, const char *tmp, const char *rel,
	    int64_t mtime, char **syncdir);

#endif
