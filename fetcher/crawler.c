/*
 * Lock order: cr->lock only; it is never held while calling the fetcher
 * or the store, except in crawler_added(), which only queues.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crawler.h"
#include "dvrpath.h"
#include "fetcher.h"
#include "log.h"
#include "rates.h"
#include "store.h"

#define LIVE_MAX	4096	/* announced files waiting */
#define INFLIGHT_MAX	256
#define EXPIRE_EVERY	10	/* seconds between retention passes */
#define WALK_EVERY	30	/* seconds between walks of the store */
#define EDGE_EVERY	10	/* seconds between live-edge listings */
#define FULL_EVERY	1800	/* seconds between full listings */
#define LIVE_WINDOW	120	/* segments this new go at live priority */
#define LIST_TIMEOUT	300000
#define FAILED_MAX	4096	/* files remembered as failing */
#define RETRY_MIN	2	/* seconds before a failed file is tried again */
#define RETRY_MAX	600
#define FULL_PAUSE	10	/* seconds without new copies after ENOSPC */

struct work {
	uint64_t	 id;
	int64_t		 t;
};

/* A file whose copy failed, and when to try it again. */
struct failed {
	uint64_t	 id;
	int64_t		 next;
	int		 fails;
};

struct crawler {
	struct fetcher	*fetcher;
	struct store	*store;
	int64_t		 depth;		/* the longest of all streams' */
	char	       **streams;	/* NULL or NULL-terminated */
	int64_t		*sdepth;	/* per streams[i]; NULL: all depth */
	int		 replicate;
	size_t		 window;

	pthread_mutex_t	 lock;
	pthread_cond_t	 cond;
	pthread_t	 thread;
	int		 stop;			/* under lock */
	uint64_t	 live[LIVE_MAX];	/* under lock */
	size_t		 live_head, live_len;	/* under lock */
	uint64_t	 inflight[INFLIGHT_MAX];	/* under lock */
	uint64_t	 inflight_size[INFLIGHT_MAX];	/* under lock */
	size_t		 ninflight;		/* under lock */
	uint64_t	 inflight_bytes;	/* under lock: their sum */
	struct crawler_stats st;		/* under lock */
	struct rates	*rates;			/* under lock: by stream */
	struct failed	 failed[FAILED_MAX];	/* under lock */
	size_t		 nfailed;		/* under lock */
	int64_t		 full_until;		/* under lock: disk full */
	int		 at_cap;		/* under lock: max_size reached */
	int		 logged_cap;		/* under lock */
	uint64_t	 room_cap;		/* under lock: max_size, 0: none */
	uint64_t	 room_left;		/* under lock: bytes to the cap at
						   the last look, less what was
						   queued since */

	/* The crawler thread's own. */
	struct work	*pending;
	size_t		 npending, pos, cap;
};

static int64_t
now_s(void)
{
	return (int64_t)time(NULL);
}

/*
 * The depth of stream name in seconds, or 0 when it is not replicated
 * (not in streams=).
 */
static int64_t
stream_depth(struct crawler *cr, const char *name)
{
	size_t i;

	if (cr->streams == NULL)
		return cr->depth;
	for (i = 0; cr->streams[i] != NULL; i++)
		if (strcmp(cr->streams[i], name) == 0)
			return cr->sdepth != NULL && cr->sdepth[i] > 0 ?
			    cr->sdepth[i] : cr->depth;
	return 0;
}

static int
wanted_stream(struct crawler *cr, const char *name)
{
	return stream_depth(cr, name) > 0;
}

/* The time a file stands for: its DVR path's, else its mtime. */
static int64_t
file_time(const char *rel, const struct store_ent *e)
{
	int64_t t;

	return dvrpath_time(rel, &t, NULL) == 0 ? t : e->mtime;
}

struct kids {
	struct store_ent *v;
	size_t		 n;
};

/* The children of folder id, or n = 0. The caller frees k->v. */
static void
children(struct crawler *cr, uint64_t id, struct kids *k)
{
	store_children(cr->store, id, &k->v, &k->n);
}

