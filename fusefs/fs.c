/*
 * Lock order: fs->qlock is a leaf; no other lock is held while taking it.
 * The store and the fetcher lock for themselves.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "dvrfs_status.h"
#include "dvrpath.h"
#include "fetcher.h"
#include "fs.h"
#include "log.h"
#include "store.h"
#include "vfile.h"

#define FILE_TIMEOUT	3600.0	/* closed segments never change */
#define DIR_TIMEOUT	1.0	/* the live edge does */
#define CLOSED_TIMEOUT	3600.0	/* a DVR folder whose time is over */
#define CLOSED_SETTLE	60	/* seconds after its end it is closed */
#define SNAP_SLOTS	64	/* folder listings kept between readdirs */
#define AHEAD_FIRST	2	/* segments read ahead at a viewer's first */
#define NEG_TIMEOUT	1.0
#define RELIST_AFTER	2	/* seconds before a miss re-lists a folder */
#define READDIR_TTL	5	/* seconds a listing is good for readdir */
#define QUEUE_MAX	4096
#define DOWN_WINDOW_MS	500	/* fail fast this long after an outage */

/*
 * Invalidations for the kernel: entry name of folder parent and the
 * folder's listing (name NULL: none), then inode id (0: none), only its
 * attributes if attrs is set, else its cached pages too.
 */
struct change {
	uint64_t	 id;
	uint64_t	 parent;
	char		*name;		/* last component */
	int		 attrs;
};

struct fs {
	struct store	*store;
	struct fetcher	*fetcher;
	struct fs_conf	 conf;
	struct fuse_session *se;

	pthread_mutex_t	 qlock;
	pthread_cond_t	 qcond;
	struct change	 queue[QUEUE_MAX];	/* under qlock */
	size_t		 qhead, qlen;		/* under qlock */
	int		 stopping;		/* under qlock */
	int		 notifier_running;
	pthread_t	 notifier;

	int64_t		 down_at;	/* atomic, ms: last read that found
					   the primary unreachable, 0 if none */
	uint64_t	 down_answers;	/* atomic: the fetcher's answers
					   then */
	int		 no_open;	/* the kernel opens files without
					   asking: reads come with no handle */
	int64_t		 mounted;	/* wall clock at fs_new(): the root's
					   times until the primary gives one */
	struct vf	*vf;		/* playlists and range files */
	int		 no_opendir;	/* the kernel opens folders without
					   asking, and keeps their listings:
					   readdirs come with no handle */
	pthread_mutex_t	 slock;
	struct dirsnap	*slots[SNAP_SLOTS];	/* under slock: the last
						   listing read of a folder,
						   by inode */

	/* Counters, atomic. */
	uint64_t	 reads_local, reads_fetched, reads_failed;
	uint64_t	 bytes_local, bytes_fetched;
};

/*
 * An open file: its complete data file once there is one. Only when the
 * kernel cannot open files without asking (fs->no_open unset).
 */
struct handle {
	uint64_t	 id;
	int		 fd;	/* atomic: -1 until the file is complete */
	int		 readahead_done;
};

/* A few entries, whole (read-ahead). */
struct entlist {
	struct store_ent *v;
	size_t		 n, cap;
};

/*
 * An open folder: what readdir reports of each child, names in one
 * arena, so that a folder of a million entries stays tens of megabytes.
 */
struct dent {
	uint64_t	 id;
	uint64_t	 size;
	int64_t		 mtime;
	size_t		 name;	/* offset in names */
	enum store_type	 type;
};

struct dirsnap {
	struct dent	*v;
	size_t		 n, cap;
	char		*names;
	size_t		 nlen, ncap;
	int		 loaded;	/* v holds the entries: a closed
					   folder's are read at the first
					   readdir, which the kernel's cache
					   of its listing mostly spares */
	uint64_t	 ino;		/* in fs.slots: its folder */
	int		 refs;		/* in fs.slots: under fs.slock, the
					   slot's and each reader's */
};

static int64_t
now_s(void)
{
	return (int64_t)time(NULL);
}

/* Maps what the fetcher says to what a reader should see. */
static int
read_errno(int e)
{
	switch (e) {
	case ENOENT:
	case ENOMEM:
	case ENOSPC:
		return e;
	default:
		return EIO;
	}
}

static int closed_dir(struct fs *, const struct store_ent *, int64_t *);

