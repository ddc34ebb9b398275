/*
 * xfer: the network thread. It owns the curl multi handle, starts queued
 * jobs by priority (viewers at once; read-ahead FETCH_AHEAD_RUNNING at a
 * time; LIVE, then BACKFILL, within the crawler's transfer cap and
 * bandwidth bucket), checks every answer
 * against what was asked and what the store knows, retries transient
 * failures with backoff, and hands results to the store and the waiters.
 * Lock order: see fetch_int.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "fetch_int.h"
#include "log.h"
#include "store.h"

#define FEED_TIMEOUT_S	(M4F_FEED_WAIT_DEFAULT + 20)
#define XFER_BUFFER	(256L * 1024)	/* libcurl's receive buffer */
#define RETRY_AFTER_MAX	600	/* s: a longer Retry-After is a failure */
#define BUSY_MAX	10	/* 503s waited out per job */

_Static_assert((int)M4F_FILE == (int)STORE_FILE && (int)M4F_DIR ==
    (int)STORE_DIR && (int)M4F_LINK == (int)STORE_LINK,
    "the wire's entry types are the store's");

/*
 * The request target (path and query exactly as sent, the string that is
 * signed) of job j. Returns a malloc'd string, or NULL with errno.
 */
static char *
make_target(struct fetcher *f, struct job *j)
{
	char *esc = NULL, *after = NULL, *t = NULL;
	const char *rel = j->rel != NULL ? j->rel : "";
	int n = -1;

	if ((esc = m4f_escape_path(rel)) == NULL)
		return NULL;
	switch (j->kind) {
	case JOB_BLOCK:
	case JOB_FILE:
		if (j->file.members != NULL) {
			free(esc);
			return bundle_target(f, j);
		}
		n = asprintf(&t, "%s/%s", f->export, esc);
		break;
	case JOB_LIST:
		if (j->list.after != NULL &&
		    (after = curl_easy_escape(NULL, j->list.after, 0)) == NULL)
			break;
		n = asprintf(&t, "%s/list%s%s%s?%slimit=%u%s%s", M4F_API_PREFIX,
		    f->export, *rel != '\0' ? "/" : "", esc,
		    j->list.recursive ? "recursive=1&" : "", f->list_limit,
		    after != NULL ? "&after=" : "", after != NULL ? after : "");
		break;
	case JOB_FEED:
		/* Resuming, the first answer comes at once. */
		if (f->feed_known || f->feed_resume)
			n = asprintf(&t, "%s/feed%s?since=%" PRIu64 "&wait=%d",
			    M4F_API_PREFIX, f->export, f->feed_seq,
			    f->feed_known ? M4F_FEED_WAIT_DEFAULT : 0);
		else
			n = asprintf(&t, "%s/feed%s", M4F_API_PREFIX,
			    f->export);
		break;
	}
	curl_free(after);
	free(esc);
	if (n < 0) {
		errno = ENOMEM;
		return NULL;
	}
	return t;
}

/*
 * Copies the value of header line p (n bytes) into dst if its name is
 * name (lowercase, with the colon); returns 1 if it was.
 */
static int
header_value(const char *p, size_t n, const char *name, char *dst,
    size_t dstsz)
{
	size_t len = strlen(name), k;

	if (n <= len || strncasecmp(p, name, len) != 0)
		return 0;
	p += len;
	n -= len;
	while (n > 0 && (*p == ' ' || *p == '\t'))
		p++, n--;
	while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == '\n' ||
	    p[n - 1] == ' '))
		n--;
	k = n < dstsz - 1 ? n : dstsz - 1;
	memcpy(dst, p, k);
	dst[k] = '\0';
	return 1;
}

/*
 * A Retry-After of delta-seconds, 0 to RETRY_AFTER_MAX; -1 for anything
 * else (an HTTP date, a bigger number: the 503 is a plain failure).
 */
static int
retry_after(const char *v)
{
	int s = 0;

	if (*v == '\0')
		return -1;
	for (; *v >= '0' && *v <= '9'; v++)
		if ((s = s * 10 + (*v - '0')) > RETRY_AFTER_MAX)
			return -1;
	return *v == '\0' ? s : -1;
}

/* Forgets the headers of an answer: a new one (not a 100 Continue). */
static void
headers_reset(struct job *j)
{
	j->crange[0] = '\0';
	j->bsha[0] = '\0';
	j->asig[0] = '\0';
	j->rdigest[0] = '\0';
	j->cdigest[0] = '\0';
	free(j->digests);
	j->digests = NULL;
	j->retry_after = -1;
}