/* Is folder rel a DVR folder (year to hour) wholly older than cutoff? */
static int
folder_expired(const char *rel, int64_t cutoff)
{
	int64_t t, span;

	return dvrpath_span(rel, &t, &span) == 0 && t + span <= cutoff;
}

static int
pending_add(struct crawler *cr, uint64_t id, int64_t t)
{
	struct work *v;

	if (cr->npending == cr->cap) {
		size_t cap = cr->cap ? cr->cap * 2 : 1024;

		if ((v = realloc(cr->pending, cap * sizeof(*v))) == NULL)
			return -1;
		cr->pending = v;
		cr->cap = cap;
	}
	cr->pending[cr->npending].id = id;
	cr->pending[cr->npending++].t = t;
	return 0;
}

/* Collects the files below folder id (path rel) still to copy. */
static void
walk(struct crawler *cr, uint64_t id, const char *rel, int64_t cutoff,
    int depth)
{
	struct kids k;
	char *path;
	size_t i;

	if (depth > 32 || folder_expired(rel, cutoff))
		return;
	children(cr, id, &k);
	for (i = 0; i < k.n; i++) {
		const struct store_ent *e = &k.v[i];
		int64_t t;

		if (asprintf(&path, "%s%s%s", rel, *rel ? "/" : "", e->name) < 0)
			break;
		/* Links are not followed: what they name is copied where
		 * it is, once. */
		if (e->type == STORE_DIR) {
			/* A stream folder: its own depth from here down. */
			if (depth == 0 && (t = stream_depth(cr, e->name)) > 0)
				walk(cr, e->id, path, now_s() - t, 1);
			else if (depth > 0)
				walk(cr, e->id, path, cutoff, depth + 1);
		} else if (e->type == STORE_FILE &&
		    e->state != STORE_COMPLETE && depth > 0 &&
		    (t = file_time(path, e)) >= cutoff)
			pending_add(cr, e->id, t);
		free(path);
	}
	free(k.v);
}

static int
newest_first(const void *a, const void *b)
{
	const struct work *x = a, *y = b;

	return x->t < y->t ? 1 : x->t > y->t ? -1 : 0;
}

/*
 * Retention: everything by the longest depth (and the size cap), then
 * each stream with a shorter depth of its own. Returns the files dropped.
 */
static ssize_t
expire(struct crawler *cr, int64_t now)
{
	ssize_t n, all;
	size_t i;

	if ((all = store_expire(cr->store, now, cr->depth)) == -1)
		all = 0;
	for (i = 0; cr->sdepth != NULL && cr->streams[i] != NULL; i++)
		if (cr->sdepth[i] > 0 && cr->sdepth[i] < cr->depth &&
		    (n = store_expire_under(cr->store, cr->streams[i], now,
		    cr->sdepth[i])) > 0)
			all += n;
	return all;
}

static void
rewalk(struct crawler *cr)
{
	cr->npending = cr->pos = 0;
	walk(cr, STORE_ROOT_ID, "", now_s() - cr->depth, 0);
	qsort(cr->pending, cr->npending, sizeof(*cr->pending), newest_first);
	log_debug("crawler: %zu files to copy", cr->npending);
}

/*
 * Lists the primary: the root, then each wanted stream (full: where it may
 * have changed since it was listed, fetcher_relist(); whole if it never
 * was) or only its newest hour (the live edge, a fallback for the feed).
 * Returns 0 if every listing worked.
 */
