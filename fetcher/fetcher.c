/*
 * fetcher: the callers' side — creating jobs, coalescing block reads,
 * waiting with a deadline. The network thread is in xfer.c, the feed in
 * feed.c; the lock order is written in fetch_int.h.
 */
#include <sys/mman.h>

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "fetch_int.h"
#include "log.h"
#include "store.h"

int64_t
fetch_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct job *
job_new(enum job_kind kind, enum fetch_prio prio)
{
	struct job *j;
	pthread_condattr_t ca;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		return NULL;
	j->kind = kind;
	j->prio = prio;
	j->refs = 1;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&j->cond, &ca);
	pthread_condattr_destroy(&ca);
	return j;
}

int
body_get(struct fetcher *f, struct job *j, uint64_t size)
{
	size_t cap = ((size > 0 ? size : 1) + FETCH_BODY_GRAIN - 1) &
	    ~(size_t)(FETCH_BODY_GRAIN - 1);
	void *p = NULL;
	int i, best = -1;

	pthread_mutex_lock(&f->spare_lock);
	/* The smallest spare that fits, if it wastes less than half. */
	for (i = 0; i < f->nspare; i++)
		if (f->spare[i].cap >= cap && f->spare[i].cap / 2 < cap &&
		    (best == -1 || f->spare[i].cap < f->spare[best].cap))
			best = i;
	if (best != -1) {
		p = f->spare[best].p;
		cap = f->spare[best].cap;
		f->spare_bytes -= cap;
		f->spare[best] = f->spare[--f->nspare];
	}
	pthread_mutex_unlock(&f->spare_lock);
	if (p == NULL && (p = mmap(NULL, cap, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)) == MAP_FAILED) {
		errno = ENOMEM;
		return -1;
	}
	j->buf = p;
	j->bufcap = cap;
	return 0;
}

/*
 * Keeps a freed body for reuse, the oldest spares unmapped to make room;
 * one bigger than all the room is unmapped at once.
 */
static void
body_put(struct fetcher *f, unsigned char *p, size_t cap)
{
	struct body old[FETCH_SPARE_BODIES];
	int n = 0, i;

	if (cap > FETCH_SPARE_BYTES) {
		munmap(p, cap);
		return;
	}
	pthread_mutex_lock(&f->spare_lock);
	while (f->nspare > 0 && (f->nspare == FETCH_SPARE_BODIES ||
	    f->spare_bytes + cap > FETCH_SPARE_BYTES)) {
		old[n++] = f->spare[0];
		f->spare_bytes -= f->spare[0].cap;
		f->nspare--;
		memmove(f->spare, f->spare + 1, sizeof(f->spare[0]) *
		    (size_t)f->nspare);
	}
	f->spare[f->nspare].p = p;
	f->spare[f->nspare++].cap = cap;
	f->spare_bytes += cap;
	pthread_mutex_unlock(&f->spare_lock);
	for (i = 0; i < n; i++)
		munmap(old[i].p, old[i].cap);
}

static void
job_free(struct fetcher *f, struct job *j)
{
	size_t i;

	if (j == NULL)
		return;
	for (i = 0; i < j->npages; i++)
		m4f_listing_free(j->pages[i]);
	free(j->pages);
	pthread_cond_destroy(&j->cond);
	free(j->after);
	free(j->json);
	free(j->members);
	free(j->fsizes);
	if (j->buf != NULL)
		body_put(f, j->buf, j->bufcap);
	free(j->rel);
	free(j);
}

void
job_release(struct fetcher *f, struct job *j)
{
	int last;

	pthread_mutex_lock(&f->lock);
	last = --j->refs == 0;
	pthread_mutex_unlock(&f->lock);
	if (last)
		job_free(f, j);
}

void
jobq_push(struct jobq *q, struct job *j)
{
	j->next = NULL;
	if (q->tail != NULL)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
}

void
job_queue(struct fetcher *f, struct job *j)
{
	j->state = JOB_QUEUED;
	jobq_push(&f->q[j->prio], j);
}

/* Moves queued job j to a more urgent queue. Under lock. */
static void
job_raise(struct fetcher *f, struct job *j, enum fetch_prio prio)
{
	struct jobq *q = &f->q[j->prio];
	struct job *p, *prev = NULL;

	if (prio >= j->prio)
		return;
	if (j->state != JOB_QUEUED) {
		/* Running or waiting for a retry: only its class changes. */
		if (j->state == JOB_RUNNING && j->crawler)
			return;	/* keeps its crawler slot until done */
		j->prio = prio;
		return;
	}
	for (p = q->head; p != NULL && p != j; p = p->next)
		prev = p;
	if (p == NULL) {
		j->prio = prio;	/* in the delayed list */
		return;
	}
	if (prev != NULL)
		prev->next = j->next;
	else
		q->head = j->next;
	if (q->tail == j)
		q->tail = prev;
	j->prio = prio;
	job_queue(f, j);
}

