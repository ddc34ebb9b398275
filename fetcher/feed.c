/*
 * feed: follows the primary's feed of changes (long-poll) on the network
 * thread with a transfer of its own, not counted in the crawler's. The
 * first request learns epoch and seq; each later one asks for what came
 * after seq. A new epoch or a reset means events were lost: the folders
 * the store has listed are listed again. Errors back off 1 s to 30 s.
 * Every field used here is the network thread's (fetch_int.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "fetch_int.h"
#include "log.h"
#include "store.h"

#define FEED_BACKOFF_MIN	1000
#define FEED_BACKOFF_MAX	30000

int64_t
feed_tick(struct fetcher *f, int64_t now, struct job **start)
{
	*start = NULL;
	if (f->feed != NULL)
		return 1000;
	if (now < f->feed_at)
		return f->feed_at - now;
	if ((f->feed = job_new(JOB_FEED, FETCH_LIVE)) == NULL) {
		f->feed_at = now + FEED_BACKOFF_MAX;
		return FEED_BACKOFF_MAX;
	}
	*start = f->feed;
	return 1000;
}

struct walk {
	uint64_t	*dirs;
	size_t		 n, cap;
	int		 err;
};

static int
walk_one(void *arg, const struct store_ent *e)
{
	struct walk *w = arg;
	uint64_t *nd;

	if (e->type != STORE_DIR)
		return 0;
	if (w->n == w->cap) {
		w->cap = w->cap != 0 ? w->cap * 2 : 64;
		if ((nd = realloc(w->dirs, w->cap * sizeof(*nd))) == NULL) {
			w->err = ENOMEM;
			return 1;
		}
		w->dirs = nd;
	}
	w->dirs[w->n++] = e->id;
	return 0;
}

/*
 * Queues a recursive listing of every folder below the root the store has
 * listed, highest first: a listed folder's subtree is covered by its own
 * listing. The root, listed at mount, is listed again alone, one level:
 * its whole tree (every stream, days deep) is the crawler's to list, not
 * the feed's at every start.
 */
static void
relist(struct fetcher *f)
{
	struct walk w = { NULL, 0, 0, 0 };
	struct store_ent e;
	size_t i = 0;
	ssize_t r;
	char *rel;

	if (walk_one(&w, &(struct store_ent){ .id = STORE_ROOT_ID,
	    .type = STORE_DIR }) != 0)
		return;
	while (i < w.n && w.err == 0) {
		uint64_t id = w.dirs[i++];

		if (store_get(f->store, id, &e) == -1)
			continue;
		if (id == STORE_ROOT_ID && e.listed != 0 &&
		    list_job(f, "", 0, FETCH_LIVE, 0) == NULL)
			log_warn("relisting the root");
		if (e.listed != 0 && id != STORE_ROOT_ID) {
			if ((rel = store_path(f->store, id)) != NULL) {
				if (list_job(f, rel, 1, FETCH_LIVE, 0) == NULL)
					log_warn("relisting \"%s\"", rel);
				free(rel);
			}
			continue;
		}
		r = store_readdir(f->store, id, NULL, SIZE_MAX, walk_one, &w);
		if (r == -1)
			log_warn("walking the store");
	}
	free(w.dirs);
}

static void
notify(struct fetcher *f, const struct fetcher_change *c)
{
	void (*cb)(void *, const struct fetcher_change *);
	void *arg;

	pthread_mutex_lock(&f->lock);
	cb = f->follow_cb;
	arg = f->follow_arg;
	pthread_mutex_unlock(&f->lock);
	if (cb != NULL)
		cb(arg, c);
}

/* Applies the events after f->feed_seq to the store, telling the caller. */
static void
apply(struct fetcher *f, const struct m4f_feed *fd)
{
	struct fetcher_change c;
	struct store_remote r;
	uint64_t id, parent;
	size_t i;

	for (i = 0; i < fd->n; i++) {
		const struct m4f_event *ev = &fd->events[i];
		int del = ev->op == M4F_DEL;

		if (ev->seq <= f->feed_seq)
			continue;
		r.name = ev->e.name;
		r.type = (enum store_type)ev->e.type;
		r.size = ev->e.size;
		r.mtime = ev->e.mtime;
		r.sha256 = ev->e.type == M4F_FILE && !del ? ev->e.sha256 : NULL;
		r.target = ev->e.target;
		id = parent = 0;
		if (store_apply_event(f->store, &r, del, &id, &parent) == -1) {
			if (!(del && errno == ENOENT))
				log_warn("feed event for \"%s\"", ev->e.name);
			continue;
		}
		memset(&c, 0, sizeof(c));
		c.id = del ? 0 : id;
		c.parent = parent;
		c.name = ev->e.name;
		c.deleted = del;
		notify(f, &c);
	}
}

void
feed_done(struct fetcher *f, struct job *j, int err)
{
	struct m4f_feed *fd = NULL;
	struct fetcher_change c;
	char why[160];
	int64_t now = fetch_now_ms();

	f->feed = NULL;
	if (err == ECANCELED)
		goto out;
	if (err == 0 && !job_json_ok(j)) {
		snprintf(why, sizeof(why), "body does not match its "
		    M4F_BODY_SHA256);
		log_warnx("feed: %s", why);
		atomic_fetch_add(&f->st_bad, 1);
		err = EBADMSG;
	} else if (err == 0 && (fd = m4f_feed_decode(j->json.p != NULL ?
	    j->json.p : "", j->json.len, why, sizeof(why))) == NULL) {
		log_warnx("feed: %s", why);
		atomic_fetch_add(&f->st_bad, 1);
		err = EBADMSG;
	}
	if (err != 0) {
		atomic_fetch_add(&f->st_failures, 1);
		f->feed_backoff = f->feed_backoff == 0 ? FEED_BACKOFF_MIN :
		    f->feed_backoff * 2;
		if (f->feed_backoff > FEED_BACKOFF_MAX)
			f->feed_backoff = FEED_BACKOFF_MAX;
		f->feed_at = now + f->feed_backoff;
		/* A busy origin says when to come back. */
		if (j->retry_after >= 0)
			f->feed_at = now + (int64_t)j->retry_after * 1000;
		goto out;
	}
	f->feed_backoff = 0;
	f->feed_at = now;
	if (!f->feed_known || fd->reset || fd->seq < f->feed_seq ||
	    strcmp(fd->epoch, f->feed_epoch) != 0) {
		/* Changes may have been missed: list again from this seq. */
		if (f->feed_known)
			log_warnx("feed of %s reset, listing again", f->host);
		f->feed_known = 1;
		memcpy(f->feed_epoch, fd->epoch, sizeof(f->feed_epoch));
		f->feed_seq = fd->seq;
		relist(f);
		memset(&c, 0, sizeof(c));
		c.name = "";
		c.reset = 1;
		notify(f, &c);
		goto out;
	}
	apply(f, fd);
	f->feed_seq = fd->seq;
out:
	m4f_feed_free(fd);
	job_unref(f, j);
}