static int
list_primary(struct crawler *cr, int full)
{
	struct kids k;
	size_t i;
	int rc = 0;

	if (fetcher_list(cr->fetcher, "", 0, FETCH_BACKFILL, LIST_TIMEOUT) == -1)
		return -1;
	children(cr, STORE_ROOT_ID, &k);
	for (i = 0; i < k.n; i++) {
		char *rel;
		struct store_ent d = k.v[i];
		int level;

		if (d.type != STORE_DIR || !wanted_stream(cr, d.name))
			continue;
		if ((rel = strdup(d.name)) == NULL)
			break;
		/* Down the newest YYYY/MM/DD/HH for the live edge. */
		for (level = 0; !full && level < 4; level++) {
			struct kids sub;
			char *next;

			children(cr, d.id, &sub);
			if (sub.n == 0 || sub.v[sub.n - 1].type != STORE_DIR) {
				free(sub.v);
				break;
			}
			d = sub.v[sub.n - 1];
			free(sub.v);
			if (asprintf(&next, "%s/%s", rel, d.name) < 0)
				break;
			free(rel);
			rel = next;
		}
		if ((full ? fetcher_relist(cr->fetcher, rel, 1, FETCH_BACKFILL,
		    LIST_TIMEOUT) : fetcher_list(cr->fetcher, rel, 1,
		    FETCH_LIVE, LIST_TIMEOUT)) == -1)
			rc = -1;
		free(rel);
	}
	free(k.v);
	return rc;
}

static int
inflight_find(struct crawler *cr, uint64_t id)
{
	size_t i;

	for (i = 0; i < cr->ninflight; i++)
		if (cr->inflight[i] == id)
			return (int)i;
	return -1;
}

/* Under cr->lock: the slot of file id in cr->failed, or -1. */
static ssize_t
failed_find(struct crawler *cr, uint64_t id)
{
	size_t i;

	for (i = 0; i < cr->nfailed; i++)
		if (cr->failed[i].id == id)
			return (ssize_t)i;
	return -1;
}

static void
forget_failure(struct crawler *cr, uint64_t id)
{
	ssize_t i = failed_find(cr, id);

	if (i >= 0)
		cr->failed[i] = cr->failed[--cr->nfailed];
}

/*
 * Under cr->lock: a file whose copy failed for a reason of its own (bad
 * bytes, gone, too big) waits before it is tried again, twice as long
 * each time: a primary that keeps lying about it is not asked every walk.
 * A full disk pauses all copying for a while. An unreachable primary is
 * the fetcher's to back off from.
 */
static void
note_failure(struct crawler *cr, uint64_t id, int err)
{
	int64_t now = now_s(), wait;
	ssize_t i;

	if (err == ENOSPC) {
		if (cr->full_until <= now)
			log_warnx("store full: copying paused for %d s",
			    FULL_PAUSE);
		cr->full_until = now + FULL_PAUSE;
		return;
	}
	/* Only what is wrong with the file itself; not an outage. */
	if (err != EBADMSG && err != ENOENT && err != EFBIG && err != EINVAL)
		return;
	if ((i = failed_find(cr, id)) < 0) {
		if (cr->nfailed == FAILED_MAX)
			return;
		i = (ssize_t)cr->nfailed++;
		cr->failed[i].id = id;
		cr->failed[i].fails = 0;
	}
	wait = (int64_t)RETRY_MIN << (cr->failed[i].fails < 9 ?
	    cr->failed[i].fails : 9);
	cr->failed[i].fails++;
	cr->failed[i].next = now + (wait < RETRY_MAX ? wait : RETRY_MAX);
}

/* Under cr->lock: may file id be tried now? */
static int
may_try(struct crawler *cr, uint64_t id)
{
	ssize_t i = failed_find(cr, id);

	return i < 0 || cr->failed[i].next <= now_s();
}

/* Counts a file copied: in the totals and in its stream's rate. */
static void
count_done(struct crawler *cr, uint64_t id, uint64_t size)
{
	char *rel = store_path(cr->store, id);
	char *slash;

	if (rel != NULL && (slash = strchr(rel, '/')) != NULL)
		*slash = '\0';
	pthread_mutex_lock(&cr->lock);
	cr->st.done_bytes += size;
	if (rel != NULL)
		rates_add(cr->rates, rel, now_s(), size);
	pthread_mutex_unlock(&cr->lock);
	free(rel);
}

