/*
 * feed: follows the primary's feed of changes (long-poll) on the network
 * thread with a transfer of its own, not counted in the crawler's. The
 * first request learns epoch and seq; each later one asks for what came
 * after seq. A new epoch or a reset means events were lost: what the
 * store has listed is listed again where it may have changed (relist.c).
 * Errors back off 1 s to 30 s. Where the feed stands is recorded in the
 * store every few seconds, once no relist is left to do: a later mount
 * asks from there, and while the origin (same epoch) still holds the
 * changes after it, takes them instead of listing anything again.
 * Every field used here is the network thread's (fetch_int.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fetch_int.h"
#include "log.h"
#include "store.h"

#define FEED_BACKOFF_MIN	1000
#define FEED_BACKOFF_MAX	30000
#define FEED_SAVE_EVERY		5000	/* ms between records of the seq */
#define FEED_TOKEN_MAX		(33 + sizeof(((struct fetcher *)0)->base) + \
				 PATH_MAX)

/* The store's name for this feed: the origin's epoch, address, export. */
static int
feed_token(const struct fetcher *f, const char *epoch, char *buf, size_t len)
{
	int n;

	n = snprintf(buf, len, "%s %s%s", epoch, f->base, f->export);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

int
feed_load(struct fetcher *f, char epoch[33], uint64_t *seq)
{
	char got[FEED_TOKEN_MAX], want[FEED_TOKEN_MAX];
	size_t n;

	if (store_feed_get(f->store, got, sizeof(got), seq) == -1)
		return 0;
	n = strcspn(got, " ");
	if (n == 0 || n > 32)
		return 0;
	memcpy(epoch, got, n);
	epoch[n] = '\0';
	return feed_token(f, epoch, want, sizeof(want)) == 0 &&
	    strcmp(want, got) == 0;
}

void
feed_save(struct fetcher *f, int force)
{
	char tok[FEED_TOKEN_MAX];
	int64_t now = fetch_now_ms();
	int busy;

	if (!f->feed_known || (!force && now - f->feed_saved < FEED_SAVE_EVERY))
		return;
	pthread_mutex_lock(&f->lock);
	busy = f->relist_want || f->relist_running;
	pthread_mutex_unlock(&f->lock);
	if (busy || feed_token(f, f->feed_epoch, tok, sizeof(tok)) == -1)
		return;
	if (store_feed_set(f->store, tok, f->feed_seq) == -1)
		log_warn("recording where the feed of %s stands", f->host);
	f->feed_saved = now;
}

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

void
feed_notify(struct fetcher *f, const struct fetcher_change *c)
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
		feed_notify(f, &c);
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
	if (f->feed_resume && !fd->reset && fd->seq >= f->feed_seq &&
	    strcmp(fd->epoch, f->feed_epoch) == 0) {
		/* The origin still holds every change the store lacks. */
		log_info("feed of %s resumed after change %" PRIu64, f->host,
		    f->feed_seq);
		f->feed_known = 1;
	}
	f->feed_resume = 0;
	if (!f->feed_known || fd->reset || fd->seq < f->feed_seq ||
	    strcmp(fd->epoch, f->feed_epoch) != 0) {
		/* Changes may have been missed: list again from this seq. */
		if (f->feed_known)
			log_warnx("feed of %s reset, listing again", f->host);
		f->feed_known = 1;
		memcpy(f->feed_epoch, fd->epoch, sizeof(f->feed_epoch));
		f->feed_seq = fd->seq;
		relist_request(f);
		memset(&c, 0, sizeof(c));
		c.name = "";
		c.reset = 1;
		feed_notify(f, &c);
		goto out;
	}
	apply(f, fd);
	f->feed_seq = fd->seq;
	feed_save(f, 0);
out:
	m4f_feed_free(fd);
	job_unref(f, j);
}
