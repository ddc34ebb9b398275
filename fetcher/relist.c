/*
 * relist: brings what the store knows of the primary's tree up to date
 * after a gap in the feed (a new mount, a new origin epoch, a reset)
 * without listing the whole archive again.
 *
 * A folder is listed one level and its subfolders visited in turn. A DVR
 * hour folder (STREAM/YYYY/MM/DD/HH, dvrpath_span) is listed with its
 * subtree, or not at all when its listing is final: taken after the
 * hour was over, and the primary's folder unchanged since (its mtime, as
 * the fresh listing of its day gives it, older than the listing).
 * RELIST_SLOP covers clocks that differ and segments closed just after
 * their hour. What a skipped hour can hide is a segment removed from one
 * of its minute folders while the feed was not followed: a read of it
 * gets 404, which lists its folder again (fetch_refresh_parent).
 *
 * A folder the store has never listed is not listed here (a mount
 * without replicate lists what viewers open), only walked for listed
 * folders below it; with complete, it is listed with its subtree (the
 * crawler must know every file of its streams).
 *
 * The feed asks for a relist of the whole store (relist_request), done on
 * the relister thread, which fetcher_free() stops; the crawler calls
 * fetcher_relist() on its own thread.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dvrpath.h"
#include "fetch_int.h"
#include "log.h"
#include "m4f.h"
#include "store.h"

#define RELIST_SLOP		300	/* seconds */
#define RELIST_TIMEOUT		300000	/* ms, one listing */
#define RELIST_BACKOFF_MIN	1000	/* ms */
#define RELIST_BACKOFF_MAX	60000

struct kid {
	uint64_t	 id;
	char		*name;
	int64_t		 mtime, listed;
};

struct kids {
	struct kid	*v;
	size_t		 n, cap;
	int		 err;
};

struct relist {
	struct fetcher	*f;
	int		 complete;
	enum fetch_prio	 prio;
	int		 timeout_ms;
	unsigned	 one, whole;	/* listings made, one level / subtree */
};

static int	visit(struct relist *, uint64_t id, const char *rel,
		    int64_t mtime, int64_t listed);

static int
kid_add(void *arg, const struct store_ent *e)
{
	struct kids *k = arg;
	struct kid *nv;

	if (e->type != STORE_DIR)
		return 0;
	if (k->n == k->cap) {
		k->cap = k->cap != 0 ? k->cap * 2 : 16;
		if ((nv = realloc(k->v, k->cap * sizeof(*nv))) == NULL) {
			k->err = ENOMEM;
			return 1;
		}
		k->v = nv;
	}
	if ((k->v[k->n].name = strdup(e->name)) == NULL) {
		k->err = ENOMEM;
		return 1;
	}
	k->v[k->n].id = e->id;
	k->v[k->n].mtime = e->mtime;
	k->v[k->n].listed = e->listed;
	k->n++;
	return 0;
}

static void
kids_free(struct kids *k)
{
	size_t i;

	for (i = 0; i < k->n; i++)
		free(k->v[i].name);
	free(k->v);
}

/*
 * Is folder rel a DVR hour whose listing (at listed, with the primary's
 * mtime) is final? 1 or 0; -1 when rel is not an hour folder.
 */
static int
hour_final(const char *rel, int64_t mtime, int64_t listed)
{
	int64_t start, span;

	if (dvrpath_span(rel, &start, &span) == -1 || span != 3600)
		return -1;
	return listed >= start + span + RELIST_SLOP &&
	    mtime <= listed - RELIST_SLOP;
}

/* One listing; a folder gone meanwhile (ENOENT) is not an error. */
static int
list(struct relist *r, const char *rel, int recursive)
{
	if (recursive)
		r->whole++;
	else
		r->one++;
	if (list_wait(r->f, rel, recursive, r->prio, r->timeout_ms) == -1 &&
	    errno != ENOENT) {
		log_warn("listing \"%s\" again", rel);
		return -1;
	}
	return 0;
}

/* Visits the subfolders of folder id (at rel) as the store has them. */
static int
kids_visit(struct relist *r, uint64_t id, const char *rel)
{
	struct kids k = { NULL, 0, 0, 0 };
	char *path;
	size_t i;
	int rc = 0;

	if (store_readdir(r->f->store, id, NULL, SIZE_MAX, kid_add, &k) == -1 ||
	    k.err != 0) {
		if (k.err != 0)
			errno = k.err;
		log_warn("walking the store under \"%s\"", rel);
		kids_free(&k);
		return -1;
	}
	for (i = 0; i < k.n && rc == 0; i++) {
		if (asprintf(&path, "%s%s%s", rel, *rel != '\0' ? "/" : "",
		    k.v[i].name) < 0) {
			rc = -1;
			break;
		}
		rc = visit(r, k.v[i].id, path, k.v[i].mtime, k.v[i].listed);
		free(path);
	}
	kids_free(&k);
	return rc;
}