static void
on_done(void *arg, uint64_t id, int err)
{
	struct crawler *cr = arg;
	struct store_ent e;
	int i;

	pthread_mutex_lock(&cr->lock);
	if ((i = inflight_find(cr, id)) >= 0) {
		cr->inflight_bytes -= cr->inflight_size[i];
		cr->ninflight--;
		cr->inflight[i] = cr->inflight[cr->ninflight];
		cr->inflight_size[i] = cr->inflight_size[cr->ninflight];
	}
	if (err == 0) {
		cr->st.done++;
		pthread_mutex_unlock(&cr->lock);
		/* Sizes are known to the store; count outside the lock. */
		if (store_get(cr->store, id, &e) == 0)
			count_done(cr, id, e.size);
		pthread_mutex_lock(&cr->lock);
		forget_failure(cr, id);
	} else {
		cr->st.failed++;
		note_failure(cr, id, err);
		log_debug("crawler: file %llu: %s", (unsigned long long)id,
		    strerror(err));
	}
	pthread_cond_signal(&cr->cond);
	pthread_mutex_unlock(&cr->lock);
}

/*
 * A failed file whose wait is over and that is not in flight, or 0. The
 * attempt's end sets its next wait (on_done), or forgets it.
 */
static uint64_t
due_failure(struct crawler *cr, enum fetch_prio *prio)
{
	int64_t now = now_s();
	uint64_t id = 0;
	size_t i;

	pthread_mutex_lock(&cr->lock);
	for (i = 0; i < cr->nfailed; i++)
		if (cr->failed[i].next <= now &&
		    inflight_find(cr, cr->failed[i].id) < 0) {
			id = cr->failed[i].id;
			*prio = FETCH_BACKFILL;
			break;
		}
	pthread_mutex_unlock(&cr->lock);
	return id;
}

/* The next file to queue and its priority; 0 when there is none. */
static uint64_t
next_work(struct crawler *cr, enum fetch_prio *prio)
{
	uint64_t id = 0;

	pthread_mutex_lock(&cr->lock);
	if (cr->live_len > 0) {
		id = cr->live[cr->live_head];
		cr->live_head = (cr->live_head + 1) % LIVE_MAX;
		cr->live_len--;
		*prio = FETCH_LIVE;
	}
	pthread_mutex_unlock(&cr->lock);
	if (id == 0 && cr->pos < cr->npending) {
		*prio = cr->pending[cr->pos].t >= now_s() - LIVE_WINDOW ?
		    FETCH_LIVE : FETCH_BACKFILL;
		id = cr->pending[cr->pos++].id;
	}
	if (id == 0)
		id = due_failure(cr, prio);
	return id;
}

/* The depth of the stream rel is in (its first component), 0: none. */
static int64_t
depth_of(struct crawler *cr, const char *rel)
{
	const char *slash = strchr(rel, '/');
	char name[256];
	size_t n;

	if (slash == NULL || (n = (size_t)(slash - rel)) >= sizeof(name))
		return cr->streams == NULL ? cr->depth : 0;
	memcpy(name, rel, n);
	name[n] = '\0';
	return stream_depth(cr, name);
}

/*
 * Is file id still to copy: known, not complete, within the depth, in a
 * wanted stream?
 */
static int
still_wanted(struct crawler *cr, uint64_t id, uint64_t *size)
{
	struct store_ent e;
	int64_t d;
	char *rel;
	int want;

	if (store_get(cr->store, id, &e) == -1 || e.type != STORE_FILE ||
	    e.state == STORE_COMPLETE || (rel = store_path(cr->store, id)) == NULL)
		return 0;
	want = (d = depth_of(cr, rel)) > 0 && file_time(rel, &e) >= now_s() - d;
	free(rel);
	*size = e.size;
	return want;
}

