/*
 * read: how a read of a file is served, decided in one place
 * (fetcher_serve):
 *
 *   complete in the store	its data file, for the caller to splice from
 *   its blocks checked here	from the store's partial file
 *   up to whole_max, hashed	one whole-file job, served from its body
 *   or digestible		once all of it is here and matches the
 *				listed hash or the answer's Repr-Digest
 *   bigger			the blocks the read touches, each served
 *				once its answer matched its Content-Digest;
 *				from an origin that sends none, the whole
 *				file block by block (a window at a time),
 *				served once it verified and is installed
 *
 * and read-ahead (fetcher_prefetch) asks for the same jobs, a few blocks
 * at most. Every byte served was checked against a digest the origin
 * computed; every wait is bounded by the read's deadline and ends at
 * fetcher_cancel(). What a read holds: the blocks it touches plus
 * READ_WINDOW, or one whole-file body. Lock order: see fetch_int.h.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


#include "fetch_int.h"
#include "store.h"

#define READ_TRIES	3	/* fetches of a file found wrong, at most */
#define READ_NAP_MS	20	/* waiting for someone else's verdict */
#define READ_WINDOW	8	/* blocks in flight for one read, whole */
#define READ_AHEAD_MAX	4	/* blocks read ahead of a read, at most */

/* What keeps the bytes of one fetcher_serve() valid. */
struct fetch_hold {
	struct job	*job;		/* a verified whole-file body, or NULL */
	unsigned char	 bytes[];	/* else a copy */
};

/* Where one attempt at serving a read left it. */
enum step {
	SERVED,		/* out is filled */
	FAILED,		/* errno says why */
	AGAIN,		/* the entry changed meanwhile: decide again */
	REFETCH,	/* a fetch ended without serving it: counts a try */
	NAP,		/* another thread is verifying the file: wait */
	WHOLE		/* its blocks have no digests: fetch it whole */
};

/*
 * Is file e fetched with one request for all of it? At most whole_max
 * bytes, and a hash to check it against: the listed one, or else the
 * Repr-Digest the origin sends with a file up to M4F_DIGEST_MAX.
 */
static int
whole_file(const struct fetcher *f, const struct store_ent *e)
{
	return e->size > 0 && e->size <= f->conf.whole_max &&
	    (e->sha256[0] != '\0' || e->size <= M4F_DIGEST_MAX);
}

/*
 * The job of key (a block, FETCH_WHOLE) of file e at prio, coalesced
 * with one in flight; *rel is e's path, looked up here the first time a
 * job has to be created (the caller frees it). With ref set the caller
 * gets a reference. *created is or'ed with whether a job was queued (the
 * caller wakes the network thread). NULL with errno.
 */
static struct job *
want_job(struct fetcher *f, const struct store_ent *e, uint64_t key,
    enum fetch_prio prio, int ref, char **rel, int *created)
{
	struct job *j;
	int err, made = 0;

	pthread_mutex_lock(&f->lock);
	j = job_get(f, e, NULL, key, prio, ref, &made);
	pthread_mutex_unlock(&f->lock);
	if (j != NULL)
		return j;
	if (*rel == NULL && (*rel = store_path(f->store, e->id)) == NULL)
		return NULL;
	pthread_mutex_lock(&f->lock);
	j = job_get(f, e, *rel, key, prio, ref, &made);
	err = errno;
	pthread_mutex_unlock(&f->lock);
	*created |= made;
	errno = err;
	return j;
}

/*
 * Asks for the blocks [first, first+count) of file e that the store
 * lacks, at prio, each shared with a transfer already in flight. With
 * jobs set, jobs[b - first] gets the job of each missing block b with a
 * reference (the caller drops them, also on failure); without, none is
 * kept. Returns how many blocks are missing, or -1 with errno.
 */
static ssize_t
ask_blocks(struct fetcher *f, const struct store_ent *e, uint64_t first,
    uint64_t count, enum fetch_prio prio, struct job **jobs)
{
	uint64_t b, s, end;
	char *rel = NULL;
	ssize_t n = 0;
	int created = 0, r, err;
	struct job *j;

	for (b = first; b < first + count; b++) {
		s = b * f->bs;
		end = s + f->bs < e->size ? s + f->bs : e->size;
		if ((r = store_have(f->store, e->id, s, end - s, NULL)) == -1)
			goto fail;
		if (r == 1)
			continue;
		j = want_job(f, e, b, prio, jobs != NULL, &rel, &created);
		if (j == NULL)
			goto fail;
		if (jobs != NULL)
			jobs[b - first] = j;
		n++;
	}
	if (created)
		fetch_wake(f);
	free(rel);
	return n;
fail:
	err = errno;
	if (created)
		fetch_wake(f);
	free(rel);
	errno = err;
	return -1;
}

