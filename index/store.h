/*
 * store: the secondary's local store — which remote files and folders the
 * primary has (the namespace last seen, so the mount works while the
 * primary is down), which byte blocks of each file are here, and complete
 * verified files.
 *
 * Layout of a store folder:
 *   STORE/index.db	SQLite (WAL): entries, block bitmaps, settings
 *   STORE/data/	only complete files whose SHA-256 matched the primary's,
 *			at the primary's relative paths (a valid DVR tree)
 *   STORE/partial/	data of incomplete files, one sparse file per entry
 *   STORE/tmp/		whole files being written before their rename
 *
 * Entries are numbered; the number is stable for the life of the entry
 * and is used as the inode number by the mount. The export's root is
 * STORE_ROOT_ID. An entry's remote identity is (size, mtime, sha256); when
 * the primary reports a different identity the local data is dropped. A
 * hash not known yet is no difference: a file whose hash becomes known
 * with the same size and mtime is the same file (its verified blocks
 * stay), and the hash of a file verified against a digest the primary
 * sent with its bytes is recorded on the entry. A link's identity is
 * (mtime, target).
 *
 * Convention: 0 on success, -1 with errno on failure; pointers NULL with
 * errno. Every function is thread-safe (the store serialises its own
 * access); readers never wait on a writer's fsync.
 */
#ifndef DVRFS_STORE_H
#define DVRFS_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define STORE_ROOT_ID		1
#define STORE_BLOCK_DEFAULT	(1024 * 1024)

struct store;

struct store_conf {
	uint32_t	 block_size;	/* 0: STORE_BLOCK_DEFAULT, or the store's */
	uint64_t	 max_bytes;	/* 0: no size cap */
	int		 readonly;	/* open for dvrfs-status: no writes */
};

/* A link is a symbolic link of the primary's, inside the export. */
enum store_type { STORE_FILE = 'f', STORE_DIR = 'd', STORE_LINK = 'l' };
enum store_state { STORE_NONE = 0, STORE_PARTIAL = 1, STORE_COMPLETE = 2 };

struct store_ent {
	uint64_t	 id;
	uint64_t	 parent;	/* 0 for the root */
	char		 name[256];	/* "" for the root */
	enum store_type	 type;
	uint64_t	 size;		/* files; links: the target's length */
	int64_t		 mtime;
	char		 sha256[65];	/* files: lowercase hex, or "" while
					   not known (neither the primary nor
					   a verified fetch has told it) */
	enum store_state state;		/* files */
	uint64_t	 have;		/* files: bytes present locally */
	int64_t		 listed;	/* folders: when last listed, 0 never */
};

/* One entry as the primary reports it, in a listing or the feed. */
struct store_remote {
	const char	*name;		/* path relative to the listed folder */
	enum store_type	 type;
	uint64_t	 size;
	int64_t		 mtime;
	const char	*sha256;	/* files: 64 lowercase hex digits, or
					   NULL or "" when the primary does not
					   know it yet */
	const char	*target;	/* links: the link's text, which must
					   stay inside the export */
};

/*
 * Opens (creating if needed) the store in dir and recovers from a crash:
 * removes leftovers in tmp/, drops block bits whose data may not be
 * durable, completes or undoes installs in flight. Then a background
 * pass re-checks, a thousand files a second at most and holding no lock
 * while it reads, that every entry marked complete has its data file; it
 * goes on where the last open left it.
 * conf may be NULL for defaults. The block size is fixed when the store
 * is created; a different non-zero conf->block_size later is EINVAL.
 * An index written by a newer version of the store is refused with
 * EPROTONOSUPPORT and left as it is; an older one is brought up to date
 * in one transaction (not when conf->readonly).
 * Returns NULL with errno on failure. Free with store_close().
 */
struct store *store_open(const char *dir, const struct store_conf *conf);
/* Flushes pending block marks and closes. Accepts NULL. */
void	store_close(struct store *);