static void
ent_to_stat(struct fs *fs, const struct store_ent *e, struct stat *st)
{
	int64_t t = e->mtime;

	/* No listing carries the export's own folder: `ls -la` in a stream
	 * folder shows the mount's time for "..", not 1970. */
	if (e->id == STORE_ROOT_ID && t == 0)
		t = fs->mounted;
	/*
	 * A folder still being recorded into is dated by its last listing
	 * too: when the kernel keeps folders' listings (no_opendir), a new
	 * date is what makes it read a listing again.
	 */
	if (fs->no_opendir && e->type == STORE_DIR && e->listed > t &&
	    !closed_dir(fs, e, NULL))
		t = e->listed;
	memset(st, 0, sizeof(*st));
	st->st_ino = e->id;
	if (e->type == STORE_DIR) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
		st->st_size = 4096;
	} else if (e->type == STORE_LINK) {
		/* A stream alias: shown as what it is, not counted twice. */
		st->st_mode = S_IFLNK | 0777;
		st->st_nlink = 1;
		st->st_size = (off_t)e->size;
	} else {
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = (off_t)e->size;
	}
	st->st_blksize = 65536;
	st->st_blocks = (blkcnt_t)((st->st_size + 511) / 512);
	st->st_mtim.tv_sec = t;
	st->st_ctim.tv_sec = t;
	st->st_atim.tv_sec = t;
}

/*
 * The end of the time DVR folder rel can hold (STREAM/YYYY … /HH, or a
 * minute folder below an hour), or 0 when rel is no DVR folder.
 */
static int64_t
folder_end(const char *rel)
{
	char probe[PATH_MAX];
	int64_t t, span;

	if (dvrpath_span(rel, &t, &span) == 0)
		return t + span;
	/* A minute: the time of its first possible segment, plus 60 s. */
	if ((size_t)snprintf(probe, sizeof(probe), "%s/00.ts", rel) <
	    sizeof(probe) && dvrpath_time(probe, &t, NULL) == 0)
		return t + 60;
	return 0;
}

/*
 * Whether folder e is closed: a DVR folder whose time ended more than
 * CLOSED_SETTLE s ago, so that no recorder writes into it any more. Its
 * entries and listing may then stay in the kernel's caches; a change
 * the primary makes anyway comes through the feed or a listing, which
 * invalidate them (fs_changed). *end (may be NULL) receives the folder's
 * end.
 */
static int
closed_dir(struct fs *fs, const struct store_ent *e, int64_t *end)
{
	int64_t t;
	char *rel;

	if (e->type != STORE_DIR || e->id == STORE_ROOT_ID ||
	    (rel = store_path(fs->store, e->id)) == NULL)
		return 0;
	t = folder_end(rel);
	free(rel);
	if (end != NULL)
		*end = t;
	return t != 0 && t + CLOSED_SETTLE < now_s();
}

static void
ent_to_entry(struct fs *fs, const struct store_ent *e,
    struct fuse_entry_param *p)
{
	memset(p, 0, sizeof(*p));
	p->ino = e->id;
	p->generation = 1;
	ent_to_stat(fs, e, &p->attr);
	p->attr_timeout = e->type != STORE_DIR ? FILE_TIMEOUT :
	    closed_dir(fs, e, NULL) ? CLOSED_TIMEOUT : DIR_TIMEOUT;
	p->entry_timeout = p->attr_timeout;
}

/*
 * A DVR hour folder (STREAM/YYYY/MM/DD/HH) is listed with its whole
 * subtree in one request: an hour of segments is one or two pages, and
 * viewers go on to the next minutes.
 */
static int
is_hour_folder(const char *rel)
{
	int64_t t, span;

	return dvrpath_span(rel, &t, &span) == 0 && span == 3600;
}

/*
 * Lists folder d from the primary, waiting at most the read timeout.
 * Returns 0 or a positive errno value.
 */
static int
list_dir(struct fs *fs, const struct store_ent *d, int wait_ms)
{
	char *rel;
	int rc = 0;

	if ((rel = store_path(fs->store, d->id)) == NULL)
		return errno;
	if (fetcher_list(fs->fetcher, rel, is_hour_folder(rel), FETCH_VIEWER,
	    wait_ms) == -1) {
		rc = errno;
		log_debug("listing '%s': %s", rel, strerror(rc));
	}
	free(rel);
	return rc;
}

static int
has_child(void *arg, const struct store_ent *e)
{
	return 1;
}

/*
 * Makes sure folder d has been listed at least once, and again when it was
 * listed more than ttl seconds ago (ttl < 0: never again). On return *d is
 * up to date. A folder that was listed before stays usable while the
 * primary is down. Returns 0 or a positive errno value.
 */
static int
ensure_listed(struct fs *fs, struct store_ent *d, int ttl)
{
	int rc;

	if (d->listed != 0 && (ttl < 0 || now_s() - d->listed <= ttl))
		return 0;
	rc = list_dir(fs, d, fs->conf.timeout_ms);
	if (store_get(fs->store, d->id, d) == -1)
		return errno == ENOENT ? ENOENT : EIO;
	if (rc == 0 || d->listed != 0)
		return 0;
	if (rc == ENOENT)
		return ENOENT;
	/*
	 * Never listed itself, but the feed or a listing around it told
	 * what is in it: that serves while the primary is away.
	 */
	return store_readdir(fs->store, d->id, NULL, 1, has_child, NULL) == 1 ?
	    0 : EIO;
}

