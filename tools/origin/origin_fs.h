/*
 * origin_fs: the exported folders. Maps URL paths to exports, resolves a
 * relative path inside an export without ever leaving it, and builds
 * listings. Functions that answer a request return an HTTP status (200
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
};

/*
 * Finds the export that holds the decoded URL path and points *rel at the
 * rest of path (after the export and its '/', "" for the export itself).
 * Longest export wins. Returns NULL when no export holds it.
 */
const struct oexport *ofs_export(const struct oexport *, size_t n,
	    const char *path, const char **rel);

/*
 * Checks rel (m4f_path_check, not hidden), resolves it with realpath and
 * refuses a result outside the export (403). On 200, *real is the malloc'd
 * resolved path (caller frees) and st its stat.
 */
int	ofs_resolve(const struct oexport *, const char *rel, char **real,
	    struct stat *st, const char **why);

/*
 * The listing of folder rel of the export as M4F JSON (malloc'd, caller
 * frees) in *json. urlpath names it in the "path" field; after may be NULL.
 */
int	ofs_list(const struct oexport *, struct ohash *, const char *urlpath,
	    const char *rel, int recursive, const char *after, size_t limit,
	    char **json, const char **why);

/* Byte-wise order of the pre-order walk: '/' sorts before every byte. */
int	ofs_precmp(const char *a, const char *b);

#endif
