/*
 * vfile: virtual files of the stream folders. A lookup gathers the
 * stream's segments in the range from the store, listing from the primary
 * the hour folders (STREAM/YYYY/MM/DD/HH) that may have changed since
 * they were last listed, then asks playback.c for the text.
 *
 * Lock order: vf.lock only; the store and the fetcher are never called
 * with it held.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "fetcher.h"
#include "log.h"
#include "playback.h"
#include "store.h"
#include "vfile.h"

#define VF_BUCKETS	1024
#define VF_MAX		65536	/* virtual files alive at once */
#define VF_RELIST	2	/* seconds: an open hour listed longer ago
				   is listed again */
#define VF_SETTLE	60	/* seconds after its end an hour is closed */
#define VF_OFFLINE_MS	1000	/* a primary not answering: the wait */
#define VF_STATUS_RELIST 30	/* seconds between listings of a stream
				   for recording_status.json */

struct vfile {
	uint64_t	 ino;
	enum pb_kind	 kind;
	int64_t		 mtime;
	uint64_t	 size;
	char		*text;		/* playlists and JSON */
	struct pb_seg	*segs;		/* PB_TS: the segments, */
	uint64_t	*offs;		/* where each starts in the file */
	size_t		 nsegs;
	uint64_t	 nlookup;	/* under vf.lock */
	int		 refs;		/* under vf.lock: reads under way */
	struct vfile	*next;		/* under vf.lock: in its bucket */
};

struct vf {
	struct store	*store;
	struct fetcher	*fetcher;
	struct vf_conf	 conf;
	pthread_mutex_t	 lock;
	struct vfile	*tab[VF_BUCKETS];	/* under lock */
	size_t		 count;			/* under lock */
	uint64_t	 next_ino;		/* under lock */
};

/* The segments of a stream, and their paths, being gathered. */
struct gather {
	struct pb_seg	*v;
	size_t		 n, cap;
	char		*names;
	size_t		 nlen, ncap;
	int		 offline;	/* a listing failed: use the store */
};

static void
vfile_free(struct vfile *v)
{
	if (v == NULL)
		return;
	free(v->text);
	free(v->segs);
	free(v->offs);
	free(v);
}

struct vf *
vf_new(struct store *store, struct fetcher *fetcher, const struct vf_conf *c)
{
	struct vf *vf;

	if ((vf = calloc(1, sizeof(*vf))) == NULL)
		return NULL;
	vf->store = store;
	vf->fetcher = fetcher;
	vf->conf = *c;
	vf->next_ino = VF_INO_BASE;
	pthread_mutex_init(&vf->lock, NULL);
	return vf;
}

void
vf_free(struct vf *vf)
{
	struct vfile *v, *next;
	size_t i;

	if (vf == NULL)
		return;
	for (i = 0; i < VF_BUCKETS; i++)
		for (v = vf->tab[i]; v != NULL; v = next) {
			next = v->next;
			vfile_free(v);
		}
	pthread_mutex_destroy(&vf->lock);
	free(vf);
}

static int
add_seg(struct gather *g, int64_t t, const struct store_ent *e,
    const char *rel)
{
	size_t len = strlen(rel) + 1, cap;
	struct pb_seg *v;
	char *names;

	if (g->n == g->cap) {
		cap = g->cap ? g->cap * 2 : 1024;
		if ((v = realloc(g->v, cap * sizeof(*v))) == NULL)
			return ENOMEM;
		g->v = v;
		g->cap = cap;
	}
	if (g->nlen + len > g->ncap) {
		cap = g->ncap ? g->ncap * 2 : 32768;
		while (cap < g->nlen + len)
			cap *= 2;
		if (cap > UINT32_MAX || (names = realloc(g->names, cap)) == NULL)
			return ENOMEM;
		g->names = names;
		g->ncap = cap;
	}
	memcpy(g->names + g->nlen, rel, len);
	g->v[g->n++] = (struct pb_seg){ .t = t, .id = e->id, .size = e->size,
	    .rel = (uint32_t)g->nlen, .local = e->state == STORE_COMPLETE };
	g->nlen += len;
	return 0;
}

/* Two digits in [0, max] at s, the whole of a name of len 2 + extlen. */
static int
two_digits(const char *s, int max)
{
	int v;

	if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
		return -1;
	v = (s[0] - '0') * 10 + (s[1] - '0');
	return v <= max ? v : -1;
}