/*
 * Folder id at rel, with the mtime and listing time the store has for
 * it: listed again as the top of this file says. Returns 0, or -1 when
 * a listing failed (the walk stops there).
 */
static int
visit(struct relist *r, uint64_t id, const char *rel, int64_t mtime,
    int64_t listed)
{
	int final;

	if (listed == 0)
		return r->complete ? list(r, rel, 1) : kids_visit(r, id, rel);
	if ((final = hour_final(rel, mtime, listed)) != -1)
		return final ? 0 : list(r, rel, 1);
	if (list(r, rel, 0) == -1)
		return -1;
	return kids_visit(r, id, rel);
}

/* fetcher_relist(), saying what it did at level lvl. */
static int
relist_walk(struct fetcher *f, const char *rel, int complete,
    enum fetch_prio prio, int timeout_ms, enum log_level lvl)
{
	struct relist r = { f, complete, prio, timeout_ms, 0, 0 };
	struct store_ent e;
	struct timespec t0, t1;
	int rc;

	if (!fetch_prio_ok(prio) || m4f_path_check(rel) == -1) {
		errno = EINVAL;
		return -1;
	}
	if (store_resolve(f->store, rel, &e) == -1) {
		if (errno != ENOENT)
			return -1;
		return complete ? list_wait(f, rel, 1, prio, timeout_ms) : 0;
	}
	if (e.type != STORE_DIR) {
		errno = ENOTDIR;
		return -1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = visit(&r, e.id, rel, e.mtime, e.listed);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (rc == 0 && log_enabled(lvl))
		log_msg(lvl, 0, __FILE__, __LINE__, "\"%s\" listed again: "
		    "%u folders one level, %u with their subtree, in %.3f s",
		    rel, r.one, r.whole, (double)(t1.tv_sec - t0.tv_sec) +
		    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	return rc;
}

int
fetcher_relist(struct fetcher *f, const char *rel, int complete,
    enum fetch_prio prio, int timeout_ms)
{
	return relist_walk(f, rel, complete, prio, timeout_ms, LOG_LVL_DEBUG);
}

/*
 * The relister thread: relists the whole store each time the feed asks,
 * retrying a walk that failed after a growing pause.
 */
static void *
relister_main(void *arg)
{
	struct fetcher *f = arg;
	struct timespec ts;
	int backoff = 0, rc;

	pthread_mutex_lock(&f->lock);
	while (!f->stop) {
		if (!f->relist_want) {
			pthread_cond_wait(&f->relist_cond, &f->lock);
			continue;
		}
		f->relist_want = 0;
		f->relist_running = 1;
		pthread_mutex_unlock(&f->lock);
		rc = relist_walk(f, "", 0, FETCH_LIVE, RELIST_TIMEOUT,
		    LOG_LVL_INFO);
		pthread_mutex_lock(&f->lock);
		f->relist_running = 0;
		if (rc == -1)
			f->relist_want = 1;	/* also at a stop: not done */
		if (rc == 0 || f->stop) {
			backoff = 0;
			continue;
		}
		backoff = backoff == 0 ? RELIST_BACKOFF_MIN : backoff * 2;
		if (backoff > RELIST_BACKOFF_MAX)
			backoff = RELIST_BACKOFF_MAX;
		fetch_deadline(&ts, backoff);
		pthread_cond_timedwait(&f->relist_cond, &f->lock, &ts);
	}
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

void
relist_request(struct fetcher *f)
{
	int err;

	pthread_mutex_lock(&f->lock);
	f->relist_want = 1;
	if (!f->relister_started && !f->stop) {
		if ((err = pthread_create(&f->relister, NULL, relister_main,
		    f)) == 0)
			f->relister_started = 1;
		else {
			errno = err;
			log_warn("starting the relister");
		}
	}
	pthread_cond_signal(&f->relist_cond);
	pthread_mutex_unlock(&f->lock);
}

void
relist_stop(struct fetcher *f)
{
	int started;

	pthread_mutex_lock(&f->lock);
	started = f->relister_started;
	pthread_cond_broadcast(&f->relist_cond);
	pthread_mutex_unlock(&f->lock);
	if (started)
		pthread_join(f->relister, NULL);
}
