/*
 * fs: the FUSE low-level operations of dvrfs. Turns the kernel's requests
 * into store look-ups and fetcher requests; each handler sends exactly one
 * reply. Helpers return 0 or a positive errno value.
 */
#ifndef DVRFS_FS_H
#define DVRFS_FS_H

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 312
#endif
#include <fuse_lowlevel.h>
#include <stdint.h>

struct store;
struct fetcher;
struct fetcher_change;
struct fs;

struct fs_conf {
	int		 timeout_ms;	/* a read waiting on the primary */
	int		 readahead;	/* next segments of a stream to fetch */
	int64_t		 depth;		/* seconds: recording_status.json */
	/* The live counters as malloc'd JSON (user.dvrfs.status), or NULL. */
	char		*(*status)(void *arg);
	void		*status_arg;
};

/* Read counters by source, since the mount. */
struct fs_counters {
	uint64_t	 reads_local;	/* served from the store */
	uint64_t	 reads_fetched;	/* needed the primary */
	uint64_t	 reads_failed;	/* ended in an error */
	uint64_t	 bytes_local;
	uint64_t	 bytes_fetched;
};

/*
 * store and fetcher must outlive the fs. Returns NULL with errno; free
 * with fs_free().
 */
struct fs *fs_new(struct store *, struct fetcher *, const struct fs_conf *);
void	fs_free(struct fs *);

/* The operations table; the fs is the session's userdata. */
const struct fuse_lowlevel_ops *fs_ops(void);

/*
 * Starts the thread that sends the kernel cache invalidations queued by
 * fs_changed(), so that no FUSE handler waits on them. Call once the
 * session is mounted. Returns 0 or -1 with errno.
 */
int	fs_start(struct fs *, struct fuse_session *);

/*
 * A change on the primary, already in the store (a feed event, or what a
 * listing changed): queues the kernel cache invalidations for it. Never
 * blocks (the fetcher's network and finisher threads call it). A full
 * queue (QUEUE_MAX) drops the change: the kernel may then show the old
 * entry until its own timeouts, an hour for a closed folder's.
 */
void	fs_changed(struct fs *, const struct fetcher_change *);

void	fs_counters(struct fs *, struct fs_counters *out);

#endif