/* Drops the references in jobs[0..n) and frees jobs. */
static void
jobs_free(struct fetcher *f, struct job **jobs, uint64_t n)
{
	uint64_t b;

	if (jobs == NULL)
		return;
	for (b = 0; b < n; b++)
		if (jobs[b] != NULL)
			job_unref(f, jobs[b]);
	free(jobs);
}

/* Gives out a copy of len bytes to fill; NULL with errno. */
static unsigned char *
hold_copy(struct fetch_data *out, size_t len)
{
	struct fetch_hold *h;

	if ((h = malloc(sizeof(*h) + len)) == NULL)
		return NULL;
	h->job = NULL;
	out->hold = h;
	out->p = h->bytes;
	return h->bytes;
}

/* Serves [off, off+len) of file e from its checked blocks in the store. */
static enum step
serve_local(struct fetcher *f, const struct store_ent *e, uint64_t off,
    size_t len, struct fetch_data *out)
{
	unsigned char *buf;

	if ((buf = hold_copy(out, len)) == NULL)
		return FAILED;
	out->local = 1;
	return store_pread(f->store, e->id, buf, len, off) == (ssize_t)len ?
	    SERVED : FAILED;
}

/* Serves the complete file e from its data file. */
static enum step
serve_complete(struct fetcher *f, struct store_ent *e, struct fetch_data *out)
{
	if ((out->fd = store_open_complete(f->store, e->id)) >= 0) {
		out->local = 1;
		return SERVED;
	}
	if (errno != ENOENT)
		return FAILED;
	/*
	 * Dropped since the caller looked (retention, a change): fetch it.
	 * Still complete: its data file has gone behind the store's back,
	 * an error, never a short file (the store resets it meanwhile).
	 */
	if (store_get(f->store, e->id, e) == -1)
		return FAILED;
	if (e->state == STORE_COMPLETE) {
		errno = EIO;
		return FAILED;
	}
	return AGAIN;
}

/*
 * Serves [off, off+len) of the hashed file e, at most whole_max bytes,
 * from its one whole-file job, as soon as all of it has arrived and its
 * SHA-256 matches, while the finisher makes it durable behind the
 * reader: nothing is copied, out holds the job.
 */
static enum step
serve_whole(struct fetcher *f, const struct store_ent *e, uint64_t off,
    enum fetch_prio prio, const struct timespec *ts, struct fetch_data *out)
{
	unsigned char md[32];
	struct fetch_hold *h;
	struct job *j;
	char *rel = NULL;
	int created = 0, err, ok;

	j = want_job(f, e, FETCH_WHOLE, prio, 1, &rel, &created);
	err = errno;
	free(rel);
	if (j == NULL) {
		errno = err;
		return FAILED;
	}
	if (created)
		fetch_wake(f);
	pthread_mutex_lock(&f->lock);
	err = job_wait(f, j, j->body.fsize, ts);
	ok = j->body.whole_ok ? 1 : j->file.whole_bad ? 0 : -1;
	if (ok == -1 && err == 0 && j->body.got < j->body.fsize) {
		/*
		 * Done without a body and without an error: it found the
		 * file installed since the caller looked it up.
		 */
		if ((err = j->err) == 0 || err == EBADMSG) {
			/* A bad answer is asked again, as a wrong body. */
			pthread_mutex_unlock(&f->lock);
			job_unref(f, j);
			return err == 0 ? AGAIN : REFETCH;
		}
	}
	pthread_mutex_unlock(&f->lock);
	if (ok == -1 && err == 0)
		ok = job_verify(f, j, md);
	if (ok == 1 && (h = malloc(sizeof(*h))) != NULL) {
		h->job = j;
		out->hold = h;
		out->p = j->body.buf + off;
		return SERVED;
	}
	if (ok != 0) {
		job_unref(f, j);
		errno = err != 0 ? err : ENOMEM;
		return FAILED;
	}
	/* A wrong body: once its job is over, ask again. */
	pthread_mutex_lock(&f->lock);
	err = job_wait(f, j, UINT64_MAX, ts);
	pthread_mutex_unlock(&f->lock);
	job_unref(f, j);
	if (err != 0) {
		errno = err;
		return FAILED;
	}
	return REFETCH;
}

/*
 * Serves [off, off+len) of file e from the store's checked blocks and
 * jobs for the others, each served as soon as its answer matched its
 * Content-Digest: only the blocks the read touches are fetched or held.
 * A block that came without a digest of its own (an older origin) makes
 * the read wait for the whole file (WHOLE).
 */
