/*
 * read: how a read of a file is served, decided in one place
 * (fetcher_serve):
 *
 *   complete in the store	its data file, for the caller to splice from
 *   hashed, up to whole_max	one whole-file job, served from its body
 *				once all of it is here and matches
 *   hashed, bigger		its blocks, served once every block is here
 *				and the whole file matches
 *   no hash known		its blocks, as they arrive
 *
 * and read-ahead (fetcher_prefetch) asks for the same jobs. Every wait is
 * bounded by the read's deadline. Lock order: see fetch_int.h.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "fetch_int.h"
#include "store.h"

#define READ_TRIES	3	/* fetches of a file found wrong, at most */
#define READ_NAP_MS	20	/* waiting for someone else's verdict */

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
	NAP		/* another thread is verifying the file: wait */
};

/*
 * Is file e fetched with one request for all of it? It has a known hash
 * (so it is served verified only) and at most whole_max bytes.
 */
static int
whole_file(const struct fetcher *f, const struct store_ent *e)
{
	return e->sha256[0] != '\0' && e->size > 0 &&
	    e->size <= f->conf.whole_max;
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
 * Serves [off, off+len) of file e, whose hash is not known, from the
 * store's blocks and those in flight, waiting until ts only for the
 * bytes it needs.
 */
static enum step
serve_raw(struct fetcher *f, const struct store_ent *e, uint64_t off,
    size_t len, enum fetch_prio prio, int flags, const struct timespec *ts,
    struct fetch_data *out)
{
	uint64_t first = off / f->bs, last = (off + len - 1) / f->bs, b;
	struct job **jobs = NULL;
	unsigned char *buf;
	ssize_t n;
	int r, err = 0;

	if ((buf = hold_copy(out, len)) == NULL)
		return FAILED;
	if ((r = store_have(f->store, e->id, off, len, NULL)) == -1)
		return FAILED;
	if (r == 1) {
		/* Everything here: no network at all. */
		out->local = 1;
		return store_pread(f->store, e->id, buf, len, off) ==
		    (ssize_t)len ? SERVED : FAILED;
	}
	if (flags & FETCH_LOCAL) {
		errno = EHOSTDOWN;
		return FAILED;
	}
	if ((jobs = calloc(last - first + 1, sizeof(*jobs))) == NULL ||
	    ask_blocks(f, e, first, last - first + 1, prio, jobs) == -1)
		goto out;

	/* Copy block by block, waking as soon as the needed bytes are in. */
	for (b = first; b <= last; b++) {
		struct job *j = jobs[b - first];
		uint64_t from = b == first ? off : b * f->bs;
		uint64_t to = b == last ? off + len : (b + 1) * f->bs;

		if (j == NULL) {
			n = store_pread(f->store, e->id, buf + (from - off),
			    to - from, from);
			if (n != (ssize_t)(to - from)) {
				err = n == -1 ? errno : EIO;
				break;
			}
			continue;
		}
		pthread_mutex_lock(&f->lock);
		err = job_wait(f, j, to - j->blk.off, ts);
		if (j->body.got >= to - j->blk.off)
			memcpy(buf + (from - off), j->body.buf +
			    (from - j->blk.off), to - from);
		else if (err == 0)
			err = j->err != 0 ? j->err : EIO;
		pthread_mutex_unlock(&f->lock);
		if (err != 0)
			break;
	}
	errno = err;
out:
	err = errno;
	jobs_free(f, jobs, last - first + 1);
	errno = err;
	return err == 0 ? SERVED : FAILED;
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
		if ((err = j->err) == 0) {
			pthread_mutex_unlock(&f->lock);
			job_unref(f, j);
			return AGAIN;
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
 * Serves [off, off+len) of file e from its blocks in flight (jobs[b]; the
 * store's where jobs[b] is NULL) once every byte of the file has arrived
 * and the whole file's SHA-256 matches e's: the reader does not wait for
 * the blocks to be made durable and installed. Jobs found good are marked,
 * so the next reads of them skip the hashing. Returns 1 when buf is
 * filled, 0 when it cannot decide so (a transfer failed, a mismatch: the
 * caller waits for the store's verdict), -1 with ETIMEDOUT.
 */
static int
serve_in_flight(struct fetcher *f, const struct store_ent *e,
    struct job **jobs, uint64_t nb, unsigned char *buf, size_t len,
    uint64_t off, const struct timespec *ts)
{
	unsigned char md[EVP_MAX_MD_SIZE], *tmp = NULL;
	char hex[M4F_SHA256_HEX + 1];
	EVP_MD_CTX *ctx = NULL;
	uint64_t b, s, end, from, to;
	unsigned int mdlen = 0;
	int err, full, known = 1, rc = 0;

	for (b = 0; b < nb; b++) {
		struct job *j = jobs[b];

		if (j == NULL) {
			known = 0;
			continue;
		}
		pthread_mutex_lock(&f->lock);
		err = job_wait(f, j, j->blk.len, ts);
		full = j->body.got >= j->blk.len;
		known &= j->body.whole_ok;
		pthread_mutex_unlock(&f->lock);
		if (!full) {
			if (err == ETIMEDOUT) {
				errno = ETIMEDOUT;
				return -1;
			}
			return 0;
		}
	}
	if (!known) {
		/* The file as a whole, from the bodies and the store. */
		if ((ctx = EVP_MD_CTX_new()) == NULL ||
		    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
			goto out;
		for (b = 0; b < nb; b++) {
			s = b * f->bs;
			end = s + f->bs < e->size ? s + f->bs : e->size;
			if (jobs[b] != NULL) {
				if (EVP_DigestUpdate(ctx, jobs[b]->body.buf,
				    end - s) != 1)
					goto out;
				continue;
			}
			if (tmp == NULL && (tmp = malloc(f->bs)) == NULL)
				goto out;
			if (store_pread(f->store, e->id, tmp, end - s, s) !=
			    (ssize_t)(end - s) ||
			    EVP_DigestUpdate(ctx, tmp, end - s) != 1)
				goto out;
		}
		if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32)
			goto out;
		m4f_hex_encode(md, mdlen, hex);
		if (strcmp(hex, e->sha256) != 0)
			goto out;
		pthread_mutex_lock(&f->lock);
		for (b = 0; b < nb; b++)
			if (jobs[b] != NULL)
				jobs[b]->body.whole_ok = 1;
		pthread_mutex_unlock(&f->lock);
	}
	for (b = off / f->bs; b < nb && b * f->bs < off + len; b++) {
		from = b * f->bs > off ? b * f->bs : off;
		to = (b + 1) * f->bs < off + len ? (b + 1) * f->bs : off + len;
		if (jobs[b] != NULL)
			memcpy(buf + (from - off), jobs[b]->body.buf +
			    (from - b * f->bs), to - from);
		else if (store_pread(f->store, e->id, buf + (from - off),
		    to - from, from) != (ssize_t)(to - from))
			goto out;
	}
	rc = 1;
out:
	EVP_MD_CTX_free(ctx);
	free(tmp);
	return rc;
}

/*
 * Serves [off, off+len) of the hashed file e, bigger than whole_max,
 * once the whole file is here and verified: a block cannot be checked on
 * its own, and a wrong byte from the link or the primary must never
 * reach a reader. Asks for every missing block at prio and waits until
 * ts; the last block's write verifies and installs the file, or drops
 * its blocks on a hash failure, and then it is fetched again.
 */
static enum step
serve_blocks(struct fetcher *f, const struct store_ent *e, uint64_t off,
    size_t len, enum fetch_prio prio, const struct timespec *ts,
    struct fetch_data *out)
{
	uint64_t b, nb = (e->size + f->bs - 1) / f->bs;
	struct job **jobs;
	unsigned char *buf;
	enum step step = FAILED;
	ssize_t asked;
	int r, err = 0;

	if ((jobs = calloc(nb, sizeof(*jobs))) == NULL)
		return FAILED;
	if ((asked = ask_blocks(f, e, 0, nb, prio, jobs)) == -1 ||
	    (buf = hold_copy(out, len)) == NULL)
		goto out;
	/* Every byte here and the hash right: no need to wait more. */
	if ((r = serve_in_flight(f, e, jobs, nb, buf, len, off, ts)) != 0) {
		step = r == 1 ? SERVED : FAILED;
		goto out;
	}
	/* The last block's write verifies and installs the file. */
	for (b = 0; b < nb && err == 0; b++) {
		if (jobs[b] == NULL)
			continue;
		pthread_mutex_lock(&f->lock);
		if ((err = job_wait(f, jobs[b], UINT64_MAX, ts)) == 0)
			err = jobs[b]->err;
		pthread_mutex_unlock(&f->lock);
	}
	if (err != 0)
		errno = err;
	else
		/* All here, not installed: someone else is verifying it. */
		step = asked > 0 ? REFETCH : NAP;
out:
	err = errno;
	jobs_free(f, jobs, nb);
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
	int tries = 0, r, err;

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
		else if (e.sha256[0] == '\0')
			step = serve_raw(f, &e, off, len, prio, flags, &ts, out);
		else if ((flags & FETCH_LOCAL) && (r = store_have(f->store,
		    e.id, off, len, NULL)) != 1) {
			if (r == 0)
				errno = EHOSTDOWN;
			step = FAILED;
		} else if (whole_file(f, &e))
			step = serve_whole(f, &e, off, prio, &ts, out);
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
		if (e.state != STORE_COMPLETE && (e.size != e0->size ||
		    strcmp(e.sha256, e0->sha256) != 0 || tries == READ_TRIES)) {
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
	nblocks = (e->size + f->bs - 1) / f->bs;
	if (first >= nblocks)
		count = 0;
	else if (count > nblocks - first)
		count = nblocks - first;
	return ask_blocks(f, e, first, count, prio, NULL) == -1 ? -1 : 0;
}