/*
 * Keeps Content-Range, the body's digests, the signature and Retry-After
 * of the last response (not of a 100 Continue).
 */
static size_t
on_header(char *p, size_t sz, size_t nm, void *arg)
{
	struct job *j = arg;
	size_t n = sz * nm;
	char v[M4F_FILES_MAX * (M4F_SHA256_HEX + 1) + 1];

	if (n >= 5 && strncmp(p, "HTTP/", 5) == 0)
		headers_reset(j);
	else if (header_value(p, n, "content-range:", j->crange,
	    sizeof(j->crange)) ||
	    header_value(p, n, "x-m4f-sha256:", j->bsha, sizeof(j->bsha)) ||
	    header_value(p, n, "x-m4f-signature:", j->asig, sizeof(j->asig)) ||
	    header_value(p, n, "repr-digest:", j->rdigest,
	    sizeof(j->rdigest)) ||
	    header_value(p, n, "content-digest:", j->cdigest,
	    sizeof(j->cdigest)))
		;
	else if (header_value(p, n, "retry-after:", v, sizeof(v)))
		j->retry_after = retry_after(v);
	else if (j->file.members != NULL &&
	    header_value(p, n, "x-m4f-digests:", v, sizeof(v))) {
		free(j->digests);
		j->digests = strdup(v);
	} else if (j->file.members != NULL &&
	    header_value(p, n, "x-m4f-sizes:", v, sizeof(v))) {
		free(j->file.sizes);
		j->file.sizes = strdup(v);
	}
	return sz * nm;
}

/*
 * Checks the status line and headers before the first body byte: sets
 * j->discard for an error status (its body is dropped), j->bad for an
 * answer that does not fit the request, j->changed when the primary's
 * size differs from the store's.
 */