static int
do_lookup(struct fs *fs, fuse_ino_t parent, const char *name,
    struct store_ent *out)
{
	struct store_ent d;
	int rc;

	if (store_get(fs->store, parent, &d) == -1)
		return errno == ENOENT ? ENOENT : EIO;
	if (d.type != STORE_DIR)
		return ENOTDIR;
	if ((rc = ensure_listed(fs, &d, -1)) != 0)
		return rc;
	if (store_lookup(fs->store, parent, name, out) == 0)
		return 0;
	if (errno != ENOENT)
		return EIO;
	/* A miss at the live edge: the segment may be newer than the list. */
	if ((rc = ensure_listed(fs, &d, RELIST_AFTER)) != 0)
		return rc;
	if (store_lookup(fs->store, parent, name, out) == 0)
		return 0;
	return errno == ENOENT ? ENOENT : EIO;
}

static void
fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fuse_entry_param p;
	struct store_ent e;
	int rc;

	/*
	 * A playback name in a stream folder: a file of that name that the
	 * primary listed wins; else the mount answers it, without first
	 * asking the primary for the folder again.
	 */
	if (vf_claims(name) && store_get(fs->store, parent, &e) == 0 &&
	    e.parent == STORE_ROOT_ID) {
		if (store_lookup(fs->store, parent, name, &e) == 0)
			rc = 0;
		else {
			memset(&p, 0, sizeof(p));
			if ((rc = vf_lookup(fs->vf, &e, name, &p.attr,
			    &p.entry_timeout)) == 0) {
				p.ino = p.attr.st_ino;
				p.generation = 1;
				p.attr_timeout = p.entry_timeout;
				fuse_reply_entry(req, &p);
				return;
			}
		}
	} else
		rc = do_lookup(fs, parent, name, &e);
	if (rc == 0) {
		ent_to_entry(fs, &e, &p);
		fuse_reply_entry(req, &p);
	} else if (rc == ENOENT) {
		memset(&p, 0, sizeof(p));
		p.entry_timeout = NEG_TIMEOUT;
		fuse_reply_entry(req, &p);
	} else
		fuse_reply_err(req, rc);
}

static void
fs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	struct store_ent e;
	struct stat st;
	int rc;

	if (vf_is(ino)) {
		if ((rc = vf_getattr(fs->vf, ino, &st)) != 0)
			fuse_reply_err(req, rc);
		else
			fuse_reply_attr(req, &st, 0);
		return;
	}
	if (store_get(fs->store, ino, &e) == -1) {
		fuse_reply_err(req, errno == ENOENT ? ENOENT : EIO);
		return;
	}
	ent_to_stat(fs, &e, &st);
	fuse_reply_attr(req, &st, e.type != STORE_DIR ? FILE_TIMEOUT :
	    closed_dir(fs, &e, NULL) ? CLOSED_TIMEOUT : DIR_TIMEOUT);
}

static int
snap_add(void *arg, const struct store_ent *e)
{
	struct dirsnap *s = arg;
	size_t len = strlen(e->name) + 1, cap;
	struct dent *v;
	char *names;

	if (s->n == s->cap) {
		cap = s->cap ? s->cap * 2 : 64;
		if ((v = realloc(s->v, cap * sizeof(*v))) == NULL)
			return -1;
		s->v = v;
		s->cap = cap;
	}
	if (s->nlen + len > s->ncap) {
		cap = s->ncap ? s->ncap * 2 : 4096;
		while (cap < s->nlen + len)
			cap *= 2;
		if ((names = realloc(s->names, cap)) == NULL)
			return -1;
		s->names = names;
		s->ncap = cap;
	}
	memcpy(s->names + s->nlen, e->name, len);
	s->v[s->n].id = e->id;
	s->v[s->n].size = e->size;
	s->v[s->n].mtime = e->mtime;
	s->v[s->n].type = e->type;
	s->v[s->n++].name = s->nlen;
	s->nlen += len;
	return 0;
}

static void
snap_free(struct dirsnap *s)
{
	if (s == NULL)
		return;
	free(s->v);
	free(s->names);
	free(s);
}

static int
list_add(void *arg, const struct store_ent *e)
{
	struct entlist *l = arg;

	if (e->type != STORE_FILE)
		return 0;
	if (l->n < l->cap)
		l->v[l->n++] = *e;
	return l->n >= l->cap;
}

/* Reads folder ino's entries into s; 0 or a positive errno value. */
static int
snap_load(struct fs *fs, fuse_ino_t ino, struct dirsnap *s)
{
	if (store_readdir(fs->store, ino, NULL, SIZE_MAX, snap_add, s) == -1)
		return EIO;
	s->loaded = 1;
	return 0;
}

/*
 * A listing of folder ino: listed from the primary first when it may be
 * out of date (a closed folder listed since it closed never is). Its
 * entries are read now, or when first asked for if lazy is set and the
 * folder is closed (*closed says which). NULL with *rc, a positive errno.
 */
