#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "answer.h"
#include "clock.h"
#include "copy.h"
#include "local.h"
#include "log.h"
#include "opts.h"
#include "peer.h"

#define RETRY_MS	500	/* the first backoff, doubled each time */
#define RETRY_MAX_MS	8000
#define TICK_MS		500

struct job {
	const struct m4f_entry *e;
	CURL		*easy;
	struct curl_slist *hdrs;
	char		*tmp;		/* relative to dirfd */
	int		 fd;
	EVP_MD_CTX	*md;
	uint64_t	 got;
	int		 werr;		/* the write callback's errno */
	char		 repr[160];	/* Repr-Digest of the answer */
	int		 attempts;
	int64_t		 not_before;	/* ms, for a retry */
};

struct run {
	struct peer	*peer;
	int		 dirfd;
	const struct dvrfs_opts *o;
	struct copy_stats *st;
	CURLM		*multi;
	struct job	*jobs;
	size_t		 n, cursor;	/* jobs not started yet from cursor */
	size_t		*retry;		/* jobs waiting for a retry */
	size_t		 nretry;
	size_t		 running;
	char		*lastdir;	/* the last folder known to exist */
	char		*syncdir;	/* a folder with renames not synced */
	int64_t		 t0;		/* ms, the start of the run */
	uint64_t	 issued;	/* bytes of the transfers started */
};