/*
 * Makes sure the store's view of hour folder rel (starting at hour) is
 * fresh enough: listed after the hour closed, or within VF_RELIST s.
 * Returns 0 (*e is the folder), ENOENT when the primary has no such
 * folder, or an errno value when it could not be asked and the store
 * never saw the folder listed.
 */
static int
hour_ready(struct vf *vf, struct gather *g, const char *rel, int64_t hour,
    int64_t deadline, struct store_ent *e)
{
	struct fetcher_stats fs;
	int64_t now = (int64_t)time(NULL), left;
	int known, err;

	known = store_resolve(vf->store, rel, e) == 0 && e->type == STORE_DIR &&
	    e->listed != 0;
	if (known && (e->listed > hour + 3600 + VF_SETTLE ||
	    now - e->listed < VF_RELIST))
		return 0;
	left = deadline - clock_ms();
	/* A primary that did not answer the last request gets a second
	 * to answer now, not the whole timeout again. */
	fetcher_stats(vf->fetcher, &fs);
	if (!fs.connected && left > VF_OFFLINE_MS)
		left = VF_OFFLINE_MS;
	if (g->offline || left <= 0)
		err = ETIMEDOUT;
	else if (fetcher_list(vf->fetcher, rel, 1, FETCH_VIEWER,
	    (int)left) == 0)
		err = 0;
	else
		err = errno;
	if (err == ENOENT)
		return ENOENT;
	if (err != 0)
		g->offline = 1;
	if (store_resolve(vf->store, rel, e) == 0 && e->type == STORE_DIR &&
	    e->listed != 0)
		return 0;
	return err != 0 ? err : ENOENT;
}

/* Adds the segments of hour folder h (YYYY/MM/DD/HH below the stream). */
static int
add_hour(struct vf *vf, struct gather *g, const struct store_ent *h,
    const char *hrel, int64_t hour)
{
	struct store_ent *mins = NULL, *files = NULL;
	size_t nm = 0, nf = 0, i, k;
	char rel[32];
	int m, s, rc = 0;

	if (store_children(vf->store, h->id, &mins, &nm) == -1)
		return EIO;
	for (i = 0; rc == 0 && i < nm; i++) {
		if (mins[i].type != STORE_DIR || strlen(mins[i].name) != 2 ||
		    (m = two_digits(mins[i].name, 59)) < 0)
			continue;
		if (store_children(vf->store, mins[i].id, &files, &nf) == -1) {
			rc = EIO;
			break;
		}
		for (k = 0; rc == 0 && k < nf; k++) {
			if (files[k].type != STORE_FILE ||
			    strlen(files[k].name) != 5 ||
			    strcmp(files[k].name + 2, ".ts") != 0 ||
			    (s = two_digits(files[k].name, 60)) < 0)
				continue;
			/* Both names were checked: 2 and 5 bytes. */
			snprintf(rel, sizeof(rel), "%.13s/%.2s/%.5s", hrel,
			    mins[i].name, files[k].name);
			rc = add_seg(g, hour + m * 60 + s, &files[k], rel);
		}
		free(files);
		files = NULL;
	}
	free(mins);
	return rc;
}

/*
 * The segments of stream (its name in dir) that start in the hours
 * covering [from, to), in time order. Returns 0 or an errno value.
 */
static int
gather(struct vf *vf, const struct store_ent *dir, int64_t from, int64_t to,
    int list, struct gather *g)
{
	int64_t hour, deadline = clock_ms() + vf->conf.timeout_ms;
	char rel[PATH_MAX], *hrel;
	struct store_ent h;
	struct tm tm;
	time_t tt;
	size_t sl;
	int rc;

	sl = (size_t)snprintf(rel, sizeof(rel), "%s/", dir->name);
	if (sl >= sizeof(rel) - 32)
		return ENAMETOOLONG;
	hrel = rel + sl;
	for (hour = from - from % 3600; hour < to; hour += 3600) {
		tt = (time_t)hour;
		if (gmtime_r(&tt, &tm) == NULL)
			return EINVAL;
		snprintf(hrel, sizeof(rel) - sl, "%04d/%02d/%02d/%02d",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour);
		if (list)
			rc = hour_ready(vf, g, rel, hour, deadline, &h);
		else
			rc = store_resolve(vf->store, rel, &h) == 0 ? 0 : ENOENT;
		if (rc == ENOENT)
			continue;
		if (rc != 0 || (rc = add_hour(vf, g, &h, hrel, hour)) != 0)
			return rc;
	}
	return 0;
}

/*
 * recording_status.json covers the whole depth: the stream is listed
 * with its subtree (at most every VF_STATUS_RELIST s; the feed keeps it
 * current between), and the hours are then read from the store.
 */