static struct dirsnap *
snap_new(struct fs *fs, fuse_ino_t ino, int lazy, int *closed, int *rc)
{
	struct dirsnap *s;
	struct store_ent d;
	int64_t end = 0;

	if (store_get(fs->store, ino, &d) == -1) {
		*rc = errno == ENOENT ? ENOENT : EIO;
		return NULL;
	}
	if (d.type != STORE_DIR) {
		*rc = ENOTDIR;
		return NULL;
	}
	*closed = closed_dir(fs, &d, &end);
	if ((*rc = ensure_listed(fs, &d, *closed && d.listed > end +
	    CLOSED_SETTLE ? -1 : READDIR_TTL)) != 0)
		return NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		*rc = ENOMEM;
		return NULL;
	}
	if ((!lazy || !*closed) && (*rc = snap_load(fs, ino, s)) != 0) {
		snap_free(s);
		return NULL;
	}
	return s;
}

/*
 * The listing for a readdir that came without a handle (no_opendir): a
 * new one at offset 0, where the kernel starts reading a folder, else
 * the one read last for this folder. Returned with a reference, given
 * back with snap_put(); NULL with *rc.
 */
static struct dirsnap *
snap_get(struct fs *fs, fuse_ino_t ino, off_t off, int *rc)
{
	size_t k = (size_t)(ino % SNAP_SLOTS);
	struct dirsnap *s, *old;
	int closed;

	if (off > 0) {
		pthread_mutex_lock(&fs->slock);
		if ((s = fs->slots[k]) != NULL && s->ino == ino) {
			s->refs++;
			pthread_mutex_unlock(&fs->slock);
			return s;
		}
		pthread_mutex_unlock(&fs->slock);
	}
	if ((s = snap_new(fs, ino, 0, &closed, rc)) == NULL)
		return NULL;
	s->ino = ino;
	s->refs = 2;
	pthread_mutex_lock(&fs->slock);
	old = fs->slots[k];
	fs->slots[k] = s;
	if (old != NULL && --old->refs > 0)
		old = NULL;
	pthread_mutex_unlock(&fs->slock);
	snap_free(old);
	return s;
}

static void
snap_put(struct fs *fs, struct dirsnap *s)
{
	int gone;

	pthread_mutex_lock(&fs->slock);
	gone = --s->refs == 0;
	pthread_mutex_unlock(&fs->slock);
	if (gone)
		snap_free(s);
}

/*
 * The folder's entries as they are when it is opened (a closed folder's
 * do not change: they are read when first asked for). When the kernel
 * can open folders on its own, it is told to, once: it then keeps every
 * folder's listing until the folder changes (see ent_to_stat and
 * fs_changed), and a second walk of a closed archive costs no request.
 */
static void
fs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	struct dirsnap *s;
	int rc, closed;

	if (fs->no_opendir) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	if ((s = snap_new(fs, ino, 1, &closed, &rc)) == NULL) {
		fuse_reply_err(req, rc);
		return;
	}
	fi->fh = (uintptr_t)s;
	/* The kernel keeps a closed folder's listing across opens. */
	fi->cache_readdir = closed;
	fi->keep_cache = closed;
	fuse_reply_open(req, fi);
}

static void
do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
    struct fuse_file_info *fi, int plus)
{
	struct fs *fs = fuse_req_userdata(req);
	struct dirsnap *s = (struct dirsnap *)(uintptr_t)fi->fh;
	struct fuse_entry_param p;
	struct stat st;
	size_t used = 0, n;
	char *buf;
	int rc, held = 0;

	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (s == NULL) {
		if ((s = snap_get(fs, ino, off, &rc)) == NULL) {
			fuse_reply_err(req, rc);
			return;
		}
		held = 1;
	}
	if (!s->loaded && (rc = snap_load(fs, ino, s)) != 0) {
		fuse_reply_err(req, rc);
		goto out;
	}
	if ((buf = malloc(size)) == NULL) {
		fuse_reply_err(req, ENOMEM);
		goto out;
	}
	/* Offsets 1 and 2 are "." and ".."; entry i is at offset i + 3. */
	for (; (size_t)off < s->n + 2; off++) {
		const char *name;

		memset(&p, 0, sizeof(p));
		if (off < 2) {
			name = off == 0 ? "." : "..";
			p.attr.st_ino = ino;
			p.attr.st_mode = S_IFDIR;
		} else {
			const struct dent *d = &s->v[off - 2];
			struct store_ent e = { .id = d->id, .type = d->type,
			    .size = d->size, .mtime = d->mtime };

			name = s->names + d->name;
			ent_to_entry(fs, &e, &p);
		}
		if (plus) {
			if (off < 2)
				p.ino = 0;
			n = fuse_add_direntry_plus(req, buf + used, size - used,
			    name, &p, off + 1);
		} else {
			st = p.attr;
			n = fuse_add_direntry(req, buf + used, size - used,
			    name, &st, off + 1);
		}
		if (n > size - used)
			break;
		used += n;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
out:
	if (held)
		snap_put(fs, s);
}

static void
fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
    struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, 0);
}