/* fsync of folder dir (relative to dirfd, "" for dirfd itself). */
static int
sync_dir(int dirfd, const char *dir)
{
	int fd, rc;

	if ((fd = openat(dirfd, *dir ? dir : ".", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/*
 * Creates the folders of rel's parent that are missing, each made
 * durable in its own parent.
 */
static int
make_parents(struct run *r, const char *rel)
{
	const char *slash = strrchr(rel, '/');
	char *dir, *p;

	if (slash == NULL)
		return 0;
	if ((dir = strndup(rel, (size_t)(slash - rel))) == NULL)
		return -1;
	if (r->lastdir != NULL && strcmp(r->lastdir, dir) == 0) {
		free(dir);
		return 0;
	}
	for (p = dir;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;

		*p = '\0';
		if (mkdirat(r->dirfd, dir, 0755) == 0) {
			char *up = strrchr(dir, '/');

			if (up != NULL)
				*up = '\0';
			if (sync_dir(r->dirfd, up != NULL ? dir : "") == -1)
				goto fail;
			if (up != NULL)
				*up = '/';
		} else if (errno != EEXIST)
			goto fail;
		*p = c;
		if (c == '\0')
			break;
	}
	free(r->lastdir);
	r->lastdir = dir;
	return 0;
fail:
	free(dir);
	return -1;
}

static size_t
on_body(char *ptr, size_t sz, size_t nm, void *arg)
{
	struct job *j = arg;
	size_t n = sz * nm, off = 0;
	long status = 0;
	ssize_t w;

	/* An error answer's text is not the file. */
	curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200)
		return n;
	if (j->got + n > j->e->size) {
		j->werr = EBADMSG;
		return 0;
	}
	while (off < n) {
		if ((w = write(j->fd, ptr + off, n - off)) == -1) {
			if (errno == EINTR)
				continue;
			j->werr = errno;
			return 0;
		}
		off += (size_t)w;
	}
	EVP_DigestUpdate(j->md, ptr, n);
	j->got += n;
	return n;
}

/* Keeps Repr-Digest of the last answer (not of a 100 Continue). */
static size_t
on_header(char *ptr, size_t sz, size_t nm, void *arg)
{
	struct job *j = arg;
	size_t n = sz * nm;

	if (n >= 5 && strncmp(ptr, "HTTP/", 5) == 0)
		j->repr[0] = '\0';
	else
		m4f_header_value(ptr, n, ANSWER_REPR_DIGEST, j->repr,
		    sizeof(j->repr));
	return n;
}

/* Drops what job j holds: its transfer, its temporary file. */
static void
job_drop(struct run *r, struct job *j)
{
	if (j->easy != NULL) {
		curl_multi_remove_handle(r->multi, j->easy);
		curl_easy_cleanup(j->easy);
		j->easy = NULL;
		r->running--;
	}
	curl_slist_free_all(j->hdrs);
	j->hdrs = NULL;
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

/* Starts the transfer of j. -1 with errno: the file failed at once. */
static int
job_start(struct run *r, struct job *j)
{
	uint64_t cap;

	j->got = 0;
	j->werr = 0;
	j->repr[0] = '\0';
	j->fd = -1;
	if (make_parents(r, j->e->name) == -1 ||
	    (j->tmp = local_tmp_name(j->e->name)) == NULL)
		return -1;
	if ((j->fd = openat(r->dirfd, j->tmp, O_WRONLY | O_CREAT | O_TRUNC |
	    O_CLOEXEC | O_NOFOLLOW, 0644)) == -1)
		goto fail;
	if ((j->md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(j->md, EVP_sha256(), NULL) != 1 ||
	    (j->easy = peer_file_easy(r->peer, j->e->name, &j->hdrs)) == NULL) {
		errno = ENOMEM;
		goto fail;
	}
	curl_easy_setopt(j->easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(j->easy, CURLOPT_WRITEDATA, j);
	curl_easy_setopt(j->easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(j->easy, CURLOPT_HEADERDATA, j);
	curl_easy_setopt(j->easy, CURLOPT_PRIVATE, j);
	if (r->o->bwlimit != 0) {
		/* Each of the transfers gets its share of the cap. */
		cap = r->o->bwlimit / (uint64_t)r->o->transfers;
		curl_easy_setopt(j->easy, CURLOPT_MAX_RECV_SPEED_LARGE,
		    (curl_off_t)(cap < 1024 ? 1024 : cap));
	}
	if (curl_multi_add_handle(r->multi, j->easy) != CURLM_OK) {
		curl_easy_cleanup(j->easy);
		j->easy = NULL;
		errno = ENOMEM;
		goto fail;
	}
	r->running++;
	return 0;
fail:
	{
		int e = errno;

		job_drop(r, j);
		return errno = e, -1;
	}
}

/*
 * Checks what j received against the peer's digest: 0, or -1 with
 * EBADMSG (does not match, or short) or ENOMSG (no digest to check).
 */
static int
job_verify(struct job *j)
{
	uint8_t md[32], want[32];
	char hex[M4F_SHA256_HEX + 1];
	unsigned int len;
	int i;

	if (j->got != j->e->size ||
	    EVP_DigestFinal_ex(j->md, md, &len) != 1 || len != 32)
		return errno = EBADMSG, -1;
	if (j->e->sha256[0] != '\0') {
		for (i = 0; i < 32; i++)
			snprintf(hex + 2 * i, 3, "%02x", md[i]);
		return strcmp(hex, j->e->sha256) == 0 ? 0 :
		    (errno = EBADMSG, -1);
	}
	if (j->repr[0] == '\0')
		return errno = ENOMSG, -1;
	if (answer_digest_parse(j->repr, want) == -1)
		return errno = EBADMSG, -1;
	return memcmp(md, want, 32) == 0 ? 0 : (errno = EBADMSG, -1);
}

/* Puts a verified temporary file of j in place. 0, or -1 with errno. */
static int
job_commit(struct run *r, struct job *j)
{
	struct timespec ts[2] = {
		{ .tv_sec = j->e->mtime }, { .tv_sec = j->e->mtime }
	};
	const char *slash = strrchr(j->e->name, '/');
	char *dir;
	int rc;

	if (futimens(j->fd, ts) == -1 || fsync(j->fd) == -1)
		return -1;
	close(j->fd);
	j->fd = -1;
	/* Never over a file that appeared meanwhile (the recorder's). */
	if (renameat2(r->dirfd, j->tmp, r->dirfd, j->e->name,
	    RENAME_NOREPLACE) == -1)
		return -1;
	free(j->tmp);
	j->tmp = NULL;
	/*
	 * The folder is synced once its files are done (newest first, they
	 * come folder by folder) rather than after each rename: the file's
	 * bytes are durable already, and a rename lost to a crash only
	 * means one more copy on the next run.
	 */
	if ((dir = strndup(j->e->name, slash != NULL ?
	    (size_t)(slash - j->e->name) : 0)) == NULL)
		return -1;
	if (r->syncdir != NULL && strcmp(r->syncdir, dir) == 0) {
		free(dir);
		return 0;
	}
	rc = r->syncdir != NULL ? sync_dir(r->dirfd, r->syncdir) : 0;
	free(r->syncdir);
	r->syncdir = dir;
	return rc;
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

/* A transfer ended with rc. */
static void
job_done(struct run *r, struct job *j, CURLcode rc)
{
	long status = 0;
	int err;

	curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &status);
	err = peer_errno(rc, status);
	if (rc == CURLE_WRITE_ERROR && j->werr != 0)
		err = j->werr;
	if (err == 0 && job_verify(j) == -1)
		err = errno;
	curl_multi_remove_handle(r->multi, j->easy);
	curl_easy_cleanup(j->easy);
	j->easy = NULL;
	r->running--;
	if (err == 0 && job_commit(r, j) == -1)
		err = errno;
	if (err == 0) {
		r->st->done++;
		r->st->bytes += j->e->size;
	}
	job_drop(r, j);
	if (err != 0)
		job_failed(r, j, err);
}

/* Starts what may start now, within transfers=. */
static void
start_more(struct run *r)
{
	int64_t now = clock_ms();
	struct job *j;
	size_t i;

	while (r->running < (size_t)r->o->transfers && r->st->fatal == 0) {
		/*
		 * bwlimit= over the run: a file starts once the bytes of
		 * those before it fit in the time elapsed (each transfer is
		 * also capped to its share, for large files).
		 */
		if (r->o->bwlimit != 0 && r->issued > 0 &&
		    (double)r->issued > (double)r->o->bwlimit *
		    (double)(now - r->t0) / 1000.0)
			return;
		j = NULL;
		for (i = 0; i < r->nretry; i++)
			if (r->jobs[r->retry[i]].not_before <= now) {
				j = &r->jobs[r->retry[i]];
				r->retry[i] = r->retry[--r->nretry];
				break;
			}
		if (j == NULL && r->cursor < r->n)
			j = &r->jobs[r->cursor++];
		if (j == NULL)
			return;
		r->issued += j->e->size;
		if (job_start(r, j) == -1)
			job_failed(r, j, errno);
	}
}

static uint64_t
in_flight(struct run *r)
{
	uint64_t b = 0;
	size_t i;

	for (i = 0; i < r->n; i++)
		if (r->jobs[i].easy != NULL)
			b += r->jobs[i].got;
	return b;
}

int
copy_run(struct peer *peer, int dirfd, const struct m4f_entry *v,
    const size_t *idx, size_t n, const struct dvrfs_opts *o,
    struct copy_stats *st, copy_cb *cb, void *arg,
    volatile sig_atomic_t *stop)
{
	struct run r = { .peer = peer, .dirfd = dirfd, .o = o, .st = st,
	    .n = n, .t0 = clock_ms() };
	size_t i, before = st->done, bad;
	int64_t tick = clock_ms() + TICK_MS;
	struct job *j;
	CURLMsg *msg;
	int left, ended;

	bad = st->bad_digest + st->unreachable + st->failed;
	if ((r.jobs = calloc(n ? n : 1, sizeof(*r.jobs))) == NULL ||
	    (r.retry = calloc(n ? n : 1, sizeof(*r.retry))) == NULL ||
	    (r.multi = curl_multi_init()) == NULL) {
		free(r.jobs);
		free(r.retry);
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
		if (r.running == 0 && (st->fatal != 0 ||
		    (r.cursor == r.n && r.nretry == 0)))
			break;
		curl_multi_perform(r.multi, &left);
		ended = 0;
		while ((msg = curl_multi_info_read(r.multi, &left)) != NULL) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			ended++;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
			    (char **)&j);
			job_done(&r, j, msg->data.result);
			if (cb != NULL && st->done > before) {
				before = st->done;
				st->bytes_now = st->bytes + in_flight(&r);
				cb(arg, st, j->e->name);
			}
		}
		if (st->fatal != 0)
			for (i = 0; i < r.n; i++)
				if (r.jobs[i].easy != NULL)
					job_drop(&r, &r.jobs[i]);
		/* A transfer that ended makes room: start the next at once. */
		if (ended == 0)
			curl_multi_poll(r.multi, NULL, 0, 100, NULL);
		if (cb != NULL && clock_ms() >= tick) {
			st->bytes_now = st->bytes + in_flight(&r);
			cb(arg, st, NULL);
			tick = clock_ms() + TICK_MS;
		}
	}
	if (r.syncdir != NULL && sync_dir(dirfd, r.syncdir) == -1) {
		log_warn("%s", r.syncdir);
		st->failed++;
	}
	free(r.syncdir);
	st->bytes_now = st->bytes;
	curl_multi_cleanup(r.multi);
	free(r.jobs);
	free(r.retry);
	free(r.lastdir);
	return st->fatal == 0 && r.cursor == r.n &&
	    st->bad_digest + st->unreachable + st->failed == bad ? 0 : -1;
}
