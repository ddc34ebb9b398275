/*
 * status: what a mount tells dvrfs-status, in the names common/dvrfs_status.h
 * owns: STORE/dvrfs.json describes the mount (so a stopped store can be
 * read too); the live counters are a JSON object served as an extended
 * attribute of the mount's root.
 */
#ifndef DVRFS_STATUS_H
#define DVRFS_STATUS_H

struct dvrfs_opts;
struct fs;
struct fetcher;
struct crawler;
struct store;

/*
 * Writes STORE/dvrfs.json atomically (temporary file, fsync, rename).
 * Returns 0, or -1 with errno.
 */
int	status_write_mount(const struct dvrfs_opts *, const char *store_dir);

/*
 * The live counters as a JSON text, malloc'd (the caller frees), or NULL.
 * Any of the parts may be NULL.
 */
char	*status_json(struct fs *, struct fetcher *, struct crawler *,
	    struct store *);

#endif