static void
head_check(struct job *j)
{
	long status = 0;
	curl_off_t cl = -1;
	char want[128];
	uint64_t a, b, total;
	char tail;

	j->head_checked = 1;
	curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(j->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
	verify_head(j->owner, j, status);
	if (j->bad)
		return;
	if (status < 200 || status >= 300) {
		j->discard = 1;
		return;
	}
	switch (j->kind) {
	case JOB_BLOCK:
		if (status == 200 && j->blk.start == 0 && j->blk.off == 0 &&
		    j->blk.len == j->body.fsize) {
			/* The whole file was asked for: a 200 is fine. */
			if (cl != (curl_off_t)j->body.fsize)
				j->bad = j->changed = 1;
			return;
		}
		if (status != 206) {
			j->bad = 1;
			return;
		}
		snprintf(want, sizeof(want), "bytes %" PRIu64 "-%" PRIu64
		    "/%" PRIu64, j->blk.off + j->blk.start,
		    j->blk.off + j->blk.len - 1,
		    j->body.fsize);
		if (strcmp(j->crange, want) != 0) {
			j->bad = 1;
			if (sscanf(j->crange, "bytes %" SCNu64 "-%" SCNu64 "/%"
			    SCNu64 "%c", &a, &b, &total, &tail) == 3 &&
			    total != j->body.fsize)
				j->changed = 1;
			return;
		}
		if (cl != (curl_off_t)(j->blk.len - j->blk.start))
			j->bad = 1;
		return;
	case JOB_FILE:
		if (j->file.members != NULL) {
			if (status != 200 || !bundle_head_ok(j, cl))
				j->bad = 1;
			return;
		}
		if (status != 200 || cl != (curl_off_t)j->body.fsize)
			j->bad = 1;
		if (status == 200 && cl >= 0 && cl != (curl_off_t)j->body.fsize)
			j->changed = 1;
		return;
	case JOB_LIST:
	case JOB_FEED:
		if (status != 200 || cl > (curl_off_t)FETCH_JSON_MAX)
			j->bad = 1;
		return;
	}
}

/* Appends to a JSON body, refusing more than FETCH_JSON_MAX. */
static int
json_append(struct job *j, const char *p, size_t n)
{
	size_t cap;
	char *nj;

	if (n > FETCH_JSON_MAX - j->json.len)
		return -1;
	if (j->json.len + n + 1 > j->json.cap) {
		cap = j->json.cap != 0 ? j->json.cap : 16384;
		while (cap < j->json.len + n + 1)
			cap *= 2;
		if ((nj = realloc(j->json.p, cap)) == NULL)
			return -1;
		j->json.p = nj;
		j->json.cap = cap;
	}
	memcpy(j->json.p + j->json.len, p, n);
	j->json.len += n;
	j->json.p[j->json.len] = '\0';
	return 0;
}

/*
 * The body, as libcurl hands it over: checked, charged to the crawler's
 * bucket, and for blocks made visible to the waiting readers at once.
 */
static size_t
on_body(char *p, size_t sz, size_t nm, void *arg)
{
	struct job *j = arg;
	struct fetcher *f = j->owner;
	size_t n = sz * nm;
	uint64_t want;

	if (!j->head_checked)
		head_check(j);
	if (j->bad)
		return 0;	/* aborts the transfer */
	if (j->discard)
		return n;
	if (j->crawler && f->conf.bwlimit != 0) {
		if (f->tokens <= 0) {
			j->paused = 1;
			return CURL_WRITEFUNC_PAUSE;
		}
		f->tokens -= (int64_t)n;
	}
	atomic_fetch_add(&f->st_bytes[j->xprio == FETCH_AHEAD ? FETCH_VIEWER :
	    j->xprio], n);
	if (j->file.members != NULL) {
		if ((n = bundle_body(f, j, p, n)) == 0)
			j->bad = 1;	/* more than asked for */
		return n;
	}
	switch (j->kind) {
	case JOB_BLOCK:
	case JOB_FILE:
		want = j->kind == JOB_BLOCK ? j->blk.len : j->body.fsize;
		if (n > want - j->body.got) {
			j->bad = 1;	/* more than asked for */
			return 0;
		}
		if (j->kind == JOB_FILE) {
			body_append(f, j, p, n);
			break;
		}
		pthread_mutex_lock(&f->lock);
		memcpy(j->body.buf + j->body.got, p, n);
		j->body.got += n;
		pthread_cond_broadcast(&j->cond);
		pthread_mutex_unlock(&f->lock);
		break;
	case JOB_LIST:
	case JOB_FEED:
		if (json_append(j, p, n) == -1) {
			j->bad = 1;
			return 0;
		}
		break;
	}
	return n;
}

/*
 * Builds and adds the transfer of j to the multi handle. Returns 0, or
 * -1 with errno (then j is untouched by curl).
 */
static int
xfer_start(struct fetcher *f, struct job *j)
{
	char *target = NULL, *url = NULL, auth[256], hdr[300], range[64];
	const char *sig;
	CURL *e = NULL;
	int err, viewer = j->prio <= FETCH_AHEAD && j->kind != JOB_FEED;

	j->owner = f;
	j->head_checked = j->discard = j->bad = j->paused = 0;
	headers_reset(j);
	j->reqsig[0] = '\0';
	j->json.len = 0;
	j->xprio = j->prio;
	if ((target = make_target(f, j)) == NULL)
		goto fail;
	if (asprintf(&url, "%s%s", viewer ? f->base : f->rbase, target) < 0) {
		url = NULL;
		errno = ENOMEM;
		goto fail;
	}
	if ((e = curl_easy_init()) == NULL) {
		errno = ENOMEM;
		goto fail;
	}
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
	    (long)f->conf.connect_timeout_ms);
	/* Segments are megabytes: fewer, larger reads of the socket. */
	curl_easy_setopt(e, CURLOPT_BUFFERSIZE, XFER_BUFFER);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, j);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, j);
	curl_easy_setopt(e, CURLOPT_PRIVATE, j);
	if (j->kind == JOB_FEED)
		/* A long poll is silent on purpose: only a total bound. */
		curl_easy_setopt(e, CURLOPT_TIMEOUT, (long)FEED_TIMEOUT_S);
	else if (!j->crawler || f->conf.bwlimit == 0 ||
	    f->conf.bwlimit / (uint64_t)f->conf.transfers >= 4096) {
		/* A paused transfer would look slow: only when unpaced. */
		curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1024L);
		curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, 10L);
	}
	if (f->conf.tls) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
		if (f->cafile != NULL)
			curl_easy_setopt(e, CURLOPT_CAINFO, f->cafile);
	}
	if (j->kind == JOB_BLOCK) {
		/* A retry resumes where it broke. */
		j->blk.start = j->body.got;
		snprintf(range, sizeof(range), "%" PRIu64 "-%" PRIu64,
		    j->blk.off + j->blk.start, j->blk.off + j->blk.len - 1);
		curl_easy_setopt(e, CURLOPT_RANGE, range);
	}
	if (f->key != NULL) {
		if (m4f_auth_header(f->key, f->conf.keylen, "GET", target,
		    (int64_t)time(NULL), auth, sizeof(auth)) == -1)
			goto fail;
		/* The answer's signature names this request by it. */
		if ((sig = strstr(auth, "sig=")) != NULL)
			snprintf(j->reqsig, sizeof(j->reqsig), "%s", sig + 4);
		snprintf(hdr, sizeof(hdr), "Authorization: %s", auth);
		if ((j->hdrs = curl_slist_append(NULL, hdr)) == NULL) {
			errno = ENOMEM;
			goto fail;
		}
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, j->hdrs);
	}
	if (curl_multi_add_handle(f->multi, e) != CURLM_OK) {
		errno = ENOMEM;
		goto fail;
	}
	j->easy = e;
	j->rnext = f->running;
	f->running = j;
	atomic_fetch_add(&f->st_requests, 1);
	free(url);
	free(target);
	return 0;
