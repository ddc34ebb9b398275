/*
 * local: the local DVR folder dvrfs-restore copies into: its lock, what
 * it holds, and the names of the temporary files it writes there.
 *
 * Convention: 0 on success, -1 with errno.
 */
#ifndef DVRFS_LOCAL_H
#define DVRFS_LOCAL_H

#include <stddef.h>

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

#endif