static enum step
serve_blocks(struct fetcher *f, const struct store_ent *e, uint64_t off,
    size_t len, enum fetch_prio prio, const struct timespec *ts,
    struct fetch_data *out)
{
	uint64_t first = off / f->bs, last = (off + len - 1) / f->bs, b;
	uint64_t nb = last - first + 1, from, to;
	struct job **jobs, *j;
	unsigned char *buf;
	enum step step = SERVED;
	ssize_t n;
	int err = 0;

	if ((jobs = calloc(nb, sizeof(*jobs))) == NULL)
		return FAILED;
	if (ask_blocks(f, e, first, nb, prio, jobs) == -1 ||
	    (buf = hold_copy(out, len)) == NULL) {
		step = FAILED;
		goto out;
	}
	for (b = first; b <= last && step == SERVED; b++) {
		j = jobs[b - first];
		from = b == first ? off : b * f->bs;
		to = b == last ? off + len : (b + 1) * f->bs;
		if (j == NULL) {
			n = store_pread(f->store, e->id, buf + (from - off),
			    to - from, from);
			if (n != (ssize_t)(to - from)) {
				err = n == -1 ? errno : EIO;
				step = FAILED;
			}
			continue;
		}
		pthread_mutex_lock(&f->lock);
		if ((err = job_wait_checked(f, j, ts)) != 0)
			step = FAILED;
		else if (j->body.whole_ok)
			memcpy(buf + (from - off), j->body.buf +
			    (from - j->blk.off), to - from);
		else if ((err = j->err) != 0)
			step = err == EBADMSG ? REFETCH : FAILED;
		else
			step = j->blk.unchecked ? WHOLE : AGAIN;
		pthread_mutex_unlock(&f->lock);
	}
out:
	if (step == FAILED && err == 0)
		err = errno;
	jobs_free(f, jobs, nb);
	errno = err;
	return step;
}

/*
 * The hashed file e, whose blocks come without digests of their own
 * (an older origin), is fetched whole block by block, at most
 * READ_WINDOW blocks in flight for this read, until the last block's
 * write verifies and installs it (then AGAIN: serve it complete). Waits
 * until ts.
 */
static enum step
serve_unchecked(struct fetcher *f, const struct store_ent *e,
    enum fetch_prio prio, const struct timespec *ts)
{
	struct job *jobs[READ_WINDOW], *j;
	uint64_t from = 0, b, k, n;
	struct store_ent now;
	char *rel = NULL;
	enum step step = FAILED;
	int created, r, err = 0, wrapped = 0;

	for (;;) {
		/* The next window of blocks not here at all. */
		for (n = 0, created = 0; n < READ_WINDOW; n++) {
			if ((r = store_next_missing(f->store, e->id, from,
			    &b)) != 1)
				break;
			if ((jobs[n] = want_job(f, e, b, prio, 1, &rel,
			    &created)) == NULL) {
				r = -1;
				break;
			}
			from = b + 1;
		}
		err = r == -1 ? errno : 0;
		if (created)
			fetch_wake(f);
		for (k = 0; k < n; k++) {
			j = jobs[k];
			pthread_mutex_lock(&f->lock);
			if (err == 0 && (err = job_wait(f, j, UINT64_MAX,
			    ts)) == 0)
				err = j->err;
			pthread_mutex_unlock(&f->lock);
			job_unref(f, j);
		}
		if (r == -1 || err != 0) {
			step = err == EBADMSG ? REFETCH : FAILED;
			break;
		}
		if (n > 0)
			continue;
		/* None missing past from: from the start once more. */
		if (!wrapped && from > 0) {
			wrapped = 1;
			from = 0;
			continue;
		}
		if (store_get(f->store, e->id, &now) == -1)
			break;
		step = now.state == STORE_COMPLETE ? AGAIN : NAP;
		break;
	}
	free(rel);
	errno = err;
	return step;
}

/* Has ts passed? */
static int
passed(const struct timespec *ts)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > ts->tv_sec || (now.tv_sec == ts->tv_sec &&
	    now.tv_nsec >= ts->tv_nsec);
}

int
fetcher_serve(struct fetcher *f, const struct store_ent *e0, uint64_t off,
    size_t len, enum fetch_prio prio, int timeout_ms, int flags,
    struct fetch_data *out)
{
	struct timespec ts, nap = { 0, READ_NAP_MS * 1000000L };
	struct store_ent e = *e0;
	enum step step;
	int tries = 0, unchecked = 0, r, err;