static unsigned
bucket(uint64_t id, uint64_t block)
{
	uint64_t h = id * 0x9e3779b97f4a7c15ULL ^ block * 0xc2b2ae3d27d4eb4fULL;

	return (unsigned)(h >> 56) % FETCH_BUCKETS;
}

void
job_unhash(struct fetcher *f, struct job *j)
{
	struct job **pp;

	for (pp = &f->blocks[bucket(j->id, j->block)]; *pp != NULL;
	    pp = &(*pp)->hnext)
		if (*pp == j) {
			*pp = j->hnext;
			j->hnext = NULL;
			return;
		}
}

static void
wake(struct fetcher *f)
{
	curl_multi_wakeup(f->multi);
}

/*
 * Returns the job fetching block b of file e, creating and queueing it if
 * there is none, with a reference for the caller when ref is set (NULL
 * and no job when ref is not set and the block is already in flight).
 * Under lock. NULL with errno on failure.
 */
static struct job *
block_job(struct fetcher *f, const struct store_ent *e, const char *rel,
    uint64_t b, enum fetch_prio prio, int ref, int *created)
{
	struct job *j;
	unsigned h = bucket(e->id, b);

	*created = 0;
	for (j = f->blocks[h]; j != NULL; j = j->hnext)
		if (j->id == e->id && j->block == b)
			break;
	if (j != NULL) {
		job_raise(f, j, prio);
		if (!ref)
			return NULL;
		j->refs++;
		return j;
	}
	if ((j = job_new(JOB_BLOCK, prio)) == NULL)
		return NULL;
	j->id = e->id;
	j->fsize = e->size;
	j->block = b;
	j->off = b * f->bs;
	j->len = e->size - j->off < f->bs ? e->size - j->off : f->bs;
	if ((j->rel = strdup(rel)) == NULL ||
	    body_get(f, j, j->len) == -1) {
		job_free(f, j);
		return NULL;
	}
	j->hnext = f->blocks[h];
	f->blocks[h] = j;
	job_queue(f, j);
	if (ref)
		j->refs++;
	*created = 1;
	return j;
}

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

/* A queued whole-file job of file e, in no table. Under lock. */
static struct job *
file_job_new(struct fetcher *f, const struct store_ent *e, const char *rel,
    enum fetch_prio prio)
{
	struct job *j;

	if ((j = job_new(JOB_FILE, prio)) == NULL)
		return NULL;
	j->id = e->id;
	j->fsize = e->size;
	j->block = FETCH_WHOLE;
	snprintf(j->fsha, sizeof(j->fsha), "%s", e->sha256);
	if ((j->rel = strdup(rel)) == NULL) {
		job_free(f, j);
		return NULL;
	}
	job_queue(f, j);
	return j;
}

/*
 * Returns the whole-file job of file e, creating and queueing it if there
 * is none; with ref set the caller gets a reference. Under lock. NULL with
 * errno on failure.
 */
static struct job *
file_job(struct fetcher *f, const struct store_ent *e, const char *rel,
    enum fetch_prio prio, int ref, int *created)
{
	struct job *j;
	unsigned h = bucket(e->id, FETCH_WHOLE);

	*created = 0;
	for (j = f->blocks[h]; j != NULL; j = j->hnext)
		if (j->id == e->id && j->block == FETCH_WHOLE)
			break;
	if (j == NULL) {
		if ((j = file_job_new(f, e, rel, prio)) == NULL)
			return NULL;
		j->hashed = 1;
		j->hnext = f->blocks[h];
		f->blocks[h] = j;
		*created = 1;
	} else
		job_raise(f, j, prio);
	if (ref)
		j->refs++;
	return j;
}

int
job_verify(struct fetcher *f, struct job *j, unsigned char md[32])
{
	char hex[M4F_SHA256_HEX + 1];
	unsigned int n = 0, i;
	int ok = 0, hashed;

	pthread_mutex_lock(&f->lock);
	/* A reader and the finisher often get there together: hash once. */
	while (j->verifying)
		pthread_cond_wait(&j->cond, &f->lock);
	if (j->whole_ok) {
		memcpy(md, j->md, 32);
		pthread_mutex_unlock(&f->lock);
		return 1;
	}
	j->verifying = 1;
	pthread_mutex_unlock(&f->lock);
	hashed = EVP_Digest(j->buf, j->fsize, md, &n, EVP_sha256(), NULL) ==
	    1 && n == 32;
	if (hashed) {
		for (i = 0; i < n; i++)
			snprintf(hex + 2 * i, 3, "%02x", md[i]);
		ok = strcmp(hex, j->fsha) == 0;
	}
	pthread_mutex_lock(&f->lock);
	j->verifying = 0;
	if (hashed && ok) {
		j->whole_ok = 1;
		memcpy(j->md, md, 32);
	} else if (hashed)
		j->whole_bad = 1;
	pthread_cond_broadcast(&j->cond);
	pthread_mutex_unlock(&f->lock);
	return hashed ? ok : -1;
}

