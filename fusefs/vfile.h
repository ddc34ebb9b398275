/*
 * vfile: the mount's virtual files — playlists, range files and
 * recording_status.json inside each stream folder (a top-level folder of
 * the export), answered on lookup and never listed. Each lookup makes a
 * new inode with its content fixed at that moment, so a playlist that
 * grows is seen new by every open (nginx included) and never through a
 * stale size or page cache. Inodes report no links: the kernel forgets
 * them as soon as it stops using them.
 *
 * Helpers return 0 or a positive errno value, as in fs.c. Thread-safe.
 */
#ifndef DVRFS_VFILE_H
#define DVRFS_VFILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#define VF_INO_BASE	(1ULL << 62)	/* store ids stay far below */

struct store;
struct store_ent;
struct fetcher;
struct vf;

struct vf_conf {
	int		 timeout_ms;	/* waiting on the primary, per lookup
					   and per read */
	int64_t		 depth;		/* recording_status.json's span */
};

/* NULL with errno; free with vf_free(). store and fetcher outlive it. */
struct vf *vf_new(struct store *, struct fetcher *, const struct vf_conf *);
void	vf_free(struct vf *);

/* Whether ino is a virtual file's. */
static inline int
vf_is(uint64_t ino)
{
	return ino >= VF_INO_BASE;
}

/* Whether name has the form of a playback name (no look-up). */
int	vf_claims(const char *name);

/*
 * name in the stream folder dir: a new virtual file, its attributes in
 * *st and how long the kernel may keep them in *timeout. The file counts
 * one kernel reference (vf_forget). Returns 0, ENOENT (not a playback
 * name, or nothing recorded in the range), or EIO/ETIMEDOUT when the
 * primary was needed and did not answer.
 */
int	vf_lookup(struct vf *, const struct store_ent *dir, const char *name,
	    struct stat *st, double *timeout);

/* The attributes of ino. 0 or ENOENT (forgotten, or never made). */
int	vf_getattr(struct vf *, uint64_t ino, struct stat *st);

/*
 * Up to size bytes of ino at off into *buf (malloc'd, the caller frees;
 * NULL when *n is 0). A range file's bytes are its segments', read from
 * the store or fetched under the same rules as any segment read. Returns
 * 0, or ENOENT, EIO, ETIMEDOUT…
 */
int	vf_read(struct vf *, uint64_t ino, size_t size, uint64_t off,
	    char **buf, size_t *n);

/* The kernel lets go of nlookup references to ino. */
void	vf_forget(struct vf *, uint64_t ino, uint64_t nlookup);

#endif