static void
fs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
    struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, 1);
}

static void
fs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	snap_free((struct dirsnap *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void
fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	struct store_ent e;
	struct handle *h;

	if ((fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (vf_is(ino)) {
		/* Each lookup made a new inode: nothing stale to keep. */
		fi->fh = 0;
		fi->noflush = 1;
		fuse_reply_open(req, fi);
		return;
	}
	if (fs->no_open) {
		/*
		 * The kernel then opens every file on its own, keeping its
		 * cache (the mount is read-only, the data immutable): one
		 * round trip less per open(2).
		 */
		fuse_reply_err(req, ENOSYS);
		return;
	}
	if (store_get(fs->store, ino, &e) == -1) {
		fuse_reply_err(req, errno == ENOENT ? ENOENT : EIO);
		return;
	}
	if (e.type != STORE_FILE) {
		fuse_reply_err(req, e.type == STORE_DIR ? EISDIR : ELOOP);
		return;
	}
	if ((h = calloc(1, sizeof(*h))) == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	h->id = ino;
	h->fd = e.state == STORE_COMPLETE ?
	    store_open_complete(fs->store, ino) : -1;
	fi->fh = (uintptr_t)h;
	fi->keep_cache = 1;
	fi->noflush = 1;
	fuse_reply_open(req, fi);
}

/*
 * Keeps fd, the complete data file of h, for the next reads of h; one
 * kept already by another reader wins and fd is closed. Returns the
 * descriptor kept.
 */
static int
handle_keep(struct handle *h, int fd)
{
	int want = -1;

	if (!__atomic_compare_exchange_n(&h->fd, &want, fd, 0,
	    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		close(fd);
		fd = want;
	}
	return fd;
}

static int
first_ent(void *arg, const struct store_ent *e)
{
	*(struct store_ent *)arg = *e;
	return 1;
}

/*
 * Viewers watch forward: queue the rest of this file and the next
 * segments of the stream (the following names in the folder, then the
 * next folder) as read-ahead, so that they arrive in parallel while the
 * viewer reads this one; a read that then waits for one raises it. A
 * viewer that keeps reading (this file is here or was asked ahead) gets
 * the next `readahead=` segments, one just arrived the next AHEAD_FIRST:
 * 100 viewers starting together do not ask for 8 segments each before
 * anyone watched one.
 */
static void
read_ahead(struct fs *fs, const struct store_ent *e)
{
	struct store_ent d, next;
	struct entlist s = { 0 };
	uint32_t bs = store_block_size(fs->store);
	size_t i;
	int want = fs->conf.readahead;

	if (want > AHEAD_FIRST && e->state != STORE_COMPLETE &&
	    !fetcher_fetching(fs->fetcher, e))
		want = AHEAD_FIRST;
	if (e->size > bs)
		fetcher_prefetch(fs->fetcher, e, 1, (e->size + bs - 1) / bs - 1,
		    FETCH_AHEAD);
	if (want <= 0 || (s.v = calloc((size_t)want, sizeof(*s.v))) == NULL)
		return;
	s.cap = (size_t)want;
	store_readdir(fs->store, e->parent, e->name, s.cap, list_add, &s);
	/* Past the folder's end: the first files of the next folder. */
	if (s.n < s.cap && store_get(fs->store, e->parent, &d) == 0 &&
	    d.parent != 0 && store_readdir(fs->store, d.parent, d.name, 1,
	    first_ent, &next) == 1 && next.type == STORE_DIR)
		store_readdir(fs->store, next.id, NULL, s.cap, list_add, &s);
	for (i = 0; i < s.n; i++)
		if (s.v[i].state != STORE_COMPLETE && s.v[i].size > 0)
			fetcher_prefetch(fs->fetcher, &s.v[i], 0,
			    (s.v[i].size + bs - 1) / bs, FETCH_AHEAD);
	free(s.v);
}

/*
 * Did a read find the primary unreachable or silent just now, with no
 * answer from it since? Then the kernel's other requests for the same
 * read(2) (its read-ahead, then its retry of the first page) fail at
 * once instead of each waiting out the timeout.
 */
static int
primary_down(struct fs *fs)
{
	struct fetcher_stats st;
	int64_t t = __atomic_load_n(&fs->down_at, __ATOMIC_RELAXED);

	if (t == 0 || clock_ms() - t > DOWN_WINDOW_MS)
		return 0;
	fetcher_stats(fs->fetcher, &st);
	return !st.connected || st.answers ==
	    __atomic_load_n(&fs->down_answers, __ATOMIC_RELAXED);
}

/* Notes that a read found the primary unreachable or silent now. */
static void
primary_lost(struct fs *fs)
{
	struct fetcher_stats st;

	fetcher_stats(fs->fetcher, &st);
	__atomic_store_n(&fs->down_answers, st.answers, __ATOMIC_RELAXED);
	__atomic_store_n(&fs->down_at, clock_ms(), __ATOMIC_RELAXED);
}

static void
reply_from_fd(fuse_req_t req, int fd, size_t size, off_t off)
{
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(size);

	bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	bv.buf[0].fd = fd;
	bv.buf[0].pos = off;
	fuse_reply_data(req, &bv, FUSE_BUF_SPLICE_MOVE);
}

/* A read of a playlist or range file (vfile.c): one reply. */
static void
read_virtual(fuse_req_t req, struct fs *fs, fuse_ino_t ino, size_t size,
    off_t off)
{
	size_t n;
	char *buf;
	int rc;

	if ((rc = vf_read(fs->vf, ino, size, (uint64_t)off, &buf, &n)) != 0) {
		__atomic_add_fetch(&fs->reads_failed, 1, __ATOMIC_RELAXED);
		fuse_reply_err(req, rc);
		return;
	}
	fuse_reply_buf(req, buf, n);
	free(buf);
}

static void
fs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct fs *fs = fuse_req_userdata(req);

	if (vf_is(ino))
		vf_forget(fs->vf, ino, nlookup);
	fuse_reply_none(req);
}

static void
fs_forget_multi(fuse_req_t req, size_t count,
    struct fuse_forget_data *forgets)
{
	struct fs *fs = fuse_req_userdata(req);
	size_t i;

	for (i = 0; i < count; i++)
		if (vf_is(forgets[i].ino))
			vf_forget(fs->vf, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

/*
 * A read: the entry looked up once, the fetcher decides how it is served
 * (fetcher_serve), the reply sent from the complete data file (splice) or
 * from the bytes in memory.
 */
static void
fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
    struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	struct fetch_data d = { .fd = -1 };
	struct store_ent e;
	int fd, ahead, flags = 0, err;

	if (vf_is(ino)) {
		read_virtual(req, fs, ino, size, off);
		return;
	}
	/*
	 * Only a read from the start is a viewer watching forward; a read
	 * elsewhere (a seek, random access) fetches just what it touches.
	 */
	ahead = off == 0 && (h == NULL || !__atomic_exchange_n(
	    &h->readahead_done, 1, __ATOMIC_RELAXED));
	fd = h != NULL ? __atomic_load_n(&h->fd, __ATOMIC_ACQUIRE) : -1;
	if (fd >= 0) {
		/* Complete when h last read it: it stays so. */
		__atomic_add_fetch(&fs->reads_local, 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(&fs->bytes_local, size, __ATOMIC_RELAXED);
		reply_from_fd(req, fd, size, off);
		if (ahead && store_get(fs->store, ino, &e) == 0)
			read_ahead(fs, &e);
		return;
	}
	if (store_get(fs->store, ino, &e) == -1) {
		err = errno;
		goto fail;
	}
	if (e.state != STORE_COMPLETE) {
		if (primary_down(fs))
			/* One wait per outage, not one per request of a read. */
			flags = FETCH_LOCAL;
		else if (ahead)
			/*
			 * The next segments first: they travel while the
			 * viewer waits for this one (queued after its answer,
			 * a reader going through a 20 ms link waited a round
			 * trip more per read-ahead window: 1.24 s instead of
			 * 0.98 for the bench's window).
			 */
			read_ahead(fs, &e);
	}
	if (fetcher_serve(fs->fetcher, &e, (uint64_t)off, size, FETCH_VIEWER,
	    fs->conf.timeout_ms, flags, &d) == -1) {
		err = errno;
		if (flags == 0 && (err == EHOSTDOWN || err == ETIMEDOUT))
			primary_lost(fs);
		goto fail;
	}
	if (d.fd >= 0) {
		__atomic_add_fetch(&fs->reads_local, 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(&fs->bytes_local, size, __ATOMIC_RELAXED);
		/* Least recently read goes first under max_size: a read
		 * from the start counts as one. */
		if (off == 0)
			store_touch(fs->store, ino);
		reply_from_fd(req, h != NULL ? handle_keep(h, d.fd) : d.fd,
		    size, off);
		if (h == NULL)
			close(d.fd);
		if (ahead && e.state == STORE_COMPLETE)
			read_ahead(fs, &e);	/* not done before the read */
		return;
	}
	__atomic_add_fetch(d.local ? &fs->reads_local : &fs->reads_fetched, 1,
	    __ATOMIC_RELAXED);
	__atomic_add_fetch(d.local ? &fs->bytes_local : &fs->bytes_fetched,
	    (uint64_t)d.len, __ATOMIC_RELAXED);
	store_touch(fs->store, ino);
	fuse_reply_buf(req, d.p, d.len);
	fetcher_release(fs->fetcher, &d);
	return;
fail:
	__atomic_add_fetch(&fs->reads_failed, 1, __ATOMIC_RELAXED);
	log_debug("read of %llu at %lld: %s", (unsigned long long)ino,
	    (long long)off, strerror(err));
	fuse_reply_err(req, read_errno(err));
}

static void
fs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;

	if (h != NULL && h->fd >= 0)
		close(h->fd);
	free(h);
	fuse_reply_err(req, 0);
}

static void
fs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = fuse_req_userdata(req);
	struct statvfs sv;

	if (statvfs(store_dir(fs->store), &sv) == -1)
		memset(&sv, 0, sizeof(sv));
	sv.f_namemax = 255;
	sv.f_flag |= ST_RDONLY;
	fuse_reply_statfs(req, &sv);
}

static const char xattr_store[] = DVRFS_XATTR_STORE;
static const char xattr_status[] = DVRFS_XATTR_STATUS;

static void
reply_xattr_value(fuse_req_t req, const char *v, size_t len, size_t size)
{
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (size < len)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, v, len);
}

/* The mount's root tells dvrfs-status where the store is and how it goes. */
static void
fs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct fs *fs = fuse_req_userdata(req);
	char path[PATH_MAX], *v;

	if (ino != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENODATA);
	} else if (strcmp(name, xattr_store) == 0) {
		if (realpath(store_dir(fs->store), path) == NULL)
			fuse_reply_err(req, EIO);
		else
			reply_xattr_value(req, path, strlen(path), size);
	} else if (strcmp(name, xattr_status) == 0 && fs->conf.status != NULL) {
		if ((v = fs->conf.status(fs->conf.status_arg)) == NULL) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		reply_xattr_value(req, v, strlen(v), size);
		free(v);
	} else
		fuse_reply_err(req, ENODATA);
}

static void
fs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	static const char names[] = DVRFS_XATTR_STORE "\0" DVRFS_XATTR_STATUS;

	if (ino != FUSE_ROOT_ID)
		reply_xattr_value(req, "", 0, size);
	else
		reply_xattr_value(req, names, sizeof(names), size);
}

static void
fs_init(void *userdata, struct fuse_conn_info *conn)
{
	struct fs *fs = userdata;

	if (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT) {
		conn->want |= FUSE_CAP_NO_OPEN_SUPPORT;
		fs->no_open = 1;
	}
	if (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT) {
		conn->want |= FUSE_CAP_NO_OPENDIR_SUPPORT;
		fs->no_opendir = 1;
	}
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE;
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO;
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
	conn->max_readahead = conn->max_readahead > (1u << 20) ?
	    conn->max_readahead : (1u << 20);
}

/* A symbolic link of the primary's: its target, inside the mount. */
static void
fs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = fuse_req_userdata(req);
	char *t;

	if (vf_is(ino) || (t = store_readlink(fs->store, ino)) == NULL) {
		fuse_reply_err(req, vf_is(ino) || errno == EINVAL ? EINVAL :
		    errno == ENOENT ? ENOENT : EIO);
		return;
	}
	fuse_reply_readlink(req, t);
	free(t);
}

