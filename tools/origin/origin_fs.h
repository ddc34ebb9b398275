/*
 * origin_fs: the exported folders. Maps URL paths to exports, opens a
 * relative path inside an export without ever leaving it (openat2 with
 * RESOLVE_BENEATH from the export's descriptor), and builds listings. Functions that answer a request return an HTTP status (200
 * on success) and set *why to a short static reason otherwise.
 */
#ifndef ORIGIN_FS_H
#define ORIGIN_FS_H

#include <stddef.h>
#include <sys/stat.h>

struct ohash;

struct oexport {
	char	*url;		/* "/storage": the -r argument, no trailing '/' */
	char	*real;		/* realpath of it */
	int	 fd;		/* O_PATH descriptor of real: opens start here */
};

/*
 * Opens the export's folder into ex->fd and checks that the kernel can
 * open paths beneath it (openat2, Linux 5.6). 0, or -1 logged.
 */
int	ofs_export_open(struct oexport *);

/*
 * Finds the export that holds the decoded URL path and points *rel at the
 * rest of path (after the export and its '/', "" for the export itself).
 * Longest export wins. Returns NULL when no export holds it.
 */
const struct oexport *ofs_export(const struct oexport *, size_t n,
	    const char *path, const char **rel);

/*
 * Checks rel (m4f_path_check, not hidden) and opens it read-only beneath
 * the export: symbolic links are followed only while they stay inside
 * (403 otherwise), never a magic link, and the open never blocks (a FIFO
 * opens at once). Only a regular file or a folder is accepted (400 for
 * anything else). On 200, *fd is the descriptor (caller closes) and st
 * its fstat.
 */
int	ofs_open(const struct oexport *, const char *rel, int *fd,
	    struct stat *st, const char **why);

/*
 * The listing of folder rel of the export as M4F JSON (malloc'd, caller
 * frees) in *json. urlpath names it in the "path" field; after may be NULL.
 * Files carry the sha256 the cache knows, none otherwise: never reads a
 * file. Symbolic links are listed as links (ofs_link).
 */
int	ofs_list(const struct oexport *, struct ohash *, const char *urlpath,
	    const char *rel, int recursive, const char *after, size_t limit,
	    char **json, const char **why);

/*
 * Is rel (beneath the export, its last component not followed) a
 * symbolic link to show as a link? Its text must be relative (".." or
 * valid names joined by '/') and it must lead to a regular file or a
 * folder inside the export that is not hidden. 1 with the link's own
 * lstat in st and its text in *target (malloc'd, caller frees), or 0.
 */
int	ofs_link(const struct oexport *, const char *rel, struct stat *st,
	    char **target);

/* Byte-wise order of the pre-order walk: '/' sorts before every byte. */
int	ofs_precmp(const char *a, const char *b);

#endif