static int
gather_depth(struct vf *vf, const struct store_ent *dir, int64_t now,
    struct gather *g)
{
	if (now - dir->listed >= VF_STATUS_RELIST &&
	    fetcher_list(vf->fetcher, dir->name, 1, FETCH_VIEWER,
	    vf->conf.timeout_ms) == -1) {
		if (dir->listed == 0)
			return errno == ENOENT ? ENOENT : EIO;
		log_debug("%s: listing for recording_status.json: %s",
		    dir->name, strerror(errno));
	}
	return gather(vf, dir, now - vf->conf.depth, now + 1, 0, g);
}

/* Fills v's content for name n of stream dir at time now. */
static int
make(struct vf *vf, const struct store_ent *dir, const struct pb_name *n,
    int64_t now, struct vfile *v)
{
	struct gather g = { 0 };
	size_t first, end, len = 0, i;
	int64_t from = n->from, to = n->from + n->duration;
	double sp;
	int rc;

	if (n->kind == PB_LIVE)
		from = now - 3600, to = now + 1;
	/* A segment that starts just before from may run into the range. */
	if (n->kind == PB_STATUS)
		rc = gather_depth(vf, dir, now, &g);
	else
		rc = gather(vf, dir, from - 60, n->kind == PB_EVENT ? now + 1 :
		    to, 1, &g);
	if (rc != 0)
		goto out;
	sp = pb_spacing(g.v, g.n);
	rc = ENOENT;
	if (n->kind == PB_STATUS) {
		v->text = pb_status(dir->name, g.v, g.n, sp, &len);
	} else {
		if (n->kind == PB_LIVE) {
			end = g.n;
			first = end > PB_LIVE_WINDOW ? end - PB_LIVE_WINDOW : 0;
		} else
			pb_range(g.v, g.n, from, n->kind == PB_EVENT ? now + 1 :
			    to, sp, &first, &end);
		if (first == end)
			goto out;
		if (n->kind == PB_TS) {
			v->nsegs = end - first;
			v->segs = malloc(v->nsegs * sizeof(*v->segs));
			v->offs = malloc((v->nsegs + 1) * sizeof(*v->offs));
			if (v->segs == NULL || v->offs == NULL) {
				rc = ENOMEM;
				goto out;
			}
			memcpy(v->segs, g.v + first, v->nsegs * sizeof(*v->segs));
			v->offs[0] = 0;
			for (i = 0; i < v->nsegs; i++)
				v->offs[i + 1] = v->offs[i] + v->segs[i].size;
			v->size = v->offs[v->nsegs];
			rc = 0;
			goto out;
		}
		v->text = pb_m3u8(n->kind, g.v, first, end, sp, g.names, &len);
	}
	if (v->text == NULL) {
		rc = errno != 0 ? errno : ENOMEM;
		goto out;
	}
	v->size = len;
	rc = 0;
out:
	free(g.v);
	free(g.names);
	return rc;
}

static size_t
bucket(uint64_t ino)
{
	return (size_t)(ino % VF_BUCKETS);
}

int
vf_claims(const char *name)
{
	struct pb_name n;

	return pb_parse(name, (int64_t)time(NULL), &n) == 0;
}

int
vf_lookup(struct vf *vf, const struct store_ent *dir, const char *name,
    struct stat *st, double *timeout)
{
	int64_t now = (int64_t)time(NULL);
	struct pb_name n;
	struct vfile *v;
	int rc;

	if (dir->parent != STORE_ROOT_ID || pb_parse(name, now, &n) == -1)
		return ENOENT;
	if ((v = calloc(1, sizeof(*v))) == NULL)
		return ENOMEM;
	v->kind = n.kind;
	v->mtime = now;
	if ((rc = make(vf, dir, &n, now, v)) != 0) {
		vfile_free(v);
		return rc;
	}
	pthread_mutex_lock(&vf->lock);
	if (vf->count >= VF_MAX) {
		pthread_mutex_unlock(&vf->lock);
		vfile_free(v);
		log_warnx("%d virtual files in use: refusing %s/%s", VF_MAX,
		    dir->name, name);
		return ENFILE;
	}
	v->ino = vf->next_ino++;
	v->nlookup = 1;
	v->next = vf->tab[bucket(v->ino)];
	vf->tab[bucket(v->ino)] = v;
	vf->count++;
	pthread_mutex_unlock(&vf->lock);
	/* A range that closed a minute ago no longer changes; anything
	 * reaching the live edge is asked for again at every open. */
	*timeout = n.kind != PB_LIVE && n.kind != PB_EVENT &&
	    n.kind != PB_STATUS && n.from + n.duration < now - VF_SETTLE ?
	    1.0 : 0.0;
	vf_getattr(vf, v->ino, st);
	return 0;
}