static const struct fuse_lowlevel_ops ops = {
	.init = fs_init,
	.lookup = fs_lookup,
	.forget = fs_forget,
	.forget_multi = fs_forget_multi,
	.getattr = fs_getattr,
	.readlink = fs_readlink,
	.opendir = fs_opendir,
	.readdir = fs_readdir,
	.readdirplus = fs_readdirplus,
	.releasedir = fs_releasedir,
	.open = fs_open,
	.read = fs_read,
	.release = fs_release,
	.statfs = fs_statfs,
	.getxattr = fs_getxattr,
	.listxattr = fs_listxattr,
};

const struct fuse_lowlevel_ops *
fs_ops(void)
{
	return &ops;
}

/*
 * Queues invalidations (struct change) for the notifier; name is not
 * used without a parent, and may be NULL. A full queue drops them.
 * fs->qlock held.
 */
static void
queue_push(struct fs *fs, uint64_t parent, const char *name, uint64_t id,
    int attrs)
{
	struct change *q;

	if (fs->qlen == QUEUE_MAX)
		return;
	q = &fs->queue[(fs->qhead + fs->qlen) % QUEUE_MAX];
	q->name = NULL;
	if (parent != 0 && name != NULL && (q->name = strdup(name)) == NULL)
		return;
	q->id = id;
	q->parent = parent;
	q->attrs = attrs;
	fs->qlen++;
	pthread_cond_signal(&fs->qcond);
}