fail:
	err = errno;
	curl_slist_free_all(j->hdrs);
	j->hdrs = NULL;
	if (e != NULL)
		curl_easy_cleanup(e);
	free(url);
	free(target);
	errno = err;
	return -1;
}

/* Takes j's transfer out of the multi handle. */
static void
xfer_stop(struct fetcher *f, struct job *j)
{
	struct job **pp;

	for (pp = &f->running; *pp != NULL; pp = &(*pp)->rnext)
		if (*pp == j) {
			*pp = j->rnext;
			break;
		}
	curl_multi_remove_handle(f->multi, j->easy);
	curl_easy_cleanup(j->easy);
	j->easy = NULL;
	curl_slist_free_all(j->hdrs);
	j->hdrs = NULL;
}

/* Logs when the primary becomes reachable or unreachable, not per try. */
static void
note_reach(struct fetcher *f, int up, const char *why)
{
	atomic_store(&f->st_connected, up);
	if (up)
		atomic_fetch_add(&f->st_answers, 1);
	if (f->reachable == up)
		return;
	if (up && f->reachable == 0)
		log_warnx("primary %s reachable again", f->host);
	else if (!up)
		log_warnx("primary %s unreachable: %s", f->host, why);
	f->reachable = up;
}

/*
 * The errno value for a finished transfer; *transient is set when it is
 * worth trying again.
 */
static int
classify(struct fetcher *f, struct job *j, CURLcode rc, int *transient)
{
	long status = 0;
	int ra = j->retry_after;

	/* Kept only for a 503, whose Retry-After says when to come back. */
	*transient = 0;
	j->retry_after = -1;
	if (j->bad)
		return EBADMSG;
	if (rc != CURLE_OK) {
		switch (rc) {
		case CURLE_COULDNT_CONNECT:
		case CURLE_COULDNT_RESOLVE_HOST:
			note_reach(f, 0, curl_easy_strerror(rc));
			*transient = 1;
			return EHOSTDOWN;
		case CURLE_OPERATION_TIMEDOUT:
			*transient = 1;
			return ETIMEDOUT;
		case CURLE_RECV_ERROR:
		case CURLE_SEND_ERROR:
		case CURLE_GOT_NOTHING:
		case CURLE_PARTIAL_FILE:
			*transient = 1;
			return EIO;
		default:
			return EIO;
		}
	}
	note_reach(f, 1, NULL);
	curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &status);
	atomic_store(&f->st_auth_failed, status == 401);
	if (status == 401) {
		f->auth_hold = fetch_now_ms() + FETCH_AUTH_HOLD_MS;
		return EACCES;
	}
	if (status == 404)
		return ENOENT;
	if (status == 416) {
		j->changed = 1;
		return EBADMSG;
	}
	if (status >= 500) {
		*transient = 1;
		if (status == 503)
			j->retry_after = ra;
		return EIO;
	}
	if (status < 200 || status >= 300)
		return EIO;
	if (j->file.members != NULL)
		return j->file.cur == j->file.nmembers ? 0 : EBADMSG;
	if ((j->kind == JOB_BLOCK && j->body.got != j->blk.len) ||
	    (j->kind == JOB_FILE && j->body.got != j->body.fsize))
		return EBADMSG;	/* fewer bytes than Content-Length said */
	return 0;
}