uint32_t store_block_size(const struct store *);
/* The store's folder, as given to store_open(). */
const char *store_dir(const struct store *);

/* Namespace queries. -1 with ENOENT when there is no such entry. */
int	store_get(struct store *, uint64_t id, struct store_ent *out);
int	store_lookup(struct store *, uint64_t parent, const char *name,
	    struct store_ent *out);
/* Walks rel ("" is the root) from the root. */
int	store_resolve(struct store *, const char *rel, struct store_ent *out);
/* The entry's path relative to the root; malloc'd, the caller frees. */
char	*store_path(struct store *, uint64_t id);
/* The target of link id; malloc'd, the caller frees. EINVAL: not a link. */
char	*store_readlink(struct store *, uint64_t id);

/*
 * Calls cb for the children of folder dir in byte-wise name order,
 * starting after the name `after` (NULL or "" from the first), at most max
 * of them. cb returns non-zero to stop early. Returns the number of
 * entries passed to cb, or -1.
 */
ssize_t	store_readdir(struct store *, uint64_t dir, const char *after,
	    size_t max, int (*cb)(void *arg, const struct store_ent *),
	    void *arg);

/*
 * Every child of folder dir, in name order, as a malloc'd array in *v
 * (the caller frees it; NULL when there are none) and its length in *n.
 * Returns 0, or -1 with errno (*v NULL, *n 0).
 */
/* A child as store_scan_dir() passes it: name is valid during the call. */
struct store_row {
	uint64_t	 id;
	const char	*name;
	size_t		 namelen;
	enum store_type	 type;
	uint64_t	 size;
	int64_t		 mtime;
	enum store_state state;
	uint64_t	 have;
};

/*
 * Every child of folder dir, in name order, for walks over the whole
 * store: cb is called with the store's read lock held (it must not call
 * the store) and returns non-zero to stop. Returns the number of children
 * passed to cb, or -1 (EIO: a corrupt record).
 */
ssize_t	store_scan_dir(struct store *, uint64_t dir,
	    int (*cb)(void *arg, const struct store_row *), void *arg);

int	store_children(struct store *, uint64_t dir, struct store_ent **v,
	    size_t *n);

/*
 * Records a listing of folder dir (a path relative to the root, "" for the
 * root) in one transaction. Names in v are relative to dir and may have
 * several components (a recursive listing); missing parent folders are
 * created. An entry whose remote identity changed loses its local data.
 * If complete is set, v is everything below dir (recursive) or everything
 * in dir (not recursive): entries the primary no longer has are removed
 * with their local data, and the folders covered get listed = now.
 * If ids is not NULL, ids[i] receives the id of v[i].
 */
int	store_apply_listing(struct store *, const char *dir,
	    const struct store_remote *v, size_t n, int recursive,
	    int complete, int64_t now, uint64_t *ids);

/*
 * What a listing changed of what the store had, for the caches of those
 * who showed it before (the kernel's). A folder the listing created, and
 * what is below it, is new to everyone and not reported.
 */
enum store_change_kind {
	STORE_CH_REMOVED,	/* parent/name is gone, with its subtree */
	STORE_CH_REPLACED,	/* parent/name is a new entry: a file's size,
				   mtime or hash changed, a link's target, or
				   the entry's type */
	STORE_CH_NAMES,		/* folder id gained names (a name lost is
				   STORE_CH_REMOVED) */
	STORE_CH_ATTR		/* folder id's mtime changed */
};

struct store_change {
	enum store_change_kind kind;
	uint64_t	 id;		/* REMOVED, REPLACED: the entry's id
					   before; else the folder */
	uint64_t	 parent;	/* REMOVED, REPLACED: its folder; else 0 */
	char		*name;		/* REMOVED, REPLACED: its name (one
					   component); else NULL */
};

/* A list of changes; zeroed to start, emptied by store_changes_clear(). */
struct store_changes {
	struct store_change *v;
	size_t		 n, cap;
};

/* Frees the changes in c and leaves it empty. Accepts NULL. */
void	store_changes_clear(struct store_changes *c);