/*
 * What a listing changed: a name gone or replaced as the feed's changes
 * (the inode the kernel knows is the one before), a folder that gained
 * names loses its kept listing, one whose date changed its attributes.
 */
static void
queue_listing(struct fs *fs, const struct store_changes *ch)
{
	const struct store_change *sc;
	size_t i;

	for (i = 0; i < ch->n; i++) {
		sc = &ch->v[i];
		switch (sc->kind) {
		case STORE_CH_REMOVED:
		case STORE_CH_REPLACED:
			queue_push(fs, sc->parent, sc->name, sc->id, 0);
			break;
		case STORE_CH_NAMES:
		case STORE_CH_ATTR:
			queue_push(fs, 0, NULL, sc->id,
			    sc->kind == STORE_CH_ATTR);
			break;
		}
	}
}

void
fs_changed(struct fs *fs, const struct fetcher_change *c)
{
	const char *base;

	if (c->listing != NULL) {
		pthread_mutex_lock(&fs->qlock);
		queue_listing(fs, c->listing);
		pthread_mutex_unlock(&fs->qlock);
		return;
	}
	if (c->reset || c->name == NULL)
		return;
	base = strrchr(c->name, '/');
	base = base != NULL ? base + 1 : c->name;
	pthread_mutex_lock(&fs->qlock);
	queue_push(fs, c->parent, base, c->id, 0);
	pthread_mutex_unlock(&fs->qlock);
}

