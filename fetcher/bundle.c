/*
 * bundle: the crawler's whole-file jobs of one folder fetched with one
 * request (GET /m4f/v1/files/FOLDER?name=A&name=B...): one round trip for
 * several segments, which is what bounds copying over a long link. Each
 * file stays a job of its own (readers find it, the finisher verifies and
 * stores it, the crawler hears of it); the bundle is only the transfer,
 * owned by its first job, the leader.
 *
 * When a bundle fails, its files that arrived whole go on as if fetched
 * alone and the others are queued again, one request each; a primary that
 * answers bundles with a client error is not asked for one again for a
 * while (an origin without the API, say).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fetch_int.h"
#include "store.h"

#define BUNDLE_FILES	8		/* files in one request */
#define BUNDLE_BYTES	(8ULL << 20)	/* and their bytes */
#define BUNDLE_OFF_MS	60000		/* after a refused bundle */

/* The folder part of rel: its length, up to the last '/' (0: the root). */
static size_t
dir_len(const char *rel)
{
	const char *s = strrchr(rel, '/');

	return s != NULL ? (size_t)(s - rel) : 0;
}

static int
bundleable(const struct fetcher *f, const struct job *j)
{
	return j->kind == JOB_FILE && !j->file.single &&
	    j->file.members == NULL && j->body.fsize > 0 &&
	    j->body.fsize <= f->conf.whole_max;
}

void
bundle_gather(struct fetcher *f, struct job *j, struct jobq *q,
    int64_t now)
{
	struct job *m, *prev = NULL, *next, *v[BUNDLE_FILES];
	uint64_t bytes;
	size_t n = 1, dl;

	if (now < f->bundle_off_until || !bundleable(f, j))
		return;
	dl = dir_len(j->rel);
	bytes = j->body.fsize;
	v[0] = j;
	for (m = q->head; m != NULL && n < BUNDLE_FILES; m = next) {
		next = m->next;
		if (!bundleable(f, m) || bytes + m->body.fsize > BUNDLE_BYTES ||
		    dir_len(m->rel) != dl || strncmp(m->rel, j->rel, dl) != 0) {
			prev = m;
			continue;
		}
		jobq_unlink(q, m, prev);
		m->state = JOB_RUNNING;
		bytes += m->body.fsize;
		v[n++] = m;
	}
	if (n == 1 || (j->file.members = calloc(n, sizeof(*v))) == NULL) {
		/* Alone after all: the others go back where they were. */
		while (n > 1) {
			m = v[--n];
			m->state = JOB_QUEUED;
			jobq_push_front(q, m);
		}
		return;
	}
	memcpy(j->file.members, v, n * sizeof(*v));
	j->file.nmembers = n;
}

void
bundle_dissolve(struct fetcher *f, struct job *j)
{
	size_t i;

	pthread_mutex_lock(&f->lock);
	for (i = 1; i < j->file.nmembers; i++)
		job_queue(f, j->file.members[i]);
	pthread_mutex_unlock(&f->lock);
	free(j->file.members);
	j->file.members = NULL;
	j->file.nmembers = 0;
}

void
bundle_begin(struct fetcher *f, struct job *j)
{
	struct store_ent e;
	struct job *m;
	size_t i, k = 1;

	/* Files complete meanwhile, or with no room for them, end here. */
	for (i = 1; i < j->file.nmembers; i++) {
		m = j->file.members[i];
		m->xprio = m->prio;
		if (store_get(f->store, m->body.id, &e) == -1) {
			job_end(f, m, errno);
			continue;
		}
		if (e.state == STORE_COMPLETE) {
			job_end(f, m, 0);
			continue;
		}
		if (body_get(f, m, m->body.fsize) == -1) {
			job_end(f, m, ENOMEM);
			continue;
		}
		m->body.got = 0;
		j->file.members[k++] = m;
	}
	j->file.nmembers = k;
	j->file.cur = 0;
	if (k == 1) {
		free(j->file.members);
		j->file.members = NULL;
		j->file.nmembers = 0;
	}
}

char *
bundle_target(struct fetcher *f, struct job *j)
{
	char *dir = NULL, *esc = NULL, *t = NULL, *name;
	size_t dl = dir_len(j->rel), len, i;
	FILE *s;

	if ((dir = strndup(j->rel, dl)) == NULL ||
	    (esc = m4f_escape_path(dir)) == NULL ||
	    (s = open_memstream(&t, &len)) == NULL)
		goto out;
	fprintf(s, "%s/files%s%s%s", M4F_API_PREFIX, f->export,
	    *esc != '\0' ? "/" : "", esc);
	for (i = 0; i < j->file.nmembers; i++) {
		const char *rel = j->file.members[i]->rel;

		name = curl_easy_escape(NULL, rel + (dl ? dl + 1 : 0), 0);
		if (name == NULL)
			break;
		fprintf(s, "%cname=%s", i == 0 ? '?' : '&', name);
		curl_free(name);
	}
	if (fclose(s) != 0 || i < j->file.nmembers) {
		free(t);
		t = NULL;
	}
out:
	if (t == NULL)
		errno = ENOMEM;
	free(esc);
	free(dir);
	return t;
}

int
bundle_head_ok(struct job *j, curl_off_t cl)
{
	uint64_t v[M4F_FILES_MAX], total = 0;
	size_t i, n;

	if (m4f_sizes_parse(j->file.sizes, v, M4F_FILES_MAX, &n) == -1 ||
	    n != j->file.nmembers)
		return 0;
	for (i = 0; i < n; i++) {
		if (v[i] != j->file.members[i]->body.fsize)
			return 0;
		total += v[i];
	}
	return cl == (curl_off_t)total;
}

size_t
bundle_body(struct fetcher *f, struct job *j, const char *p, size_t n)
{
	size_t left = n, take;
	struct job *m;

	while (left > 0 && j->file.cur < j->file.nmembers) {
		m = j->file.members[j->file.cur];
		take = m->body.fsize - m->body.got;
		if (take > left)
			take = left;
		body_append(f, m, p, take);
		if (m->body.got == m->body.fsize)
			j->file.cur++;
		p += take;
		left -= take;
	}
	return left == 0 ? n : 0;	/* more than asked for: abort */
}

void
bundle_done(struct fetcher *f, struct job *j, int err, int transient)
{
	struct job **v = j->file.members, *m;
	size_t i, n = j->file.nmembers;

	j->file.members = NULL;
	j->file.nmembers = 0;
	free(j->file.sizes);
	j->file.sizes = NULL;
	if (err != 0 && !transient && err != EBADMSG)
		f->bundle_off_until = fetch_now_ms() + BUNDLE_OFF_MS;
	for (i = 0; i < n; i++) {
		m = v[i];
		if (err == 0 || m->body.got == m->body.fsize) {
			job_finish_later(f, m, 0);
			continue;
		}
		/* Once more on its own, with the usual retries. */
		m->file.single = 1;
		m->body.got = 0;
		if (transient)
			job_retry_later(f, m, 0);
		else {
			pthread_mutex_lock(&f->lock);
			job_queue(f, m);
			pthread_mutex_unlock(&f->lock);
		}
	}
	free(v);
}