/* Keeps the fetcher's queue full with files still to copy. */
static void
fill_some(struct crawler *cr)
{
	enum fetch_prio prio;
	uint64_t id, size;
	int busy;

	for (;;) {
		pthread_mutex_lock(&cr->lock);
		busy = cr->ninflight >= cr->window || cr->stop ||
		    cr->full_until > now_s() ||
		    (cr->at_cap && cr->live_len == 0);
		pthread_mutex_unlock(&cr->lock);
		if (busy || (id = next_work(cr, &prio)) == 0)
			return;
		if (!still_wanted(cr, id, &size)) {
			pthread_mutex_lock(&cr->lock);
			forget_failure(cr, id);
			pthread_mutex_unlock(&cr->lock);
			continue;
		}
		pthread_mutex_lock(&cr->lock);
		if (inflight_find(cr, id) >= 0 || !may_try(cr, id)) {
			pthread_mutex_unlock(&cr->lock);
			continue;
		}
		if (cr->room_cap != 0) {
			/*
			 * Live segments always come in, but they take room
			 * from backfill too.
			 */
			if (prio == FETCH_BACKFILL && size > cr->room_left) {
				cr->at_cap = 1;
				pthread_mutex_unlock(&cr->lock);
				return;
			}
			cr->room_left -= size < cr->room_left ? size :
			    cr->room_left;
		}
		cr->inflight_size[cr->ninflight] = size;
		cr->inflight_bytes += size;
		cr->inflight[cr->ninflight++] = id;
		pthread_mutex_unlock(&cr->lock);
		if (fetcher_get_file(cr->fetcher, id, prio, on_done, cr) == -1)
			on_done(cr, id, errno);
	}
}

/* fill_some(), its files queued together: neighbours share a request. */
static void
fill(struct crawler *cr)
{
	fetcher_hold(cr->fetcher, 1);
	fill_some(cr);
	fetcher_hold(cr->fetcher, 0);
}

/*
 * With a size cap (max_size=), copying stops when the store is nearly at
 * it: filling past the cap would only make retention evict, and the
 * crawler copy again, what it just copied. New live segments still come
 * in; retention then drops the least recently read to make room.
 */
static void
check_room(struct crawler *cr)
{
	uint64_t used, cap;
	int full;

	if (store_room(cr->store, &used, &cap) == -1 || cap == 0)
		return;
	pthread_mutex_lock(&cr->lock);
	/* What is in flight is not in used yet: keep it counted. */
	used += cr->inflight_bytes;
	full = used >= cap - cap / 20;
	if (full && !cr->logged_cap)
		log_info("store at %llu of max_size %llu bytes: backfill "
		    "paused", (unsigned long long)used,
		    (unsigned long long)cap);
	cr->logged_cap = full;
	cr->at_cap = full;
	cr->room_cap = cap;
	cr->room_left = full ? 0 : cap - cap / 20 - used;
	pthread_mutex_unlock(&cr->lock);
}

static void *
crawler_main(void *arg)
{
	struct crawler *cr = arg;
	int64_t now, last_expire = 0, last_walk = 0, last_full = 0;
	int64_t last_edge = 0;
	struct timespec ts;
	ssize_t n;
	int at_cap;

	for (;;) {
		pthread_mutex_lock(&cr->lock);
		if (cr->stop) {
			pthread_mutex_unlock(&cr->lock);
			break;
		}
		at_cap = cr->at_cap;
		pthread_mutex_unlock(&cr->lock);
		now = now_s();
		/* At the cap, live segments still come in: make room soon. */
		if (now - last_expire >= EXPIRE_EVERY ||
		    (at_cap && now > last_expire)) {
			if ((n = expire(cr, now)) > 0) {
				pthread_mutex_lock(&cr->lock);
				cr->st.expired += (uint64_t)n;
				pthread_mutex_unlock(&cr->lock);
			}
			last_expire = now;
		}
		if (cr->replicate) {
			check_room(cr);
			if (now - last_full >= FULL_EVERY) {
				if (list_primary(cr, 1) == 0) {
					last_full = last_edge = now;
					pthread_mutex_lock(&cr->lock);
					cr->st.last_listing = now;
					pthread_mutex_unlock(&cr->lock);
				}
				last_walk = 0;
			} else if (now - last_edge >= EDGE_EVERY) {
				list_primary(cr, 0);
				last_edge = now;
			}
			if (cr->pos >= cr->npending &&
			    now - last_walk >= WALK_EVERY) {
				rewalk(cr);
				last_walk = now;
			}
			fill(cr);
		}
		pthread_mutex_lock(&cr->lock);
		cr->st.queued = cr->ninflight + cr->live_len +
		    (cr->npending - cr->pos);
		if (!cr->stop) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&cr->cond, &cr->lock, &ts);
		}
		pthread_mutex_unlock(&cr->lock);
	}
	return NULL;
}

