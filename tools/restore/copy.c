#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "answer.h"
#include "batch.h"
#include "clock.h"
#include "copy.h"
#include "local.h"
#include "log.h"
#include "opts.h"
#include "peer.h"

#define RETRY_MS	500	/* the first backoff, doubled each time */
#define RETRY_MAX_MS	8000
#define TICK_MS		500

struct run;
static uint64_t	in_flight(struct run *);

struct job {				/* one file */
	const struct m4f_entry *e;
	char		*tmp;		/* relative to dirfd */
	int		 fd;
	EVP_MD_CTX	*md;
	uint64_t	 got;
	int		 attempts;
	int64_t		 not_before;	/* ms, for a retry */
};

/*
 * One request in flight: a file alone, or several of one folder whose
 * answer is split by X-M4F-Sizes into their temporary files as it comes.
 */
struct xfer {
	struct run	*r;
	CURL		*easy;		/* NULL: a free slot */
	struct curl_slist *hdrs;
	struct job	*m[BATCH_FILES];
	size_t		 n;
	int		 bundle;	/* GET /m4f/v1/files/ */
	/* What the answer carries: each file's bytes, the hash they must
	   have ("": none, that file goes alone), where the body is. */
	uint64_t	 asize[BATCH_FILES];
	char		 want[BATCH_FILES][M4F_SHA256_HEX + 1];
	size_t		 cur;
	uint64_t	 off;		/* bytes of m[cur] received */
	uint64_t	 recv;		/* body bytes received */
	long		 status;
	int		 checked;	/* the head was read */
	int		 bad;		/* refused: EBADMSG */
	int		 werr;		/* a write's errno */
	char		 reqsig[M4F_SHA256_HEX + 1];
	/* Fields of the last answer (not of a 100 Continue). */
	char		 asig[M4F_SHA256_HEX + 2];
	char		 repr[160];
	char		 crange[128];
	char		 sizes[M4F_FILES_MAX * 21 + 1];
	char		 digests[M4F_FILES_MAX * (M4F_SHA256_HEX + 1) + 1];
};

struct run {
	struct peer	*peer;
	int		 dirfd;
	const struct dvrfs_opts *o;
	struct copy_stats *st;
	copy_cb		*cb;
	void		*arg;
	CURLM		*multi;
	const struct m4f_entry *v;	/* the files, in the order of idx */
	const size_t	*idx;
	struct job	*jobs;
	size_t		 n, cursor;	/* jobs not started yet from cursor */
	size_t		*retry;		/* jobs waiting to go again, alone */
	size_t		 nretry;
	struct xfer	*x;		/* transfers= slots */
	size_t		 running;
	char		*lastdir;	/* the last folder known to exist */
	struct local_commit *commit;	/* puts verified files in place */
	int64_t		 t0;		/* ms, the start of the run */
	uint64_t	 issued;	/* bytes of the transfers started */
};

/* Is file i of x's answer one to keep (its size as listed, a hash)? */
static int
usable(const struct xfer *x, size_t i)
{
	return x->asize[i] == x->m[i]->e->size && x->want[i][0] != '\0';
}

/* Refuses x's answer: EBADMSG when the transfer ends. */
static void
refuse(struct xfer *x, int warn, const char *why)
{
	const char *name = x->m[0]->e->name;

	if (warn)
		log_warnx("answer for %s%s: %s, refused", name,
		    x->bundle ? " and others of its folder" : "", why);
	else
		log_debug("answer for %s%s: %s, refused", name,
		    x->bundle ? " and others of its folder" : "", why);
	x->bad = 1;
}

/* The field of x's answer that vouches for its body, signed with it. */
static const char *
vouching(const struct xfer *x)
{
	if (x->status != 200)
		return "";
	return x->bundle ? x->digests : x->repr;
}

/*
 * Reads the head of x's answer before its first body byte (or at its
 * end): the signature with a key, then for a 200 the sizes and hashes
 * its files must have.
 */