/* The file ino with a reference taken, or NULL. */
static struct vfile *
get(struct vf *vf, uint64_t ino)
{
	struct vfile *v;

	pthread_mutex_lock(&vf->lock);
	for (v = vf->tab[bucket(ino)]; v != NULL && v->ino != ino; v = v->next)
		;
	if (v != NULL)
		v->refs++;
	pthread_mutex_unlock(&vf->lock);
	return v;
}

/* Drops what get() took, and the file once nothing refers to it. */
static void
put(struct vf *vf, struct vfile *v, uint64_t nlookup)
{
	struct vfile **pp;
	int gone = 0;

	pthread_mutex_lock(&vf->lock);
	v->refs--;
	v->nlookup -= nlookup < v->nlookup ? nlookup : v->nlookup;
	if (v->nlookup == 0 && v->refs == 0) {
		for (pp = &vf->tab[bucket(v->ino)]; *pp != v; pp = &(*pp)->next)
			;
		*pp = v->next;
		vf->count--;
		gone = 1;
	}
	pthread_mutex_unlock(&vf->lock);
	if (gone)
		vfile_free(v);
}

int
vf_getattr(struct vf *vf, uint64_t ino, struct stat *st)
{
	struct vfile *v;

	if ((v = get(vf, ino)) == NULL)
		return ENOENT;
	memset(st, 0, sizeof(*st));
	st->st_ino = v->ino;
	st->st_mode = S_IFREG | 0444;
	st->st_nlink = 0;
	st->st_size = (off_t)v->size;
	st->st_blksize = 65536;
	st->st_blocks = (blkcnt_t)((v->size + 511) / 512);
	st->st_mtim.tv_sec = v->mtime;
	st->st_ctim.tv_sec = v->mtime;
	st->st_atim.tv_sec = v->mtime;
	put(vf, v, 0);
	return 0;
}

/* len bytes of segment s at off into buf: from the store, or fetched. */
static int
read_seg(struct vf *vf, const struct pb_seg *s, uint64_t off, char *buf,
    size_t len)
{
	ssize_t n;

	n = fetcher_read(vf->fetcher, s->id, buf, len, off, FETCH_VIEWER,
	    vf->conf.timeout_ms);
	if (n < 0)
		return errno == ETIMEDOUT || errno == ENOENT ? errno : EIO;
	return (size_t)n == len ? 0 : EIO;
}

static int
read_ts(struct vf *vf, const struct vfile *v, uint64_t off, char *buf,
    size_t len)
{
	size_t lo = 0, hi = v->nsegs, i;
	uint64_t in, take;
	int rc;

	/* The segment holding off: the last whose start is at or before. */
	while (hi - lo > 1) {
		i = lo + (hi - lo) / 2;
		if (v->offs[i] <= off)
			lo = i;
		else
			hi = i;
	}
	for (i = lo; len > 0 && i < v->nsegs; i++) {
		in = off - v->offs[i];
		take = v->segs[i].size - in;
		if (take > len)
			take = len;
		if (take > 0 && (rc = read_seg(vf, &v->segs[i], in, buf,
		    (size_t)take)) != 0)
			return rc;
		buf += take;
		off += take;
		len -= (size_t)take;
	}
	return 0;
}

int
vf_read(struct vf *vf, uint64_t ino, size_t size, uint64_t off, char **buf,
    size_t *n)
{
	struct vfile *v;
	int rc = 0;

	*buf = NULL;
	*n = 0;
	if ((v = get(vf, ino)) == NULL)
		return ENOENT;
	if (off >= v->size || size == 0)
		goto out;
	if (size > v->size - off)
		size = (size_t)(v->size - off);
	if ((*buf = malloc(size)) == NULL) {
		rc = ENOMEM;
		goto out;
	}
	if (v->kind == PB_TS)
		rc = read_ts(vf, v, off, *buf, size);
	else
		memcpy(*buf, v->text + off, size);
	if (rc != 0) {
		free(*buf);
		*buf = NULL;
	} else
		*n = size;
out:
	put(vf, v, 0);
	return rc;
}

void
vf_forget(struct vf *vf, uint64_t ino, uint64_t nlookup)
{
	struct vfile *v;

	if ((v = get(vf, ino)) != NULL)
		put(vf, v, nlookup);
}