/*
 * A complete listing taken while the feed may have added entries: as
 * store_apply_listing(complete), except that an entry the listing lacks
 * is removed only if its id is at most before — the store_last_id() read
 * before the listing was asked for. Newer entries came from the feed.
 * If changes is not NULL, what the listing changed is added to it (each
 * folder once); nothing when the store had it all. On failure nothing
 * is added.
 */
int	store_apply_snapshot(struct store *, const char *dir,
	    const struct store_remote *v, size_t n, int recursive,
	    int64_t now, uint64_t before, uint64_t *ids,
	    struct store_changes *changes);

/* The highest entry id so far (ids only grow). 0 on error. */
uint64_t store_last_id(struct store *);

/*
 * One change from the primary's feed: r->name is relative to the root;
 * deleted removes the entry (and its subtree and local data), otherwise
 * the entry is created or updated as in store_apply_listing(). *id
 * receives the entry's id (0 if deleted), *parent its parent's; either may
 * be NULL.
 */
int	store_apply_event(struct store *, const struct store_remote *r,
	    int deleted, uint64_t *id, uint64_t *parent);

/*
 * Is every byte of [off, off+len) of file id here and checked, ready to
 * be served? Returns 1 if so, 0 if not (then *missing, when not NULL, is
 * the offset of the first such block's start), -1 on error. len is
 * clipped to the file size. Unchecked blocks (store_write_unchecked) are
 * not, until the whole file has verified.
 */
int	store_have(struct store *, uint64_t id, uint64_t off, uint64_t len,
	    uint64_t *missing);

/*
 * The first block at or after block `from` of file id that is not here
 * at all, checked or not, into *block. Returns 1, 0 when every block
 * from there on is here (or the file is complete), -1 on error.
 */
int	store_next_missing(struct store *, uint64_t id, uint64_t from,
	    uint64_t *block);

/*
 * Reads up to len bytes at off of file id from local data (data/ when
 * complete, else partial/). The caller has checked with store_have().
 * Returns bytes read (short only at end of file), or -1.
 */
ssize_t	store_pread(struct store *, uint64_t id, void *buf, size_t len,
	    uint64_t off);

/*
 * Opens the complete data file of id read-only for serving (the caller
 * closes it). -1 with ENOENT if the file is not complete.
 */
int	store_open_complete(struct store *, uint64_t id);

/*
 * Stores block number `block` of file id (len bytes: the block size, or
 * what is left of the file for the last block), which the caller has
 * checked against a digest the primary sent for exactly these bytes: it
 * may be served alone. The bytes are readable at once through
 * store_pread(); the block's bit is recorded only after the data is
 * durable (group commit by a background thread, no fsync per call). When
 * the last block arrives the file is verified against its sha256 when
 * known (else its hash is computed and recorded) and, if it matches,
 * moved into data/ and marked complete; if it does not, every block of
 * the file is dropped, store_stats counts a hash failure and the call
 * fails with EBADMSG. Writing to a file that is already complete does
 * nothing. Returns 0, or -1 with errno (EINVAL for a bad block number or
 * length, ENOENT if the entry is gone or was replaced meanwhile, ENOSPC,
 * EBADMSG).
 */
int	store_write_block(struct store *, uint64_t id, uint64_t block,
	    const void *buf, size_t len);
/*
 * store_write_block() of a block that no digest of its own vouches for
 * (an origin that sends none): it is checked only with the whole file,
 * whose sha256 must be known (else EINVAL); until then store_have() does
 * not count it, and it is kept in memory only (not recorded: a restart
 * fetches it again).
 */
int	store_write_unchecked(struct store *, uint64_t id, uint64_t block,
	    const void *buf, size_t len);

/*
 * Stores a whole file at once (the crawler's path): verifies buf against
 * the entry's size and sha256, writes it to tmp/, fsyncs, renames it into
 * data/, syncs the folder, marks it complete. -1 with EBADMSG on a size or
 * hash mismatch (nothing is kept), ENOENT, ENOSPC.
 */