struct crawler *
crawler_new(struct fetcher *fetcher, struct store *store,
    const struct crawler_conf *conf)
{
	struct crawler *cr;
	size_t i, n = 0;
	int rc;

	if ((cr = calloc(1, sizeof(*cr))) == NULL)
		return NULL;
	cr->fetcher = fetcher;
	cr->store = store;
	cr->depth = conf->depth;
	cr->replicate = conf->replicate;
	if ((cr->rates = rates_new()) == NULL)
		goto fail;
	cr->window = conf->transfers > 0 ? (size_t)conf->transfers * 8 : 32;
	if (cr->window > INFLIGHT_MAX)
		cr->window = INFLIGHT_MAX;
	if (conf->streams != NULL) {
		while (conf->streams[n] != NULL)
			n++;
		if ((cr->streams = calloc(n + 1, sizeof(char *))) == NULL)
			goto fail;
		for (i = 0; i < n; i++)
			if ((cr->streams[i] = strdup(conf->streams[i])) == NULL)
				goto fail;
		if (conf->stream_depth != NULL) {
			if ((cr->sdepth = calloc(n, sizeof(int64_t))) == NULL)
				goto fail;
			memcpy(cr->sdepth, conf->stream_depth,
			    n * sizeof(int64_t));
			for (i = 0; i < n; i++)
				if (cr->sdepth[i] > cr->depth)
					cr->depth = cr->sdepth[i];
		}
	}
	pthread_mutex_init(&cr->lock, NULL);
	pthread_cond_init(&cr->cond, NULL);
	if ((rc = pthread_create(&cr->thread, NULL, crawler_main, cr)) != 0) {
		pthread_mutex_destroy(&cr->lock);
		pthread_cond_destroy(&cr->cond);
		errno = rc;
		goto fail;
	}
	return cr;
fail:
	if (cr->streams != NULL)
		for (i = 0; i < n; i++)
			free(cr->streams[i]);
	free(cr->streams);
	free(cr->sdepth);
	rates_free(cr->rates);
	free(cr);
	return NULL;
}

void
crawler_stop(struct crawler *cr)
{
	if (cr == NULL)
		return;
	pthread_mutex_lock(&cr->lock);
	if (cr->stop) {
		pthread_mutex_unlock(&cr->lock);
		return;
	}
	cr->stop = 1;
	pthread_cond_signal(&cr->cond);
	pthread_mutex_unlock(&cr->lock);
	pthread_join(cr->thread, NULL);
}

void
crawler_free(struct crawler *cr)
{
	char **s;

	if (cr == NULL)
		return;
	crawler_stop(cr);
	pthread_mutex_destroy(&cr->lock);
	pthread_cond_destroy(&cr->cond);
	if (cr->streams != NULL)
		for (s = cr->streams; *s != NULL; s++)
			free(*s);
	free(cr->streams);
	free(cr->sdepth);
	free(cr->pending);
	rates_free(cr->rates);
	free(cr);
}

void
crawler_added(struct crawler *cr, uint64_t id)
{
	if (cr == NULL || id == 0 || !cr->replicate)
		return;
	pthread_mutex_lock(&cr->lock);
	if (cr->live_len < LIVE_MAX) {
		cr->live[(cr->live_head + cr->live_len) % LIVE_MAX] = id;
		cr->live_len++;
		pthread_cond_signal(&cr->cond);
	}
	pthread_mutex_unlock(&cr->lock);
}

void
crawler_stats(struct crawler *cr, struct crawler_stats *out)
{
	pthread_mutex_lock(&cr->lock);
	*out = cr->st;
	out->replicating = cr->replicate;
	pthread_mutex_unlock(&cr->lock);
}

void
crawler_rates(struct crawler *cr, void (*cb)(void *, const char *, double),
    void *arg)
{
	pthread_mutex_lock(&cr->lock);
	rates_each(cr->rates, now_s(), cb, arg);
	pthread_mutex_unlock(&cr->lock);
}