/*
 * Records every page of a finished listing in the store, and tells the
 * follower what it changed.
 */
static int
list_apply(struct fetcher *f, struct job *j)
{
	struct store_changes ch = { 0 };
	struct fetcher_change c;
	struct store_remote *v;
	size_t i, k, n = 0;
	int rc, err;

	for (i = 0; i < j->list.npages; i++)
		n += j->list.pages[i]->n;
	if ((v = calloc(n > 0 ? n : 1, sizeof(*v))) == NULL)
		return ENOMEM;
	n = 0;
	for (i = 0; i < j->list.npages; i++)
		for (k = 0; k < j->list.pages[i]->n; k++) {
			struct m4f_entry *me = &j->list.pages[i]->entries[k];

			v[n].name = me->name;
			v[n].type = (enum store_type)me->type;
			v[n].size = me->size;
			v[n].mtime = me->mtime;
			v[n].sha256 = me->type == M4F_FILE ? me->sha256 : NULL;
			v[n].target = me->target;
			n++;
		}
	rc = store_apply_snapshot(f->store, j->rel, v, n, j->list.recursive,
	    (int64_t)time(NULL), j->list.before_id, NULL, &ch);
	err = errno;
	free(v);
	if (rc == -1) {
		log_warn("listing of \"%s\"", j->rel);
		return err;
	}
	if (ch.n > 0) {
		memset(&c, 0, sizeof(c));
		c.listing = &ch;
		feed_notify(f, &c);
	}
	store_changes_clear(&ch);
	return 0;
}

/*
 * One page of a listing arrived: checks it, keeps it, and asks for the
 * next one. Returns 0 when the listing is complete, 1 when another page
 * was asked for, or an errno value.
 */
static int
list_page(struct fetcher *f, struct job *j)
{
	struct m4f_listing *l, **np;
	char why[160], *path = NULL;
	size_t i, total;
	int ok;

	if (!job_json_ok(j)) {
		log_warnx("listing of \"%s\": body does not match its "
		    M4F_BODY_SHA256, j->rel);
		return EBADMSG;
	}
	l = m4f_listing_decode(j->json.p != NULL ? j->json.p : "", j->json.len,
	    j->list.recursive, why, sizeof(why));
	if (l == NULL) {
		log_warnx("listing of \"%s\": %s", j->rel, why);
		return EBADMSG;
	}
	if (asprintf(&path, "%s%s%s", f->export, *j->rel != '\0' ? "/" : "",
	    j->rel) < 0) {
		m4f_listing_free(l);
		return ENOMEM;
	}
	ok = strcmp(l->path, path) == 0 || (*path == '\0' &&
	    strcmp(l->path, "/") == 0);
	/* Paging must move forward, or a hostile origin loops us. */
	if (ok && l->next != NULL && (l->n == 0 || (j->list.after != NULL &&
	    strcmp(l->next, j->list.after) <= 0)))
		ok = 0;
	free(path);
	if (!ok || l->n > f->list_limit) {
		log_warnx("listing of \"%s\": inconsistent answer", j->rel);
		m4f_listing_free(l);
		return EBADMSG;
	}
	/* Pages that never end would eat the memory: bound the whole. */
	for (i = 0, total = l->n; i < j->list.npages; i++)
		total += j->list.pages[i]->n;
	if (total > FETCH_LIST_ENTRIES_MAX) {
		log_warnx("listing of \"%s\": more than %d entries, refused",
		    j->rel, FETCH_LIST_ENTRIES_MAX);
		m4f_listing_free(l);
		return EBADMSG;
	}
	np = realloc(j->list.pages, (j->list.npages + 1) * sizeof(*np));
	if (np == NULL) {
		m4f_listing_free(l);
		return ENOMEM;
	}
	j->list.pages = np;
	j->list.pages[j->list.npages++] = l;
	if (l->next == NULL)
		return 0;
	free(j->list.after);
	if ((j->list.after = strdup(l->next)) == NULL)
		return ENOMEM;
	j->attempts = 0;
	return xfer_start(f, j) == -1 ? errno : 1;
}

/* Gives back the crawler's, read-ahead's or reader's slot j took. */
static void
slot_free(struct fetcher *f, struct job *j)
{
	if (j->crawler) {
		j->crawler = 0;
		f->crawling--;
	}
	if (j->ahead) {
		j->ahead = 0;
		f->aheading--;
	}
	if (j->reader) {
		j->reader = 0;
		f->reading--;
	}
}

