/*
 * job: a request's life, its body, the block table and the queues; the
 * bottom of fetcher/ (job.h). Lock order: see fetch_int.h.
 */
#include <sys/mman.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "fetch_int.h"
#include "log.h"
#include "store.h"

#define RETRY_BASE_MS	200
#define RETRY_MAX_MS	5000
#define JOB_WAIT_SLICE_MS 100	/* a waiter looks at fetcher_cancel() */

_Static_assert(FETCH_BACKFILL + 1 == FETCH_PRIOS,
    "FETCH_PRIOS counts enum fetch_prio");

int64_t
fetch_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
fetch_deadline(struct timespec *ts, int timeout_ms)
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

int
fetch_prio_ok(enum fetch_prio prio)
{
	return (unsigned)prio < FETCH_PRIOS;
}

void
fetch_wake(struct fetcher *f)
{
	curl_multi_wakeup(f->multi);
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
jobq_push_front(struct jobq *q, struct job *j)
{
	j->next = q->head;
	q->head = j;
	if (q->tail == NULL)
		q->tail = j;
}

struct job *
jobq_pop(struct jobq *q)
{
	struct job *j = q->head;

	if (j != NULL)
		jobq_unlink(q, j, NULL);
	return j;
}

void
jobq_unlink(struct jobq *q, struct job *j, struct job *prev)
{
	if (prev != NULL)
		prev->next = j->next;
	else
		q->head = j->next;
	if (q->tail == j)
		q->tail = prev;
	j->next = NULL;
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

void
job_ref(struct job *j)
{
	j->refs++;
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
	j->body.buf = p;
	j->body.bufcap = cap;
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

void
body_append(struct fetcher *f, struct job *j, const char *p, size_t n)
{
	unsigned char *dst = j->body.buf + j->body.got, sum[32];
	int last = n == j->body.fsize - j->body.got;

	if (j->body.got == 0) {
		if (j->file.hctx == NULL)
			j->file.hctx = EVP_MD_CTX_new();
		j->file.hashing = j->file.hctx != NULL &&
		    EVP_DigestInit_ex(j->file.hctx, EVP_sha256(), NULL) == 1;
	}
	/*
	 * Only this thread writes the body, and no one reads past got:
	 * the copy and its hash need not hold the lock.
	 */
	memcpy(dst, p, n);
	if (j->file.hashing && EVP_DigestUpdate(j->file.hctx, dst, n) != 1)
		j->file.hashing = 0;
	if (last && j->file.hashing && EVP_DigestFinal_ex(j->file.hctx, sum,
	    NULL) != 1)
		j->file.hashing = 0;
	pthread_mutex_lock(&f->lock);
	j->body.got += n;
	j->file.summed = last && j->file.hashing;
	if (j->file.summed)
		memcpy(j->file.sum, sum, sizeof(sum));
	if (last)
		pthread_cond_broadcast(&j->cond);
	pthread_mutex_unlock(&f->lock);
}

void
body_pool_free(struct fetcher *f)
{
	while (f->nspare > 0) {
		f->nspare--;
		munmap(f->spare[f->nspare].p, f->spare[f->nspare].cap);
	}
	f->spare_bytes = 0;
}

/* Frees a job nobody else knows of (any more). NULL ok. */
static void
job_free(struct fetcher *f, struct job *j)
{
	size_t i;

	if (j == NULL)
		return;
	for (i = 0; i < j->list.npages; i++)
		m4f_listing_free(j->list.pages[i]);
	free(j->list.pages);
	free(j->list.after);
	free(j->json.p);
	free(j->file.members);
	free(j->file.sizes);
	free(j->digests);
	EVP_MD_CTX_free(j->file.hctx);
	if (j->body.buf != NULL)
		body_put(f, j->body.buf, j->body.bufcap);
	pthread_cond_destroy(&j->cond);
	free(j->rel);
	free(j);
}

void
job_unref(struct fetcher *f, struct job *j)
{
	int last;

	pthread_mutex_lock(&f->lock);
	last = --j->refs == 0;
	pthread_mutex_unlock(&f->lock);
	if (last)
		job_free(f, j);
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
	jobq_unlink(q, j, prev);
	j->prio = prio;
	job_queue(f, j);
}

static unsigned
bucket(uint64_t id, uint64_t key)
{
	uint64_t h = id * 0x9e3779b97f4a7c15ULL ^ key * 0xc2b2ae3d27d4eb4fULL;

	return (unsigned)(h >> 56) % FETCH_BUCKETS;
}

/* The job of key of file id in the block table, or NULL. Under lock. */
static struct job *
job_find(struct fetcher *f, uint64_t id, uint64_t key)
{
	struct job *j;

	for (j = f->blocks[bucket(id, key)]; j != NULL; j = j->body.hnext)
		if (j->body.id == id && j->body.key == key)
			return j;
	return NULL;
}

/* Enters j in the block table. Under lock. */
static void
job_hash(struct fetcher *f, struct job *j)
{
	unsigned h = bucket(j->body.id, j->body.key);

	j->body.hnext = f->blocks[h];
	f->blocks[h] = j;
}

/* Removes j from the block table. Under lock. */
static void
job_unhash(struct fetcher *f, struct job *j)
{
	struct job **pp;

	for (pp = &f->blocks[bucket(j->body.id, j->body.key)]; *pp != NULL;
	    pp = &(*pp)->body.hnext)
		if (*pp == j) {
			*pp = j->body.hnext;
			j->body.hnext = NULL;
			return;
		}
}

/* A new job of kind fetching key of file e (path rel). NULL with errno. */
static struct job *
body_job_new(struct fetcher *f, const struct store_ent *e, const char *rel,
    enum job_kind kind, uint64_t key, enum fetch_prio prio)
{
	struct job *j;

	if ((j = job_new(kind, prio)) == NULL)
		return NULL;
	j->body.id = e->id;
	j->body.fsize = e->size;
	j->body.key = key;
	if ((j->rel = strdup(rel)) == NULL) {
		job_free(f, j);
		return NULL;
	}
	return j;
}

struct job *
file_job_new(struct fetcher *f, const struct store_ent *e, const char *rel,
    enum fetch_prio prio)
{
	struct job *j;

	if ((j = body_job_new(f, e, rel, JOB_FILE, FETCH_WHOLE, prio)) == NULL)
		return NULL;
	snprintf(j->file.sha, sizeof(j->file.sha), "%s", e->sha256);
	job_queue(f, j);
	return j;
}

struct job *
job_get(struct fetcher *f, const struct store_ent *e, const char *rel,
    uint64_t key, enum fetch_prio prio, int ref, int *created)
{
	struct job *j;

	*created = 0;
	if ((j = job_find(f, e->id, key)) != NULL)
		job_raise(f, j, prio);
	else if (rel == NULL)
		return NULL;
	else if (key == FETCH_WHOLE) {
		if ((j = file_job_new(f, e, rel, prio)) == NULL)
			return NULL;
		j->file.hashed = 1;
		job_hash(f, j);
		*created = 1;
	} else {
		if ((j = body_job_new(f, e, rel, JOB_BLOCK, key, prio)) == NULL)
			return NULL;
		j->blk.off = key * f->bs;
		j->blk.len = e->size - j->blk.off < f->bs ?
		    e->size - j->blk.off : f->bs;
		j->blk.known = e->sha256[0] != '\0';
		if (body_get(f, j, j->blk.len) == -1) {
			job_free(f, j);
			return NULL;
		}
		job_hash(f, j);
		job_queue(f, j);
		*created = 1;
	}
	if (ref)
		job_ref(j);
	return j;
}

/*
 * One wait on j->cond until ts, at most JOB_WAIT_SLICE_MS: a waiter
 * notices fetcher_cancel() without being woken. Returns 0, ETIMEDOUT
 * when ts has passed, ECANCELED. Under lock.
 */
static int
wait_slice(struct fetcher *f, struct job *j, const struct timespec *ts)
{
	struct timespec now, t;

	if (atomic_load(&f->cancel))
		return ECANCELED;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec > ts->tv_sec || (now.tv_sec == ts->tv_sec &&
	    now.tv_nsec >= ts->tv_nsec))
		return ETIMEDOUT;
	t = now;
	t.tv_nsec += JOB_WAIT_SLICE_MS * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	if (t.tv_sec > ts->tv_sec || (t.tv_sec == ts->tv_sec &&
	    t.tv_nsec > ts->tv_nsec))
		t = *ts;
	pthread_cond_timedwait(&j->cond, &f->lock, &t);
	return 0;
}

int
job_wait(struct fetcher *f, struct job *j, uint64_t want,
    const struct timespec *ts)
{
	int err = 0;

	while (j->body.got < want && j->state != JOB_DONE && err == 0)
		err = wait_slice(f, j, ts);
	return j->body.got >= want || j->state == JOB_DONE ? 0 : err;
}

int
job_wait_checked(struct fetcher *f, struct job *j, const struct timespec *ts)
{
	int err = 0;

	while (!j->body.whole_ok && j->state != JOB_DONE && err == 0)
		err = wait_slice(f, j, ts);
	return j->body.whole_ok || j->state == JOB_DONE ? 0 : err;
}

int
job_verify(struct fetcher *f, struct job *j, unsigned char md[32])
{
	char hex[M4F_SHA256_HEX + 1], want[M4F_SHA256_HEX + 1];
	int ok = 0, hashed, summed;

	pthread_mutex_lock(&f->lock);
	/* A reader and the finisher often get there together: hash once. */
	while (j->file.verifying)
		pthread_cond_wait(&j->cond, &f->lock);
	if (j->body.whole_ok) {
		memcpy(md, j->file.md, 32);
		pthread_mutex_unlock(&f->lock);
		return 1;
	}
	j->file.verifying = 1;
	/* Set before the body's first byte, when it came with the answer. */
	memcpy(want, j->file.sha[0] != '\0' ? j->file.sha : j->file.dsha,
	    sizeof(want));
	/* Hashed as it arrived, unless that failed. */
	summed = j->file.summed && j->body.got == j->body.fsize;
	if (summed)
		memcpy(md, j->file.sum, 32);
	pthread_mutex_unlock(&f->lock);
	hashed = summed || m4f_sha256(j->body.buf, j->body.fsize, md) == 0;
	if (hashed) {
		m4f_hex_encode(md, 32, hex);
		ok = want[0] != '\0' && strcmp(hex, want) == 0;
	}
	pthread_mutex_lock(&f->lock);
	j->file.verifying = 0;
	if (hashed && ok) {
		j->body.whole_ok = 1;
		memcpy(j->file.md, md, 32);
	} else if (hashed)
		j->file.whole_bad = 1;
	pthread_cond_broadcast(&j->cond);
	pthread_mutex_unlock(&f->lock);
	return hashed ? ok : -1;
}

int
job_json_ok(const struct job *j)
{
	char hex[M4F_SHA256_HEX + 1];

	if (strlen(j->bsha) != M4F_SHA256_HEX ||
	    m4f_sha256_hex(j->json.p != NULL ? j->json.p : "", j->json.len,
	    hex) == -1)
		return 0;
	return strcasecmp(hex, j->bsha) == 0;
}

struct job *
list_job(struct fetcher *f, const char *rel, int recursive,
    enum fetch_prio prio, int ref)
{
	struct job *j;

	if (m4f_path_check(rel) == -1)
		return NULL;
	if ((j = job_new(JOB_LIST, prio)) == NULL)
		return NULL;
	j->list.recursive = recursive != 0;
	if ((j->rel = strdup(rel)) == NULL) {
		job_free(f, j);
		return NULL;
	}
	pthread_mutex_lock(&f->lock);
	/* Past fetcher_free()'s stop no thread would ever take it. */
	if (f->stop) {
		pthread_mutex_unlock(&f->lock);
		job_free(f, j);
		errno = ECANCELED;
		return NULL;
	}
	if (ref)
		job_ref(j);
	job_queue(f, j);
	pthread_mutex_unlock(&f->lock);
	fetch_wake(f);
	return j;
}

int
list_wait(struct fetcher *f, const char *rel, int recursive,
    enum fetch_prio prio, int timeout_ms)
{
	struct timespec ts;
	struct job *j;
	int err;

	if (!fetch_prio_ok(prio)) {
		errno = EINVAL;
		return -1;
	}
	if ((j = list_job(f, rel, recursive, prio, 1)) == NULL)
		return -1;
	fetch_deadline(&ts, timeout_ms);
	pthread_mutex_lock(&f->lock);
	if ((err = job_wait(f, j, UINT64_MAX, &ts)) == 0)
		err = j->err;
	pthread_mutex_unlock(&f->lock);
	job_unref(f, j);
	if (err != 0) {
		errno = err;
		return -1;
	}
	return 0;
}

/* Queues a listing of the folder holding rel (a fix after a 404). */
static void
fetch_refresh_parent(struct fetcher *f, const char *rel, enum fetch_prio prio)
{
	const char *slash = strrchr(rel, '/');
	char *dir;

	if ((dir = strndup(rel, slash != NULL ? (size_t)(slash - rel) : 0)) ==
	    NULL)
		return;
	if (list_job(f, dir, 0, prio, 0) == NULL)
		log_warn("refresh of \"%s\"", dir);
	free(dir);
}

void
job_end(struct fetcher *f, struct job *j, int err)
{
	if (err != 0) {
		atomic_fetch_add(&f->st_failures, 1);
		if (err == EBADMSG)
			atomic_fetch_add(&f->st_bad, 1);
	}
	if (j->changed || (err == ENOENT && (j->kind == JOB_BLOCK ||
	    j->kind == JOB_FILE)))
		fetch_refresh_parent(f, j->rel, j->xprio);
	pthread_mutex_lock(&f->lock);
	if (j->kind == JOB_BLOCK || j->file.hashed)
		job_unhash(f, j);
	j->state = JOB_DONE;
	j->err = err;
	pthread_cond_broadcast(&j->cond);
	pthread_mutex_unlock(&f->lock);
	if (j->kind == JOB_FILE && j->file.done != NULL)
		j->file.done(j->file.done_arg, j->body.id, err);
	job_unref(f, j);
}

/*
 * The store's work (hashing, fsync, a listing's transaction) never holds
 * up the network thread, and the crawler's never holds up a viewer's.
 */
void
job_finish_later(struct fetcher *f, struct job *j, int err)
{
	int k = j->xprio <= FETCH_AHEAD ? 0 : 1;

	j->ferr = err;
	pthread_mutex_lock(&f->lock);
	jobq_push(&f->fin[k], j);
	pthread_cond_signal(&f->fin_cond[k]);
	pthread_mutex_unlock(&f->lock);
}

void
job_retry_later(struct fetcher *f, struct job *j, int64_t wait_ms)
{
	int64_t wait = (int64_t)RETRY_BASE_MS << (j->attempts < 10 ?
	    j->attempts : 10);

	if (wait > RETRY_MAX_MS)
		wait = RETRY_MAX_MS;
	if (wait_ms > 0)
		wait = wait_ms;
	else
		j->attempts++;
	atomic_fetch_add(&f->st_retries, 1);
	j->not_before = fetch_now_ms() + wait;
	pthread_mutex_lock(&f->lock);
	/*
	 * Bodies start over: what a digest vouches for is one answer's
	 * bytes, and readers see a body only once it is verified.
	 */
	if (j->kind == JOB_FILE || j->kind == JOB_BLOCK)
		j->body.got = 0;
	j->state = JOB_RUNNING;	/* not in a queue */
	j->next = f->delayed;
	f->delayed = j;
	pthread_mutex_unlock(&f->lock);
}