	memset(out, 0, sizeof(*out));
	out->fd = -1;
	if (!fetch_prio_ok(prio)) {
		errno = EINVAL;
		return -1;
	}
	if (e.type != STORE_FILE) {
		errno = EISDIR;
		return -1;
	}
	if (off >= e.size || len == 0) {
		out->p = "";
		out->local = 1;
		return 0;
	}
	if (len > e.size - off)
		len = e.size - off;
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	fetch_deadline(&ts, timeout_ms);
	for (;;) {
		if (e.state == STORE_COMPLETE)
			step = serve_complete(f, &e, out);
		else if ((r = store_have(f->store, e.id, off, len, NULL)) != 0)
			step = r == 1 ? serve_local(f, &e, off, len, out) :
			    FAILED;
		else if (flags & FETCH_LOCAL) {
			errno = EHOSTDOWN;
			step = FAILED;
		} else if (whole_file(f, &e))
			step = serve_whole(f, &e, off, prio, &ts, out);
		else if (unchecked)
			step = serve_unchecked(f, &e, prio, &ts);
		else
			step = serve_blocks(f, &e, off, len, prio, &ts, out);

		if (step == SERVED) {
			out->len = len;
			return 0;
		}
		if (step == FAILED)
			break;
		if (step == REFETCH)
			tries++;
		if (step == WHOLE)
			unchecked = 1;
		if (step == NAP) {
			if (passed(&ts)) {
				errno = ETIMEDOUT;
				break;
			}
			nanosleep(&nap, NULL);
		}
		/* Complete now, changed, or to be fetched once more. */
		fetcher_release(f, out);
		if (store_get(f->store, e.id, &e) == -1)
			break;
		/* A hash learnt meanwhile is no change; another one is. */
		if (e.state != STORE_COMPLETE && (e.size != e0->size ||
		    (e0->sha256[0] != '\0' && strcmp(e.sha256,
		    e0->sha256) != 0) || tries == READ_TRIES)) {
			errno = EIO;
			break;
		}
	}
	err = errno;
	fetcher_release(f, out);
	errno = err;
	return -1;
}

void
fetcher_release(struct fetcher *f, struct fetch_data *d)
{
	struct fetch_hold *h = d->hold;

	if (h != NULL) {
		if (h->job != NULL)
			job_unref(f, h->job);
		free(h);
	}
	d->hold = NULL;
	d->p = NULL;
}

ssize_t
fetcher_read(struct fetcher *f, uint64_t id, void *buf, size_t len,
    uint64_t off, enum fetch_prio prio, int timeout_ms)
{
	struct fetch_data d;
	struct store_ent e;
	ssize_t n;
	int err;

	if (!fetch_prio_ok(prio)) {
		errno = EINVAL;
		return -1;
	}
	if (store_get(f->store, id, &e) == -1 ||
	    fetcher_serve(f, &e, off, len, prio, timeout_ms, 0, &d) == -1)
		return -1;
	if (d.fd >= 0) {
		close(d.fd);
		n = store_pread(f->store, id, buf, d.len, off);
	} else {
		memcpy(buf, d.p, d.len);
		n = (ssize_t)d.len;
	}
	err = errno;
	fetcher_release(f, &d);
	if (n >= 0)
		store_touch(f->store, id);
	errno = err;
	return n;
}

int
fetcher_prefetch(struct fetcher *f, const struct store_ent *e, uint64_t first,
    uint64_t count, enum fetch_prio prio)
{
	uint64_t nblocks;
	char *rel = NULL;
	int created = 0, err;
	struct job *j;

	if (!fetch_prio_ok(prio)) {
		errno = EINVAL;
		return -1;
	}
	if (e->type != STORE_FILE) {
		errno = EISDIR;
		return -1;
	}
	if (e->state == STORE_COMPLETE)
		return 0;
	if (whole_file(f, e)) {
		/* Served whole and verified: fetched whole. */
		j = want_job(f, e, FETCH_WHOLE, prio, 0, &rel, &created);
		err = errno;
		if (created)
			fetch_wake(f);
		free(rel);
		errno = err;
		return j == NULL ? -1 : 0;
	}
	/* What it holds is bounded, whatever the file's size. */
	nblocks = (e->size + f->bs - 1) / f->bs;
	if (first >= nblocks)
		count = 0;
	else if (count > nblocks - first)
		count = nblocks - first;
	if (count > READ_AHEAD_MAX)
		count = READ_AHEAD_MAX;
	return ask_blocks(f, e, first, count, prio, NULL) == -1 ? -1 : 0;
}

int
fetcher_fetching(struct fetcher *f, const struct store_ent *e)
{
	struct job *j;
	int made;

	if (e->type != STORE_FILE || e->state == STORE_COMPLETE)
		return 0;
	/* The lowest priority raises nothing; no path creates nothing. */
	pthread_mutex_lock(&f->lock);
	j = job_get(f, e, NULL, whole_file(f, e) ? FETCH_WHOLE : 0,
	    FETCH_BACKFILL, 0, &made);
	pthread_mutex_unlock(&f->lock);
	return j != NULL;
}