/* A transfer ended with rc: check, retry, store, wake, as needed. */
static void
xfer_done(struct fetcher *f, struct job *j, CURLcode rc)
{
	int err, transient, r;

	if (!j->head_checked && rc == CURLE_OK)
		head_check(j);
	err = classify(f, j, rc, &transient);
	xfer_stop(f, j);
	if (j->kind == JOB_FEED) {
		feed_done(f, j, err);
		return;
	}
	if (err == 0 && j->kind == JOB_LIST) {
		if ((r = list_page(f, j)) == 1)
			return;	/* the next page is on its way */
		err = r;
	}
	slot_free(f, j);
	if (j->file.members != NULL) {
		bundle_done(f, j, err, transient);
		return;
	}
	if (err != 0 && j->kind == JOB_FILE) {
		/* Readers may be copying a body found good: keep it. */
		pthread_mutex_lock(&f->lock);
		if (j->body.whole_ok)
			err = 0;
		pthread_mutex_unlock(&f->lock);
	}
	/* A busy origin says when to come back: not a failure. */
	if (err != 0 && transient && j->retry_after >= 0 &&
	    j->busy < BUSY_MAX) {
		j->busy++;
		job_retry_later(f, j, j->retry_after > 0 ?
		    (int64_t)j->retry_after * 1000 : 100);
		return;
	}
	if (err != 0 && transient && j->attempts < f->conf.retries) {
		job_retry_later(f, j, 0);
		return;
	}
	job_finish_later(f, j, err);
}

/*
 * A block arrived: checked against its Content-Digest (readers are
 * served from it at once), then stored; one that came without a digest
 * is stored unchecked, to be verified with the whole file. Returns 0 or
 * an errno value.
 */
static int
finish_block(struct fetcher *f, struct job *j)
{
	int r = verify_block(f, j);

	if (r == 0)
		return EBADMSG;
	if ((r == 1 ? store_write_block : store_write_unchecked)(f->store,
	    j->body.id, j->body.key, j->body.buf, j->blk.len) == -1) {
		/* The readers have their bytes; the store may not want them. */
		if (r == -1)
			return errno == EBADMSG ? EBADMSG : EIO;
		log_warn("block %" PRIu64 " of \"%s\"", j->body.key, j->rel);
	}
	return 0;
}

/* What a finished transfer leaves to do: store its bytes, end the job. */
static void
finish(struct fetcher *f, struct job *j)
{
	int err = j->ferr;

	if (err == 0 && j->kind == JOB_LIST)
		err = list_apply(f, j);
	if (err == 0 && j->kind == JOB_BLOCK)
		err = finish_block(f, j);
	if (err == 0 && j->kind == JOB_FILE) {
		unsigned char md[32];
		int r = job_verify(f, j, md);

		/*
		 * A file of no known hash takes the digest it was checked
		 * against as its hash: only one that matched. Around the
		 * page cache, also a file a viewer waited for: the viewer was
		 * served from the body and the kernel keeps what it read in
		 * the mount's own cache, so the store's pages would be a
		 * second copy, made at the cost of one more copy per byte.
		 */
		if (r != 1 && j->file.sha[0] == '\0') {
			err = EBADMSG;
			log_warnx("file \"%s\": does not match its digest",
			    j->rel);
		} else if (store_put_verified(f->store, j->body.id,
		    j->body.buf, j->body.fsize, r == -1 ? NULL : md,
		    STORE_COLD) == -1) {
			err = errno;
			log_warn("file \"%s\"", j->rel);
		}
	}
	job_end(f, j, err);
}

/*
 * A finisher thread; arg is the fetcher, and which queue is told by the
 * thread's place in f->finisher. Drains its queue before it stops.
 */