/* Fills ts with the monotonic time timeout_ms from now. */
static void
deadline(struct timespec *ts, int timeout_ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	if (timeout_ms < 0)
		timeout_ms = 0;
	ts->tv_sec += timeout_ms / 1000;
	ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

/*
 * Looks up file id and its path. Returns 0, or -1 with errno (ENOENT,
 * EISDIR for a folder). *rel is malloc'd.
 */
static int
file_ent(struct fetcher *f, uint64_t id, struct store_ent *e, char **rel)
{
	if (store_get(f->store, id, e) == -1)
		return -1;
	if (e->type != STORE_FILE) {
		errno = EISDIR;
		return -1;
	}
	if ((*rel = store_path(f->store, id)) == NULL)
		return -1;
	return 0;
}

/*
 * Serves [off, off+len) of file e from its blocks in flight (jobs[b]; the
 * store's where jobs[b] is NULL) once every byte of the file has arrived
 * and the whole file's SHA-256 matches e's: the reader does not wait for
 * the blocks to be made durable and installed. Jobs found good are marked,
 * so the next reads of them skip the hashing. Returns len; 0 when it
 * cannot decide so (a transfer failed, a mismatch: the caller waits for
 * the store's verdict); -1 with ETIMEDOUT.
 */
static ssize_t
serve_in_flight(struct fetcher *f, const struct store_ent *e,
    struct job **jobs, uint64_t nb, void *buf, size_t len, uint64_t off,
    const struct timespec *ts)
{
	unsigned char md[EVP_MAX_MD_SIZE], *tmp = NULL;
	char hex[M4F_SHA256_HEX + 1];
	EVP_MD_CTX *ctx = NULL;
	uint64_t b, s, end, from, to;
	unsigned int mdlen = 0, i;
	int err = 0, full, known = 1;
	ssize_t rc = 0;

	for (b = 0; b < nb; b++) {
		struct job *j = jobs[b];

		if (j == NULL) {
			known = 0;
			continue;
		}
		pthread_mutex_lock(&f->lock);
		while (j->got < j->len && j->state != JOB_DONE && err == 0)
			err = pthread_cond_timedwait(&j->cond, &f->lock, ts);
		full = j->got >= j->len;
		known &= j->whole_ok;
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
		if ((ctx = EVP_MD_CTX_new()) == NULL ||
		    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
			goto out;
		for (b = 0; b < nb; b++) {
			s = b * f->bs;
			end = s + f->bs < e->size ? s + f->bs : e->size;
			if (jobs[b] != NULL) {
				if (EVP_DigestUpdate(ctx, jobs[b]->buf,
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
		for (i = 0; i < mdlen; i++)
			snprintf(hex + 2 * i, 3, "%02x", md[i]);
		if (strcmp(hex, e->sha256) != 0)
			goto out;
		pthread_mutex_lock(&f->lock);
		for (b = 0; b < nb; b++)
			if (jobs[b] != NULL)
				jobs[b]->whole_ok = 1;
		pthread_mutex_unlock(&f->lock);
	}
	for (b = off / f->bs; b < nb && b * f->bs < off + len; b++) {
		from = b * f->bs > off ? b * f->bs : off;
		to = (b + 1) * f->bs < off + len ? (b + 1) * f->bs : off + len;
		if (jobs[b] != NULL)
			memcpy((char *)buf + (from - off), jobs[b]->buf +
			    (from - b * f->bs), to - from);
		else if (store_pread(f->store, e->id, (char *)buf +
		    (from - off), to - from, from) != (ssize_t)(to - from))
			goto out;
	}
	rc = (ssize_t)len;
out:
	EVP_MD_CTX_free(ctx);
	free(tmp);
	return rc;
}

/*
 * Reads [off, off+len) of file e once the whole file is here and verified
 * against the primary's SHA-256: a block cannot be checked on its own, and
 * a wrong byte from the link or the primary must never reach a reader.
 * Fetches every missing block at prio, waits until ts for them; the last
 * block's write verifies and installs the file, or drops its blocks on a
 * hash failure, and then the fetch is tried again, up to 3 times.
 * Returns len, or -1 with errno (EIO after repeated hash failures).
 */
static ssize_t
read_verified(struct fetcher *f, const struct store_ent *e0, const char *rel,
    void *buf, size_t len, uint64_t off, enum fetch_prio prio,
    const struct timespec *ts)
{
	struct store_ent e = *e0;
	struct job **jobs;
	uint64_t b, nb = (e0->size + f->bs - 1) / f->bs, s, end;
	int tries = 0, created, any, asked, err = 0, r;
	ssize_t rc = -1;

	if ((jobs = calloc(nb, sizeof(*jobs))) == NULL)
		return -1;
	for (;;) {
		if (store_get(f->store, e0->id, &e) == -1)
			goto out;
		if (e.state == STORE_COMPLETE) {
			store_touch(f->store, e0->id);
			rc = store_pread(f->store, e0->id, buf, len, off);
			goto out;
		}
		if (e.size != e0->size || tries++ == 3) {
			errno = EIO;
			goto out;
		}
		any = asked = 0;
		for (b = 0; b < nb; b++) {
			s = b * f->bs;
			end = s + f->bs < e.size ? s + f->bs : e.size;
			if ((r = store_have(f->store, e.id, s, end - s,
			    NULL)) == -1)
				goto out;
			if (r == 1)
				continue;
			pthread_mutex_lock(&f->lock);
			jobs[b] = block_job(f, &e, rel, b, prio, 1, &created);
			err = errno;
			pthread_mutex_unlock(&f->lock);
			if (jobs[b] == NULL) {
				errno = err;
				goto out;
			}
			any |= created;
			asked = 1;
		}
		if (any)
			wake(f);
		/* Every byte here and the hash right: no need to wait more. */
		if ((rc = serve_in_flight(f, &e, jobs, nb, buf, len, off,
		    ts)) != 0)
			goto out;
		rc = -1;
		/* The last block's write verifies and installs the file. */
		err = 0;
		for (b = 0; b < nb; b++) {
			if (jobs[b] == NULL)
				continue;
			pthread_mutex_lock(&f->lock);
			while (jobs[b]->state != JOB_DONE && err == 0)
				err = pthread_cond_timedwait(&jobs[b]->cond,
				    &f->lock, ts);
			if (err == 0 && jobs[b]->err != 0)
				err = jobs[b]->err;
			else if (err != 0)
				err = ETIMEDOUT;
			pthread_mutex_unlock(&f->lock);
			if (err != 0) {
				errno = err;
				goto out;
			}
		}
		for (b = 0; b < nb; b++)
			if (jobs[b] != NULL) {
				job_release(f, jobs[b]);
				jobs[b] = NULL;
			}
		if (!asked) {
			/* All here, not installed: someone is verifying it. */
			struct timespec nap = { 0, 20 * 1000000 }, now;

			clock_gettime(CLOCK_MONOTONIC, &now);
			if (now.tv_sec > ts->tv_sec || (now.tv_sec == ts->tv_sec &&
			    now.tv_nsec >= ts->tv_nsec)) {
				errno = ETIMEDOUT;
				goto out;
			}
			nanosleep(&nap, NULL);
			tries--;
		}
	}
out:
	err = errno;
	for (b = 0; b < nb; b++)
		if (jobs[b] != NULL)
			job_release(f, jobs[b]);
	free(jobs);
	errno = err;
	return rc;
}

/*
 * Reads [off, off+len) of file e0 (hashed, at most whole_max) from
 * one whole-file job: served as soon as all of it has arrived and its
 * SHA-256 matches, while the finisher makes it durable behind the reader.
 * A body that does not match is fetched again, up to 3 times. Returns
 * len, or -1 with errno (EIO after repeated hash failures). With pin set
 * nothing is copied: *pin gets the job, its reference kept, and the
 * bytes are its body's; buf may then be NULL, and 0 returned says the
 * file is complete in the store, to be read from there.
 */
static ssize_t
read_whole(struct fetcher *f, const struct store_ent *e0, const char *rel,
    void *buf, size_t len, uint64_t off, enum fetch_prio prio,
    const struct timespec *ts, struct job **pin)
{
	unsigned char md[32];
	struct store_ent e;
	struct job *j;
	int tries = 0, created, err, ok;

	for (;;) {
		if (store_get(f->store, e0->id, &e) == -1)
			return -1;
		if (e.state == STORE_COMPLETE) {
			if (buf == NULL)
				return 0;
			store_touch(f->store, e0->id);
			return store_pread(f->store, e0->id, buf, len, off);
		}
		if (e.size != e0->size || strcmp(e.sha256, e0->sha256) != 0 ||
		    tries++ == 3) {
			errno = EIO;
			return -1;
		}
		pthread_mutex_lock(&f->lock);
		j = file_job(f, &e, rel, prio, 1, &created);
		err = errno;
		pthread_mutex_unlock(&f->lock);
		if (j == NULL) {
			errno = err;
			return -1;
		}
		if (created)
			wake(f);
		err = 0;
		pthread_mutex_lock(&f->lock);
		while (!j->whole_ok && !j->whole_bad && j->got < j->fsize &&
		    j->state != JOB_DONE && err == 0)
			err = pthread_cond_timedwait(&j->cond, &f->lock, ts);
		ok = j->whole_ok ? 1 : j->whole_bad ? 0 : -1;
		if (ok == -1 && j->got < j->fsize)
			err = j->state == JOB_DONE ? (j->err != 0 ? j->err :
			    EIO) : ETIMEDOUT;
		pthread_mutex_unlock(&f->lock);
		if (ok == -1 && err == 0)
			ok = job_verify(f, j, md);
		if (ok == 1 && pin != NULL) {
			*pin = j;
			return (ssize_t)len;
		}
		if (ok == 1) {
			memcpy(buf, j->buf + off, len);
			job_release(f, j);
			return (ssize_t)len;
		}
		if (ok == -1) {
			job_release(f, j);
			errno = err != 0 ? err : ENOMEM;
			return -1;
		}
		/* A wrong body: once its job is over, ask again. */
		err = 0;
		pthread_mutex_lock(&f->lock);
		while (j->state != JOB_DONE && err == 0)
			err = pthread_cond_timedwait(&j->cond, &f->lock, ts);
		pthread_mutex_unlock(&f->lock);
		job_release(f, j);
		if (err != 0) {
			errno = ETIMEDOUT;
			return -1;
		}
	}
}

/* Bytes a reader holds: a verified body in memory, or a copy. */
struct fetch_ref {
	struct job	*job;
	unsigned char	 bytes[];
};

ssize_t
fetcher_read_ref(struct fetcher *f, uint64_t id, size_t len, uint64_t off,
    enum fetch_prio prio, int timeout_ms, const void **data,
    struct fetch_ref **ref)
{
	struct fetch_ref *r;
	struct store_ent e;
	struct timespec ts;
	struct job *j = NULL;
	char *rel;
	ssize_t n = 0;
	int err;

	*ref = NULL;
	if (prio < FETCH_VIEWER || prio > FETCH_BACKFILL) {
		errno = EINVAL;
		return -1;
	}
	if (store_get(f->store, id, &e) == 0 && e.type == STORE_FILE &&
	    e.state != STORE_COMPLETE && whole_file(f, &e) && off < e.size &&
	    len > 0) {
		if ((rel = store_path(f->store, id)) == NULL)
			return -1;
		if (len > e.size - off)
			len = e.size - off;
		deadline(&ts, timeout_ms);
		n = read_whole(f, &e, rel, NULL, len, off, prio, &ts, &j);
		err = errno;
		free(rel);
		errno = err;
		if (n < 0)
			return -1;
	}
	if (j != NULL) {
		if ((r = malloc(sizeof(*r))) == NULL) {
			job_release(f, j);
			return -1;
		}
		r->job = j;
		*data = j->buf + off;
	} else {
		if ((r = malloc(sizeof(*r) + len)) == NULL)
			return -1;
		r->job = NULL;
		if ((n = fetcher_read(f, id, r->bytes, len, off, prio,
		    timeout_ms)) < 0) {
			err = errno;
			free(r);
			errno = err;
			return -1;
		}
		*data = r->bytes;
	}
	*ref = r;
	return n;
}

void
fetcher_unref(struct fetcher *f, struct fetch_ref *r)
{
	if (r == NULL)
		return;
	if (r->job != NULL)
		job_release(f, r->job);
	free(r);
}

ssize_t
fetcher_read(struct fetcher *f, uint64_t id, void *buf, size_t len,
    uint64_t off, enum fetch_prio prio, int timeout_ms)
{
	struct store_ent e;
	struct timespec ts;
	struct job **jobs = NULL;
	char *rel = NULL;
	uint64_t first, last, b, n, s, end;
	ssize_t rc = -1;
	int created, any = 0, err = 0, r;

	if (prio < FETCH_VIEWER || prio > FETCH_BACKFILL) {
		errno = EINVAL;
		return -1;
	}
	if (store_get(f->store, id, &e) == -1)
		return -1;
	if (e.type != STORE_FILE) {
		errno = EISDIR;
		return -1;
	}
	if (off >= e.size || len == 0)
		return 0;
	if (len > e.size - off)
		len = e.size - off;
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;

	/* Files with a known hash are served verified only. */
	if (e.state != STORE_COMPLETE && e.sha256[0] != '\0') {
		if ((rel = store_path(f->store, id)) == NULL)
			return -1;
		deadline(&ts, timeout_ms);
		if (whole_file(f, &e))
			rc = read_whole(f, &e, rel, buf, len, off, prio, &ts,
			    NULL);
		else
			rc = read_verified(f, &e, rel, buf, len, off, prio,
			    &ts);
		err = errno;
		free(rel);
		errno = err;
		return rc;
	}

	/* Everything here: no network at all. */
	if ((r = store_have(f->store, id, off, len, NULL)) == -1)
		return -1;
	if (r == 1) {
		store_touch(f->store, id);
		return store_pread(f->store, id, buf, len, off);
	}

	if ((rel = store_path(f->store, id)) == NULL)
		return -1;
	first = off / f->bs;
	last = (off + len - 1) / f->bs;
	n = last - first + 1;
	if ((jobs = calloc(n, sizeof(*jobs))) == NULL)
		goto out;

	/* Which blocks are missing: ask for all of them at once. */
	for (b = first; b <= last; b++) {
		s = b * f->bs;
		end = s + f->bs < e.size ? s + f->bs : e.size;
		if ((r = store_have(f->store, id, s, end - s, NULL)) == -1)
			goto out;
		if (r == 1)
			continue;
		pthread_mutex_lock(&f->lock);
		jobs[b - first] = block_job(f, &e, rel, b, prio, 1, &created);
		err = errno;
		pthread_mutex_unlock(&f->lock);
		if (jobs[b - first] == NULL) {
			errno = err;
			goto out;
		}
		any |= created;
	}
	if (any)
		wake(f);

	/* Copy block by block, waking as soon as the needed bytes are in. */
	deadline(&ts, timeout_ms);
	for (b = first; b <= last; b++) {
		struct job *j = jobs[b - first];
		uint64_t from = b == first ? off : b * f->bs;
		uint64_t to = b == last ? off + len : (b + 1) * f->bs;
		ssize_t got;

		if (j == NULL) {
			got = store_pread(f->store, id, (char *)buf + (from - off),
			    to - from, from);
			if (got == -1)
				goto out;
			if ((uint64_t)got != to - from) {
				errno = EIO;
				goto out;
			}
			continue;
		}
		pthread_mutex_lock(&f->lock);
		err = 0;
		while (j->got < to - j->off && j->state != JOB_DONE && err == 0)
			err = pthread_cond_timedwait(&j->cond, &f->lock, &ts);
		if (j->got >= to - j->off) {
			memcpy((char *)buf + (from - off), j->buf + (from - j->off),
			    to - from);
			err = 0;
		} else if (j->state == JOB_DONE)
			err = j->err != 0 ? j->err : EIO;
		else
			err = ETIMEDOUT;
		pthread_mutex_unlock(&f->lock);
		if (err != 0) {
			errno = err;
			goto out;
		}
	}
	store_touch(f->store, id);
	rc = (ssize_t)len;
out:
	err = errno;
	if (jobs != NULL)
		for (b = 0; b < n; b++)
			if (jobs[b] != NULL)
				job_release(f, jobs[b]);
	free(jobs);
	free(rel);
	errno = err;
	return rc;
}

int
fetcher_prefetch(struct fetcher *f, uint64_t id, uint64_t first,
    uint64_t count, enum fetch_prio prio)
{
	struct store_ent e;
	char *rel = NULL;
	uint64_t b, nblocks, s, end;
	int created, any = 0, r, err;

	if (prio < FETCH_VIEWER || prio > FETCH_BACKFILL) {
		errno = EINVAL;
		return -1;
	}
	if (file_ent(f, id, &e, &rel) == -1)
		return -1;
	if (e.state == STORE_COMPLETE) {
		free(rel);
		return 0;
	}
	if (whole_file(f, &e)) {
		/* Served whole and verified: fetched whole. */
		pthread_mutex_lock(&f->lock);
		r = file_job(f, &e, rel, prio, 0, &created) == NULL ? -1 : 0;
		err = errno;
		pthread_mutex_unlock(&f->lock);
		if (created)
			wake(f);
		free(rel);
		errno = err;
		return r;
	}
	nblocks = (e.size + f->bs - 1) / f->bs;
	if (first >= nblocks)
		count = 0;
	else if (count > nblocks - first)
		count = nblocks - first;
	for (b = first; b < first + count; b++) {
		s = b * f->bs;
		end = s + f->bs < e.size ? s + f->bs : e.size;
		if ((r = store_have(f->store, id, s, end - s, NULL)) == -1)
			goto fail;
		if (r == 1)
			continue;
		pthread_mutex_lock(&f->lock);
		errno = 0;
		if (block_job(f, &e, rel, b, prio, 0, &created) == NULL &&
		    errno != 0) {
			err = errno;
			pthread_mutex_unlock(&f->lock);
			errno = err;
			goto fail;
		}
		pthread_mutex_unlock(&f->lock);
		any |= created;
	}
	if (any)
		wake(f);
	free(rel);
	return 0;
fail:
	err = errno;
	if (any)
		wake(f);
	free(rel);
	errno = err;
	return -1;
}

void
fetcher_hold(struct fetcher *f, int hold)
{
	int held;

	pthread_mutex_lock(&f->lock);
	held = hold ? ++f->held : --f->held;
	pthread_mutex_unlock(&f->lock);
	if (held == 0)
		wake(f);
}

int
fetcher_get_file(struct fetcher *f, uint64_t id, enum fetch_prio prio,
    void (*done)(void *arg, uint64_t id, int err), void *arg)
{
	struct store_ent e;
	struct job *j;
	char *rel;
	int created, err;

	if (prio < FETCH_VIEWER || prio > FETCH_BACKFILL) {
		errno = EINVAL;
		return -1;
	}
	if (file_ent(f, id, &e, &rel) == -1)
		return -1;
	pthread_mutex_lock(&f->lock);
	j = file_job(f, &e, rel, prio, 0, &created);
	err = errno;
	if (j != NULL && !created && j->done != NULL) {
		/* Someone else's callback: a job of its own, not in the table. */
		j = file_job_new(f, &e, rel, prio);
		created = j != NULL;
		err = errno;
	}
	if (j != NULL) {
		j->done = done;
		j->done_arg = arg;
	}
	pthread_mutex_unlock(&f->lock);
	free(rel);
	if (j == NULL) {
		errno = err;
		return -1;
	}
	if (created)
		wake(f);
	return 0;
}

/*
 * Creates and queues a listing job; with ref set the caller gets a
 * reference too. NULL with errno.
 */
static struct job *
list_job(struct fetcher *f, const char *rel, int recursive,
    enum fetch_prio prio, int ref)
{
	struct job *j;

	if (m4f_path_check(rel) == -1)
		return NULL;
	if ((j = job_new(JOB_LIST, prio)) == NULL)
		return NULL;
	j->recursive = recursive != 0;
	if ((j->rel = strdup(rel)) == NULL) {
		job_free(f, j);
		return NULL;
	}
	pthread_mutex_lock(&f->lock);
	if (ref)
		j->refs++;
	job_queue(f, j);
	pthread_mutex_unlock(&f->lock);
	wake(f);
	return j;
}

int
fetch_list_async(struct fetcher *f, const char *rel, int recursive,
    enum fetch_prio prio)
{
	return list_job(f, rel, recursive, prio, 0) == NULL ? -1 : 0;
}

void
fetch_refresh_parent(struct fetcher *f, const char *rel, enum fetch_prio prio)
{
	const char *slash = strrchr(rel, '/');
	char *dir;

	if ((dir = strndup(rel, slash != NULL ? (size_t)(slash - rel) : 0)) ==
	    NULL)
		return;
	if (fetch_list_async(f, dir, 0, prio) == -1)
		log_warn("refresh of \"%s\"", dir);
	free(dir);
}

int
fetcher_list(struct fetcher *f, const char *rel, int recursive,
    enum fetch_prio prio, int timeout_ms)
{
	struct timespec ts;
	struct job *j;
	int err = 0;

	if (prio < FETCH_VIEWER || prio > FETCH_BACKFILL) {
		errno = EINVAL;
		return -1;
	}
	if ((j = list_job(f, rel, recursive, prio, 1)) == NULL)
		return -1;
	deadline(&ts, timeout_ms);
	pthread_mutex_lock(&f->lock);
	while (j->state != JOB_DONE && err == 0)
		err = pthread_cond_timedwait(&j->cond, &f->lock, &ts);
	err = j->state == JOB_DONE ? j->err : ETIMEDOUT;
	pthread_mutex_unlock(&f->lock);
	job_release(f, j);
	if (err != 0) {
		errno = err;
		return -1;
	}
	return 0;
}

int
fetcher_follow(struct fetcher *f,
    void (*cb)(void *arg, const struct fetcher_change *), void *arg)
{
	pthread_mutex_lock(&f->lock);
	if (f->follow) {
		pthread_mutex_unlock(&f->lock);
		errno = EALREADY;
		return -1;
	}
	f->follow = 1;
	f->follow_cb = cb;
	f->follow_arg = arg;
	pthread_mutex_unlock(&f->lock);
	wake(f);
	return 0;
}

void
fetcher_stats(struct fetcher *f, struct fetcher_stats *out)
{
	int i;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < 3; i++)
		out->bytes[i] = atomic_load(&f->st_bytes[i]);
	out->requests = atomic_load(&f->st_requests);
	out->failures = atomic_load(&f->st_failures);
	out->retries = atomic_load(&f->st_retries);
	out->bad_answers = atomic_load(&f->st_bad);
	out->connected = atomic_load(&f->st_connected);
	out->answers = atomic_load(&f->st_answers);
	out->auth_failed = atomic_load(&f->st_auth_failed);
}

/* Writes "scheme://host:port" into buf. Returns 0, or -1 with EINVAL. */
static int
make_base(char *buf, size_t sz, int tls, const char *host, int port)
{
	int n;
	int v6 = strchr(host, ':') != NULL && host[0] != '[';

	n = snprintf(buf, sz, "%s://%s%s%s:%d", tls ? "https" : "http",
	    v6 ? "[" : "", host, v6 ? "]" : "", port);
	if (n < 0 || (size_t)n >= sz) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

/* Copies conf into f and checks it. Returns 0, or -1 with errno. */
static int
conf_copy(struct fetcher *f, const struct fetcher_conf *conf)
{
	size_t n;
	const char *s;

	f->conf = *conf;
	if (conf->host == NULL || conf->host[0] == '\0' ||
	    conf->export == NULL || conf->export[0] != '/' ||
	    conf->port <= 0 || conf->port > 65535 ||
	    conf->replication_port < 0 || conf->replication_port > 65535 ||
	    conf->transfers < 0 || conf->retries < 0 ||
	    conf->connect_timeout_ms < 0 || (conf->key == NULL) !=
	    (conf->keylen == 0)) {
		errno = EINVAL;
		return -1;
	}
	if (f->conf.connect_timeout_ms == 0)
		f->conf.connect_timeout_ms = 5000;
	if (f->conf.transfers == 0)
		f->conf.transfers = 4;
	if (f->conf.whole_max == 0 || f->conf.whole_max > FETCH_FILE_MAX)
		f->conf.whole_max = FETCH_WHOLE_MAX;
	if (f->conf.retries == 0)
		f->conf.retries = 3;
	if (f->conf.replication_port == 0)
		f->conf.replication_port = conf->port;

	/* "/storage/" and "/storage" name the same export. */
	n = strlen(conf->export);
	while (n > 1 && conf->export[n - 1] == '/')
		n--;
	if (n == 1)
		n = 0;	/* the origin's "/": the empty path */
	if ((f->host = strdup(conf->host)) == NULL ||
	    (f->export = strndup(conf->export, n)) == NULL)
		return -1;
	if (n > 0 && m4f_path_check(f->export + 1) == -1)
		return -1;
	if (conf->cafile != NULL && (f->cafile = strdup(conf->cafile)) == NULL)
		return -1;
	if (conf->key != NULL) {
		if ((f->key = malloc(conf->keylen)) == NULL)
			return -1;
		memcpy(f->key, conf->key, conf->keylen);
	}
	f->conf.host = f->host;
	f->conf.export = f->export;
	f->conf.cafile = f->cafile;
	f->conf.key = f->key;
	if (make_base(f->base, sizeof(f->base), conf->tls, f->host,
	    f->conf.port) == -1 ||
	    make_base(f->rbase, sizeof(f->rbase), conf->tls, f->host,
	    f->conf.replication_port) == -1)
		return -1;

	/* Lowered by tests to exercise paging. */
	f->list_limit = M4F_LIST_LIMIT_DEFAULT;
	if ((s = getenv("DVRFS_LIST_LIMIT")) != NULL) {
		char *end;
		unsigned long v;

		errno = 0;
		v = strtoul(s, &end, 10);
		if (errno == 0 && *end == '\0' && v >= 1 &&
		    v <= M4F_LIST_LIMIT_MAX)
			f->list_limit = (unsigned)v;
	}
	return 0;
}

/* Lets the finishers drain their queues, then joins them. */
static void
stop_finishers(struct fetcher *f)
{
	int i;

	pthread_mutex_lock(&f->lock);
	f->fin_stop = 1;
	pthread_cond_broadcast(&f->fin_cond[0]);
	pthread_cond_broadcast(&f->fin_cond[1]);
	pthread_mutex_unlock(&f->lock);
	for (i = 0; i < f->nfinishers; i++)
		pthread_join(f->finisher[i], NULL);
	f->nfinishers = 0;
	pthread_cond_destroy(&f->fin_cond[0]);
	pthread_cond_destroy(&f->fin_cond[1]);
}

static void
conf_free(struct fetcher *f)
{
	free(f->host);
	free(f->export);
	free(f->cafile);
	free(f->key);
}

static void
global_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct fetcher *
fetcher_new(const struct fetcher_conf *conf, struct store *store)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct fetcher *f;
	int err;

	if (conf == NULL || store == NULL) {
		errno = EINVAL;
		return NULL;
	}
	pthread_once(&once, global_init);
	if ((f = calloc(1, sizeof(*f))) == NULL)
		return NULL;
	if (conf_copy(f, conf) == -1)
		goto fail;
	f->store = store;
	f->bs = store_block_size(store);
	if (f->bs == 0) {
		errno = EINVAL;
		goto fail;
	}
	f->reachable = -1;
	f->refill = fetch_now_ms();
	pthread_mutex_init(&f->lock, NULL);
	pthread_mutex_init(&f->spare_lock, NULL);
	if ((f->multi = curl_multi_init()) == NULL) {
		errno = ENOMEM;
		goto fail_lock;
	}
	curl_multi_setopt(f->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
	    (long)f->conf.transfers + 16);
	curl_multi_setopt(f->multi, CURLMOPT_MAXCONNECTS,
	    (long)f->conf.transfers + 32);
	pthread_cond_init(&f->fin_cond[0], NULL);
	pthread_cond_init(&f->fin_cond[1], NULL);
	/* The finishers learn their queue from f->finisher: hold them. */
	pthread_mutex_lock(&f->lock);
	for (; f->nfinishers < FETCH_FINISHERS; f->nfinishers++)
		if ((err = pthread_create(&f->finisher[f->nfinishers], NULL,
		    fetch_finisher_main, f)) != 0)
			break;
	pthread_mutex_unlock(&f->lock);
	if (f->nfinishers < FETCH_FINISHERS) {
		errno = err;
		goto fail_finishers;
	}
	if ((err = pthread_create(&f->thread, NULL, xfer_main, f)) != 0) {
		errno = err;
		goto fail_finishers;
	}
	return f;
fail_finishers:
	err = errno;
	stop_finishers(f);
	curl_multi_cleanup(f->multi);
	errno = err;
fail_lock:
	pthread_mutex_destroy(&f->spare_lock);
	pthread_mutex_destroy(&f->lock);
fail:
	err = errno;
	conf_free(f);
	free(f);
	errno = err;
	return NULL;
}

void
fetcher_free(struct fetcher *f)
{
	if (f == NULL)
		return;
	pthread_mutex_lock(&f->lock);
	f->stop = 1;
	pthread_mutex_unlock(&f->lock);
	curl_multi_wakeup(f->multi);
	pthread_join(f->thread, NULL);
	stop_finishers(f);
	curl_multi_cleanup(f->multi);
	while (f->nspare > 0) {
		f->nspare--;
		munmap(f->spare[f->nspare].p, f->spare[f->nspare].cap);
	}
	pthread_mutex_destroy(&f->spare_lock);
	pthread_mutex_destroy(&f->lock);
	conf_free(f);
	free(f);
}