static void
head_check(struct xfer *x)
{
	const struct dvrfs_opts *o = x->r->o;
	const struct m4f_entry *e[BATCH_FILES];
	curl_off_t cl = -1;
	uint64_t total = 0;
	uint8_t md[32];
	size_t i;

	x->checked = 1;
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
	curl_easy_getinfo(x->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
	/* A 401 carries no signature: the origin could not check ours. */
	if (o->key != NULL && x->status != 401 && answer_check(o->key,
	    o->keylen, x->reqsig, (int)x->status, x->crange, vouching(x),
	    x->asig[0] != '\0' ? x->asig : NULL) == -1) {
		refuse(x, 1, errno == EACCES ? "wrong " ANSWER_SIGNATURE :
		    "no " ANSWER_SIGNATURE);
		return;
	}
	if (x->status != 200)
		return;
	if (!x->bundle) {
		x->asize[0] = x->m[0]->e->size;
		if (cl >= 0 && (uint64_t)cl != x->asize[0]) {
			refuse(x, 0, "not the listed size");
			return;
		}
		if (x->m[0]->e->sha256[0] != '\0')
			memcpy(x->want[0], x->m[0]->e->sha256,
			    sizeof(x->want[0]));
		else if (x->repr[0] != '\0') {
			if (answer_digest_parse(x->repr, md) == -1) {
				refuse(x, 0, "malformed " ANSWER_REPR_DIGEST);
				return;
			}
			m4f_hex_encode(md, 32, x->want[0]);
		}
		return;
	}
	for (i = 0; i < x->n; i++)
		e[i] = x->m[i]->e;
	if (batch_answer(e, x->n, x->sizes[0] != '\0' ? x->sizes : NULL,
	    x->digests[0] != '\0' ? x->digests : NULL, x->asize,
	    x->want) == -1) {
		refuse(x, 0, "malformed " M4F_FILES_SIZES " or "
		    M4F_FILES_DIGESTS);
		return;
	}
	for (i = 0; i < x->n; i++)
		total += x->asize[i];
	if (cl != (curl_off_t)total)
		refuse(x, 0, "Content-Length is not the sum of "
		    M4F_FILES_SIZES);
}

static int
write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		if ((w = write(fd, p, n)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * The body, as libcurl hands it over: each file's bytes into its
 * temporary file and its hash, the bytes of a file to fetch alone
 * dropped. An error answer's text is not a file.
 */
static size_t
on_body(char *ptr, size_t sz, size_t nm, void *arg)
{
	struct xfer *x = arg;
	size_t n = sz * nm, left = n, take;
	struct job *j;

	if (!x->checked)
		head_check(x);
	if (x->bad)
		return 0;	/* aborts the transfer */
	if (x->status != 200)
		return n;
	for (;;) {
		while (x->cur < x->n && x->off == x->asize[x->cur]) {
			x->cur++;
			x->off = 0;
		}
		if (left == 0)
			return n;
		if (x->cur == x->n) {
			refuse(x, 0, "more bytes than announced");
			return 0;
		}
		j = x->m[x->cur];
		take = x->asize[x->cur] - x->off < left ?
		    (size_t)(x->asize[x->cur] - x->off) : left;
		if (usable(x, x->cur)) {
			if (write_all(j->fd, ptr, take) == -1) {
				x->werr = errno;
				return 0;
			}
			EVP_DigestUpdate(j->md, ptr, take);
			j->got += take;
		}
		x->off += take;
		x->recv += take;
		ptr += take;
		left -= take;
	}
}

/* Keeps the fields of the last answer (not of a 100 Continue). */
static size_t
on_header(char *ptr, size_t sz, size_t nm, void *arg)
{
	struct xfer *x = arg;
	size_t n = sz * nm;

	if (n >= 5 && strncmp(ptr, "HTTP/", 5) == 0) {
		x->asig[0] = x->repr[0] = x->crange[0] = '\0';
		x->sizes[0] = x->digests[0] = '\0';
	} else if (m4f_header_value(ptr, n, ANSWER_SIGNATURE, x->asig,
	    sizeof(x->asig)) ||
	    m4f_header_value(ptr, n, ANSWER_REPR_DIGEST, x->repr,
	    sizeof(x->repr)) ||
	    m4f_header_value(ptr, n, "Content-Range", x->crange,
	    sizeof(x->crange)) ||
	    m4f_header_value(ptr, n, M4F_FILES_SIZES, x->sizes,
	    sizeof(x->sizes)))
		;
	else
		m4f_header_value(ptr, n, M4F_FILES_DIGESTS, x->digests,
		    sizeof(x->digests));
	return n;
}

/* Drops what file j holds: its temporary file, its hash. */
static void
job_drop(struct run *r, struct job *j)
{
	if (j->fd != -1) {
		close(j->fd);
		j->fd = -1;
	}
	if (j->tmp != NULL) {
		unlinkat(r->dirfd, j->tmp, 0);
		free(j->tmp);
		j->tmp = NULL;
	}
	EVP_MD_CTX_free(j->md);
	j->md = NULL;
}

/* Ends x's transfer, if any; its files' temporaries go with drop set. */
static void
xfer_end(struct run *r, struct xfer *x, int drop)
{
	size_t i;

	if (x->easy != NULL) {
		curl_multi_remove_handle(r->multi, x->easy);
		curl_easy_cleanup(x->easy);
		x->easy = NULL;
		r->running--;
	}
	curl_slist_free_all(x->hdrs);
	x->hdrs = NULL;
	for (i = 0; drop && i < x->n; i++)
		job_drop(r, x->m[i]);
}

/* Creates j's temporary file and hash. -1 with errno: j failed at once. */
static int
job_open(struct run *r, struct job *j)
{
	j->got = 0;
	if (local_mkparents(r->dirfd, j->e->name, &r->lastdir) == -1 ||
	    (j->tmp = local_tmp_name(j->e->name)) == NULL)
		return -1;
	if ((j->fd = openat(r->dirfd, j->tmp, O_WRONLY | O_CREAT | O_TRUNC |
	    O_CLOEXEC | O_NOFOLLOW, 0644)) == -1)
		goto fail;
	if ((j->md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(j->md, EVP_sha256(), NULL) != 1) {
		errno = ENOMEM;
		goto fail;
	}
	return 0;
fail:
	{
		int e = errno;

		job_drop(r, j);
		return errno = e, -1;
	}
}

/*
 * Checks j's bytes against want, the SHA-256 they must have: 0, or -1
 * with EBADMSG (do not match, or short) or ENOMSG (no hash to check).
 */
static int
job_verify(struct job *j, const char *want)
{
	uint8_t md[32];
	char hex[M4F_SHA256_HEX + 1];
	unsigned int len;

	if (j->got != j->e->size ||
	    EVP_DigestFinal_ex(j->md, md, &len) != 1 || len != 32)
		return errno = EBADMSG, -1;
	if (want[0] == '\0')
		return errno = ENOMSG, -1;
	m4f_hex_encode(md, 32, hex);
	return strcmp(hex, want) == 0 ? 0 : (errno = EBADMSG, -1);
}

/*
 * Hands j's verified temporary file over to the committer, which puts
 * it in place (committed() then). 0, or -1 with errno.
 */
static int
job_commit(struct run *r, struct job *j)
{
	if (local_commit_add(r->commit, j->fd, j->tmp, j->e->name,
	    j->e->mtime, j) == -1)
		return -1;
	j->fd = -1;
	j->tmp = NULL;
	return 0;
}

/* What the error err of file j does to the run. */
static void
job_failed(struct run *r, struct job *j, int err)
{
	struct copy_stats *st = r->st;
	int64_t wait;

	switch (err) {
	case ENOENT:
		log_debug("%s: gone from the peer", j->e->name);
		st->vanished++;
		return;
	case EEXIST:
		log_debug("%s: appeared locally, left alone", j->e->name);
		st->existed++;
		return;
	case EACCES:
		st->fatal = EACCES;
		return;
	case ENOSPC:
	case EDQUOT:
		log_warnx("%s: %s", j->e->name, strerror(err));
		st->fatal = ENOSPC;
		st->failed++;
		return;
	case ENOMSG:
		log_warnx("%s: refused: the peer sent no digest to verify it "
		    "with", j->e->name);
		st->bad_digest++;
		return;
	case ECONNREFUSED:
	case EBADMSG:
		if (++j->attempts < COPY_ATTEMPTS) {
			wait = (int64_t)RETRY_MS << (j->attempts - 1);
			j->not_before = clock_ms() + (wait > RETRY_MAX_MS ?
			    RETRY_MAX_MS : wait);
			log_debug("%s: %s, try %d again", j->e->name,
			    err == EBADMSG ? "does not match its digest" :
			    "the peer failed", j->attempts + 1);
			r->retry[r->nretry++] = (size_t)(j - r->jobs);
			return;
		}
		log_warnx("%s: %s after %d tries", j->e->name,
		    err == EBADMSG ? "does not match the peer's SHA-256" :
		    "the peer failed", j->attempts);
		if (err == EBADMSG) {
			st->bad_digest++;
			return;
		}
		/* Tries spread over seconds all failed: the peer is down. */
		st->unreachable++;
		st->fatal = ECONNREFUSED;
		return;
	default:
		log_warnx("%s: %s", j->e->name, strerror(err));
		st->failed++;
	}
}

/*
 * The end of file j, whose transfer is over: handed over to be put in
 * place when err is 0, else failed with err.
 */
static void
job_end(struct run *r, struct job *j, int err)
{
	if (err == 0 && job_commit(r, j) == -1)
		err = errno;
	job_drop(r, j);
	if (err != 0)
		job_failed(r, j, err);
}

/* The committer's verdict on file cookie: in place, or failed with err. */
static void
committed(void *arg, void *cookie, int err)
{
	struct run *r = arg;
	struct job *j = cookie;
	struct copy_stats *st = r->st;

	if (err != 0) {
		job_failed(r, j, err);
		return;
	}
	st->done++;
	st->bytes += j->e->size;
	if (r->cb != NULL) {
		st->bytes_now = st->bytes + in_flight(r);
		r->cb(r->arg, st, j->e->name);
	}
}

/* File j of a bundle goes again, alone, at once. */
static void
job_alone(struct run *r, struct job *j, const char *why)
{
	log_debug("%s: %s, asked for alone", j->e->name, why);
	job_drop(r, j);
	j->not_before = 0;
	r->retry[r->nretry++] = (size_t)(j - r->jobs);
}

/*
 * Starts the request of the n files m[0..n) (one folder) in slot x.
 * A file that cannot even start fails on its own.
 */
static void
xfer_start(struct run *r, struct xfer *x, struct job **m, size_t n)
{
	const char *rel[BATCH_FILES];
	uint64_t cap;
	size_t i;

	memset(x, 0, sizeof(*x));
	x->r = r;
	for (i = 0; i < n; i++) {
		if (job_open(r, m[i]) == -1)
			job_failed(r, m[i], errno);
		else
			rel[x->n] = m[i]->e->name, x->m[x->n++] = m[i];
	}
	if (x->n == 0)
		return;
	x->bundle = x->n > 1;
	x->easy = x->bundle ? peer_files_easy(r->peer, rel, x->n, &x->hdrs,
	    x->reqsig) : peer_file_easy(r->peer, rel[0], &x->hdrs, x->reqsig);
	if (x->easy == NULL)
		goto fail;
	curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(x->easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(x->easy, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
	if (r->o->bwlimit != 0) {
		/* Each of the transfers gets its share of the cap. */
		cap = r->o->bwlimit / (uint64_t)r->o->transfers;
		curl_easy_setopt(x->easy, CURLOPT_MAX_RECV_SPEED_LARGE,
		    (curl_off_t)(cap < 1024 ? 1024 : cap));
	}
	if (curl_multi_add_handle(r->multi, x->easy) != CURLM_OK) {
		curl_easy_cleanup(x->easy);
		x->easy = NULL;
		goto fail;
	}
	r->running++;
	return;
fail:
	xfer_end(r, x, 1);
	for (i = 0; i < x->n; i++)
		job_failed(r, x->m[i], ENOMEM);
	x->n = 0;
}

/*
 * A bundle's file i after its transfer ended with err: in place if its
 * bytes came whole and match, else again alone (a transient failure
 * with the usual retries).
 */
static void
bundle_file_end(struct run *r, struct xfer *x, size_t i, int err)
{
	struct job *j = x->m[i];

	if (usable(x, i) && j->got == j->e->size) {
		if (job_verify(j, x->want[i]) == 0)
			job_end(r, j, 0);
		else
			job_alone(r, j, "does not match its digest");
		return;
	}
	if (x->werr != 0 && i == x->cur) {
		/* A local error writing it (a full disk). */
		job_drop(r, j);
		job_failed(r, j, x->werr);
		return;
	}
	switch (err) {
	case 0:
		job_alone(r, j, x->asize[i] != j->e->size ? "changed since "
		    "it was listed" : "no digest or another one than listed");
		break;
	case ECONNREFUSED:
	case EACCES:
		job_drop(r, j);
		job_failed(r, j, err);
		break;
	default:
		job_alone(r, j, strerror(err));
	}
}

/* x's transfer ended with rc. */
static void
xfer_done(struct run *r, struct xfer *x, CURLcode rc)
{
	int err, i;

	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
	if (!x->checked && x->status != 0)
		head_check(x);
	err = peer_errno(rc, x->status);
	if (rc == CURLE_WRITE_ERROR && x->werr != 0)
		err = x->werr;
	else if (x->bad)
		err = EBADMSG;
	xfer_end(r, x, 0);
	if (!x->bundle) {
		if (err == 0 && job_verify(x->m[0], x->want[0]) == -1)
			err = errno;
		job_end(r, x->m[0], err);
		x->n = 0;
		return;
	}
	/*
	 * An origin without the API (404), or one that will not hash that
	 * much for one answer (400): one file per request for a while.
	 */
	if (!x->bad && x->status >= 400 && x->status < 500 &&
	    x->status != 401) {
		log_debug("the peer answers %ld to several files at once: "
		    "one by one for %d s", x->status, PEER_FILES_OFF_MS / 1000);
		peer_files_refused(r->peer, clock_ms());
	}
	for (i = 0; i < (int)x->n; i++)
		bundle_file_end(r, x, (size_t)i, err);
	x->n = 0;
}

/* A free transfer slot (one exists while running < transfers=). */
static struct xfer *
free_slot(struct run *r)
{
	int i;

	for (i = 0; i < r->o->transfers; i++)
		if (r->x[i].n == 0)
			return &r->x[i];
	return NULL;
}

/* Starts what may start now, within transfers=. */
static void
start_more(struct run *r)
{
	int64_t now = clock_ms();
	struct job *m[BATCH_FILES];
	uint64_t bytes;
	size_t i, k;
	struct xfer *x;

	while (r->running < (size_t)r->o->transfers && r->st->fatal == 0) {
		/*
		 * bwlimit= over the run: a request starts once the bytes of
		 * those before it fit in the time elapsed (each transfer is
		 * also capped to its share, for large files).
		 */
		if (r->o->bwlimit != 0 && r->issued > 0 &&
		    (double)r->issued > (double)r->o->bwlimit *
		    (double)(now - r->t0) / 1000.0)
			return;
		if ((x = free_slot(r)) == NULL)
			return;
		k = 0;
		for (i = 0; i < r->nretry; i++)
			if (r->jobs[r->retry[i]].not_before <= now) {
				m[k++] = &r->jobs[r->retry[i]];
				r->retry[i] = r->retry[--r->nretry];
				break;
			}
		if (k == 0 && r->cursor < r->n) {
			/* The next files of one folder, together. */
			k = peer_files_ok(r->peer, now) ? batch_take(r->v,
			    r->idx + r->cursor, r->n - r->cursor) : 1;
			for (i = 0; i < k; i++)
				m[i] = &r->jobs[r->cursor++];
		}
		if (k == 0)
			return;
		for (bytes = 0, i = 0; i < k; i++)
			bytes += m[i]->e->size;
		r->issued += bytes;
		xfer_start(r, x, m, k);
	}
}

static uint64_t
in_flight(struct run *r)
{
	uint64_t b = 0;
	int i;

	for (i = 0; i < r->o->transfers; i++)
		if (r->x[i].easy != NULL)
			b += r->x[i].recv;
	return b;
}

/* The committer's call: a file is done, the loop has to reap it. */
static void
wake(void *multi)
{
	curl_multi_wakeup(multi);
}

int
copy_run(struct peer *peer, int dirfd, const struct m4f_entry *v,
    const size_t *idx, size_t n, const struct dvrfs_opts *o,
    struct copy_stats *st, copy_cb *cb, void *arg,
    volatile sig_atomic_t *stop)
{
	struct run r = { .peer = peer, .dirfd = dirfd, .o = o, .st = st,
	    .cb = cb, .arg = arg, .v = v, .idx = idx, .n = n,
	    .t0 = clock_ms() };
	int64_t tick = clock_ms() + TICK_MS;
	struct xfer *x;
	CURLMsg *msg;
	size_t i, bad;
	int left, ended;

	bad = st->bad_digest + st->unreachable + st->failed;
	if ((r.jobs = calloc(n ? n : 1, sizeof(*r.jobs))) == NULL ||
	    (r.retry = calloc(n ? n : 1, sizeof(*r.retry))) == NULL ||
	    (r.x = calloc((size_t)o->transfers, sizeof(*r.x))) == NULL ||
	    (r.multi = curl_multi_init()) == NULL ||
	    (r.commit = local_commit_new(dirfd, wake, r.multi)) == NULL) {
		if (r.multi != NULL)
			curl_multi_cleanup(r.multi);
		free(r.jobs);
		free(r.retry);
		free(r.x);
		log_warnx("out of memory");
		st->failed += n;
		return -1;
	}
	for (i = 0; i < n; i++) {
		r.jobs[i].e = &v[idx[i]];
		r.jobs[i].fd = -1;
	}
	curl_multi_setopt(r.multi, CURLMOPT_MAX_HOST_CONNECTIONS,
	    (long)o->transfers);
	for (;;) {
		if (*stop && st->fatal == 0)
			st->fatal = EINTR;
		start_more(&r);
		if (r.running == 0 && local_commit_pending(r.commit) == 0 &&
		    (st->fatal != 0 || (r.cursor == r.n && r.nretry == 0)))
			break;
		curl_multi_perform(r.multi, &left);
		ended = 0;
		while ((msg = curl_multi_info_read(r.multi, &left)) != NULL) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			ended++;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
			    (char **)&x);
			xfer_done(&r, x, msg->data.result);
		}
		if (st->fatal != 0)
			for (i = 0; i < (size_t)o->transfers; i++)
				if (r.x[i].easy != NULL) {
					xfer_end(&r, &r.x[i], 1);
					r.x[i].n = 0;
				}
		ended += (int)local_commit_reap(r.commit, committed, &r);
		/*
		 * A transfer that ended makes room, and a file put in place
		 * may end the run: go round again at once.
		 */
		if (ended == 0)
			curl_multi_poll(r.multi, NULL, 0, 100, NULL);
		if (cb != NULL && clock_ms() >= tick) {
			st->bytes_now = st->bytes + in_flight(&r);
			cb(arg, st, NULL);
			tick = clock_ms() + TICK_MS;
		}
	}
	local_commit_free(r.commit);
	st->bytes_now = st->bytes;
	curl_multi_cleanup(r.multi);
	free(r.jobs);
	free(r.retry);
	free(r.x);
	free(r.lastdir);
	return st->fatal == 0 && r.cursor == r.n &&
	    st->bad_digest + st->unreachable + st->failed == bad ? 0 : -1;
}