void *
xfer_finisher_main(void *arg)
{
	struct fetcher *f = arg;
	struct job *j;
	int k;

	/* fetcher_new() holds the lock until f->finisher is set. */
	pthread_mutex_lock(&f->lock);
	for (k = 0; k < f->nfinishers; k++)
		if (pthread_equal(pthread_self(), f->finisher[k]))
			break;
	k = k < FETCH_FIN_VIEWER ? 0 : 1;
	for (;;) {
		while (f->fin[k].head == NULL && !f->fin_stop)
			pthread_cond_wait(&f->fin_cond[k], &f->lock);
		if ((j = jobq_pop(&f->fin[k])) == NULL)
			break;
		pthread_mutex_unlock(&f->lock);
		finish(f, j);
		pthread_mutex_lock(&f->lock);
	}
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

/*
 * Starts job j (network thread, lock not held). A whole-file job that
 * needs no transfer ends here.
 */
static void
job_begin(struct fetcher *f, struct job *j)
{
	struct store_ent e;
	int err = 0;

	if (j->kind == JOB_FILE && j->body.buf == NULL) {
		if (store_get(f->store, j->body.id, &e) == -1)
			err = errno;
		else if (e.state == STORE_COMPLETE)
			err = -1;
		else if (j->body.fsize > FETCH_FILE_MAX)
			err = EFBIG;
		else if (body_get(f, j, j->body.fsize) == -1)
			err = ENOMEM;
		if (err != 0) {
			/* Its bundle's other files go on without it. */
			if (j->file.members != NULL)
				bundle_dissolve(f, j);
			job_end(f, j, err == -1 ? 0 : err);
			return;
		}
	}
	if (j->file.members != NULL)
		bundle_begin(f, j);
	if (j->kind == JOB_LIST && j->list.before_id == 0)
		j->list.before_id = store_last_id(f->store);
	j->crawler = j->prio > FETCH_AHEAD;
	if (j->crawler)
		f->crawling++;
	j->ahead = j->prio == FETCH_AHEAD;
	if (j->ahead)
		f->aheading++;
	j->reader = !j->crawler;
	if (j->reader)
		f->reading++;
	if (xfer_start(f, j) == -1) {
		slot_free(f, j);
		job_end(f, j, errno);
	}
}

/* Takes the first job of q out to start it. Under lock. */
static struct job *
pop(struct jobq *q)
{
	struct job *j = jobq_pop(q);

	if (j != NULL)
		j->state = JOB_RUNNING;
	return j;
}

/* Adds what the bandwidth cap allows since the last call. */
static void
refill(struct fetcher *f, int64_t now)
{
	uint64_t bw = f->conf.bwlimit;
	int64_t burst, add;

	if (bw == 0)
		return;
	burst = bw / 5 > 16384 ? (int64_t)(bw / 5) : 16384;
	add = (int64_t)(bw * (uint64_t)(now - f->refill) / 1000);
	if (add <= 0)
		return;
	f->refill = now;
	f->tokens = f->tokens + add > burst ? burst : f->tokens + add;
}

/*
 * Takes the crawler's jobs that may start now onto list and returns it:
 * up to the transfer cap, or FETCH_SHY_TRANSFERS while readers have
 * been busy lately (then *wait is cut to when that ends). Under lock.
 */
static struct job *
crawl(struct fetcher *f, int64_t now, struct job *list, int64_t *wait)
{
	struct job *j;
	int n = f->crawling, cap = f->conf.transfers;

	if (now < f->shy_until && cap > FETCH_SHY_TRANSFERS) {
		cap = FETCH_SHY_TRANSFERS;
		if (f->shy_until - now < *wait)
			*wait = f->shy_until - now;
	}
	while (n < cap && ((j = pop(&f->q[FETCH_LIVE])) != NULL ||
	    (j = pop(&f->q[FETCH_BACKFILL])) != NULL)) {
		bundle_gather(f, j, &f->q[j->prio], now);
		j->next = list;
		list = j;
		n++;
	}
	return list;
}

/*
 * Under lock: moves retries that are due back to the head of their
 * queues and takes the jobs that may start now into *start. Returns the
 * ms until something else becomes due.
 */
static int64_t
schedule(struct fetcher *f, int64_t now, struct job **start)
{
	struct job **pp, *j, *list = NULL;
	int64_t wait = 1000;
	int n;

	for (pp = &f->delayed; (j = *pp) != NULL;) {
		if (j->not_before <= now) {
			*pp = j->next;
			j->state = JOB_QUEUED;
			jobq_push_front(&f->q[j->prio], j);
		} else {
			if (j->not_before - now < wait)
				wait = j->not_before - now;
			pp = &j->next;
		}
	}
	while ((j = pop(&f->q[FETCH_VIEWER])) != NULL) {
		j->next = list;
		list = j;
	}
	/*
	 * Read-ahead a few at a time: 100 viewers starting together ask
	 * for 900 files ahead, and a reader's own request must not find
	 * every connection taken by them.
	 */
	for (n = f->aheading; n < FETCH_AHEAD_RUNNING &&
	    (j = pop(&f->q[FETCH_AHEAD])) != NULL; n++) {
		j->next = list;
		list = j;
	}
	/* Readers run, start or wait: the crawler makes room for them. */
	if (list != NULL || f->reading > 0 || f->q[FETCH_AHEAD].head != NULL)
		f->shy_until = now + FETCH_SHY_MS;
	refill(f, now);
	if (f->held == 0 && (f->q[FETCH_LIVE].head != NULL ||
	    f->q[FETCH_BACKFILL].head != NULL)) {
		if (now < f->auth_hold) {
			if (f->auth_hold - now < wait)
				wait = f->auth_hold - now;
		} else if (f->conf.bwlimit != 0 && f->tokens <= 0) {
			if (wait > 20)
				wait = 20;
		} else
			list = crawl(f, now, list, &wait);
	}
	/* Oldest first. */
	*start = NULL;
	while ((j = list) != NULL) {
		list = j->next;
		j->next = *start;
		*start = j;
	}
	return wait;
}

/* Resumes transfers paused by the bucket once it has tokens again. */
static int64_t
unpause(struct fetcher *f)
{
	struct job *j, *next;
	int paused = 0;

	if (f->conf.bwlimit == 0)
		return 1000;
	for (j = f->running; j != NULL; j = next) {
		next = j->rnext;
		if (!j->paused)
			continue;
		if (f->tokens <= 0) {
			paused = 1;
			continue;
		}
		j->paused = 0;
		curl_easy_pause(j->easy, CURLPAUSE_CONT);
		if (j->paused)
			paused = 1;
	}
	return paused ? 20 : 1000;
}

/* At shutdown: every job fails, every transfer stops. */
static void
fail_all(struct fetcher *f)
{
	struct job *j, *list = NULL;
	int i;

	while ((j = f->running) != NULL) {
		xfer_stop(f, j);
		if (j == f->feed) {
			feed_done(f, j, ECANCELED);
			continue;
		}
		for (i = 1; j->file.members != NULL &&
		    (size_t)i < j->file.nmembers; i++) {
			j->file.members[i]->next = list;
			list = j->file.members[i];
		}
		free(j->file.members);
		j->file.members = NULL;
		j->next = list;
		list = j;
	}
	pthread_mutex_lock(&f->lock);
	for (i = 0; i < FETCH_PRIOS; i++)
		while ((j = pop(&f->q[i])) != NULL) {
			j->next = list;
			list = j;
		}
	while ((j = f->delayed) != NULL) {
		f->delayed = j->next;
		j->next = list;
		list = j;
	}
	pthread_mutex_unlock(&f->lock);
	while ((j = list) != NULL) {
		list = j->next;
		j->changed = 0;
		job_end(f, j, EIO);
	}
}

void *
xfer_main(void *arg)
{
	struct fetcher *f = arg;
	struct job *start, *j;
	struct CURLMsg *m;
	int64_t now, wait, w;
	int running, left, follow, ended;

	for (;;) {
		now = fetch_now_ms();
		pthread_mutex_lock(&f->lock);
		if (f->stop) {
			pthread_mutex_unlock(&f->lock);
			break;
		}
		wait = schedule(f, now, &start);
		follow = f->follow;
		pthread_mutex_unlock(&f->lock);
		while ((j = start) != NULL) {
			start = j->next;
			j->next = NULL;
			job_begin(f, j);
		}
		if (follow) {
			if ((w = feed_tick(f, now, &j)) < wait)
				wait = w;
			if (j != NULL && xfer_start(f, j) == -1)
				feed_done(f, j, errno);
		}
		curl_multi_perform(f->multi, &running);
		ended = 0;
		while ((m = curl_multi_info_read(f->multi, &left)) != NULL) {
			if (m->msg != CURLMSG_DONE)
				continue;
			ended = 1;
			j = NULL;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE,
			    (char **)&j);
			/* m is invalid once the handle is removed. */
			xfer_done(f, j, m->data.result);
		}
		if ((w = unpause(f)) < wait)
			wait = w;
		if (wait < 1)
			wait = 1;
		/* A slot freed: the next queued job starts now. */
		if (ended)
			wait = 0;
		curl_multi_poll(f->multi, NULL, 0, (int)wait, NULL);
	}
	fail_all(f);
	return NULL;
}