int	store_put_file(struct store *, uint64_t id, const void *buf,
	    size_t len);

/*
 * store_put_file() for a caller that has computed buf's SHA-256 already
 * (digest): the store checks that digest, not the bytes again. An entry
 * whose hash is not known takes digest as its hash (which must not be
 * NULL then: EINVAL): the caller has checked buf against the digest the
 * primary sent with it (Repr-Digest). With
 * flags STORE_COLD (no reader expected to read it from the store soon:
 * the fetcher's copies, whose readers were served from memory) the
 * bytes go around the page cache (O_DIRECT where the file system takes
 * it and buf is STORE_ALIGN-aligned): the copy costs no page-cache work
 * and does not push out what viewers read.
 */
#define STORE_COLD	1
#define STORE_ALIGN	4096
int	store_put_verified(struct store *, uint64_t id, const void *buf,
	    size_t len, const uint8_t digest[32], int flags);

/* Notes that file id was read now (for eviction by least recent read). */
void	store_touch(struct store *, uint64_t id);

/*
 * Retention: drops the local data of files older than depth seconds at
 * time now. A segment's time comes from its DVR path
 * (STREAM/YYYY/MM/DD/HH/MM/SS.ext); other files use their mtime. Then,
 * when a size cap is set and exceeded, evicts least-recently-read files
 * down to 98 % of the cap. Both drop a batch of files per transaction.
 * Returns the number of files dropped, or -1.
 */
ssize_t	store_expire(struct store *, int64_t now, int64_t depth);

/*
 * Retention of one folder with a depth of its own (a stream with a
 * shorter depth than the store's): drops the local data of the files
 * below rel older than depth seconds at time now. A missing folder drops
 * nothing. Returns the number of files dropped, or -1.
 */
ssize_t	store_expire_under(struct store *, const char *rel, int64_t now,
	    int64_t depth);

/*
 * The size cap (conf.max_bytes, 0 for none) in *cap and, when there is
 * one, the bytes of local data now in *used. Returns 0, or -1.
 */
int	store_room(struct store *, uint64_t *used, uint64_t *cap);

/*
 * The bytes of local data the index records (partial files' blocks
 * present, complete files' sizes) as of the last commit, in *out: a
 * counter kept with every change, no scan. Returns 0, or -1.
 */
int	store_local_bytes(struct store *, uint64_t *out);

/* Flushes pending block marks now (waits for their fsync). */
int	store_sync(struct store *);

/*
 * Re-checks now every file marked complete (store_open starts the same
 * check in the background, paced): a data file that is missing or has
 * the wrong size resets the entry to NONE. Returns 0, or -1.
 */
ssize_t	store_check(struct store *);

struct store_stats {
	uint64_t	 files;		/* remote files known */
	uint64_t	 bytes;		/* their total size */
	uint64_t	 complete_files;
	uint64_t	 complete_bytes;
	uint64_t	 partial_files;
	uint64_t	 partial_bytes;	/* bytes present of partial files */
	uint64_t	 hash_failures;	/* since the store was created */
};

/*
 * Totals over the files below rel ("" for all), restricted to segments
 * whose time is at or after since (0: no restriction).
 */
int	store_stats(struct store *, const char *rel, int64_t since,
	    struct store_stats *out);

/*
 * Where the primary's feed of changes stood for this store: token names
 * the feed (the origin's epoch and where it is), seq the last change
 * applied. store_feed_set() must be called only once every change up to
 * seq is in the store; it is a transaction of its own, after theirs.
 * store_feed_get() copies the token (truncated to len - 1) and returns 0,
 * or -1 with ENOENT when none was recorded.
 */
int	store_feed_get(struct store *, char *token, size_t len,
	    uint64_t *seq);
int	store_feed_set(struct store *, const char *token, uint64_t seq);

/* store_stats()' hash_failures alone, without a scan of the store. */
uint64_t store_hash_failures(struct store *);

#endif