/* Tells the kernel what changed on the primary, off every request path. */
static void *
notifier_main(void *arg)
{
	struct fs *fs = arg;
	struct change c;

	pthread_mutex_lock(&fs->qlock);
	for (;;) {
		while (fs->qlen == 0 && !fs->stopping)
			pthread_cond_wait(&fs->qcond, &fs->qlock);
		if (fs->stopping)
			break;
		c = fs->queue[fs->qhead];
		fs->qhead = (fs->qhead + 1) % QUEUE_MAX;
		fs->qlen--;
		pthread_mutex_unlock(&fs->qlock);
		if (c.name != NULL) {
			fuse_lowlevel_notify_inval_entry(fs->se, c.parent,
			    c.name, strlen(c.name));
			/* Its folder's cached listing, kept if closed. */
			fuse_lowlevel_notify_inval_inode(fs->se, c.parent, 0, 0);
		}
		/* A negative offset: the attributes only. */
		if (c.id != 0)
			fuse_lowlevel_notify_inval_inode(fs->se, c.id,
			    c.attrs ? -1 : 0, 0);
		free(c.name);
		pthread_mutex_lock(&fs->qlock);
	}
	pthread_mutex_unlock(&fs->qlock);
	return NULL;
}

struct fs *
fs_new(struct store *store, struct fetcher *fetcher, const struct fs_conf *conf)
{
	struct vf_conf vfc;
	struct fs *fs;

	if ((fs = calloc(1, sizeof(*fs))) == NULL)
		return NULL;
	fs->store = store;
	fs->fetcher = fetcher;
	fs->conf = *conf;
	fs->mounted = (int64_t)time(NULL);
	vfc.timeout_ms = conf->timeout_ms;
	vfc.depth = conf->depth > 0 ? conf->depth : 7 * 86400;
	if ((fs->vf = vf_new(store, fetcher, &vfc)) == NULL) {
		free(fs);
		return NULL;
	}
	pthread_mutex_init(&fs->qlock, NULL);
	pthread_cond_init(&fs->qcond, NULL);
	pthread_mutex_init(&fs->slock, NULL);
	return fs;
}

int
fs_start(struct fs *fs, struct fuse_session *se)
{
	int rc;

	fs->se = se;
	if ((rc = pthread_create(&fs->notifier, NULL, notifier_main, fs)) != 0)
		return errno = rc, -1;
	fs->notifier_running = 1;
	return 0;
}

void
fs_free(struct fs *fs)
{
	size_t i;

	if (fs == NULL)
		return;
	pthread_mutex_lock(&fs->qlock);
	fs->stopping = 1;
	pthread_cond_signal(&fs->qcond);
	pthread_mutex_unlock(&fs->qlock);
	if (fs->notifier_running)
		pthread_join(fs->notifier, NULL);
	while (fs->qlen > 0) {
		free(fs->queue[fs->qhead].name);
		fs->qhead = (fs->qhead + 1) % QUEUE_MAX;
		fs->qlen--;
	}
	pthread_mutex_destroy(&fs->qlock);
	pthread_cond_destroy(&fs->qcond);
	for (i = 0; i < SNAP_SLOTS; i++)
		snap_free(fs->slots[i]);
	pthread_mutex_destroy(&fs->slock);
	vf_free(fs->vf);
	free(fs);
}

void
fs_counters(struct fs *fs, struct fs_counters *out)
{
	out->reads_local = __atomic_load_n(&fs->reads_local, __ATOMIC_RELAXED);
	out->reads_fetched = __atomic_load_n(&fs->reads_fetched,
	    __ATOMIC_RELAXED);
	out->reads_failed = __atomic_load_n(&fs->reads_failed, __ATOMIC_RELAXED);
	out->bytes_local = __atomic_load_n(&fs->bytes_local, __ATOMIC_RELAXED);
	out->bytes_fetched = __atomic_load_n(&fs->bytes_fetched,
	    __ATOMIC_RELAXED);
}
