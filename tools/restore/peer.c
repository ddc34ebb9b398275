#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "answer.h"
#include "log.h"
#include "opts.h"
#include "peer.h"

#define BODY_MAX	(256L << 20)	/* a listing page or a feed answer */
#define LIST_PAGE	10000

struct peer {
	const struct dvrfs_opts *o;
	char		*base;		/* scheme://host:port */
	const char	*export;	/* "" for "/" */
	int64_t		 files_off;	/* ms: no bundles until then */
};

/* An answer's body, the header that vouches for it and its signature. */
struct body {
	char		*buf;
	size_t		 len, cap;
	char		 sha[M4F_SHA256_HEX + 2];
	char		 asig[M4F_SHA256_HEX + 2];
};

struct peer *
peer_new(const struct dvrfs_opts *o)
{
	struct peer *p;
	int v6 = strchr(o->host, ':') != NULL;
	int port = o->replication_port != 0 ? o->replication_port : o->port;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->o = o;
	p->export = strcmp(o->export, "/") == 0 ? "" : o->export;
	if (asprintf(&p->base, "%s://%s%s%s:%d", o->tls ? "https" : "http",
	    v6 ? "[" : "", o->host, v6 ? "]" : "", port) < 0) {
		free(p);
		return errno = ENOMEM, NULL;
	}
	return p;
}

void
peer_free(struct peer *p)
{
	if (p == NULL)
		return;
	free(p->base);
	free(p);
}

void
peer_entries_free(struct m4f_entry *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i].name);
	free(v);
}

int
peer_errno(CURLcode rc, long status)
{
	switch (rc) {
	case CURLE_OK:
		break;
	case CURLE_WRITE_ERROR:
	case CURLE_ABORTED_BY_CALLBACK:
		return EIO;
	case CURLE_OUT_OF_MEMORY:
		return ENOMEM;
	default:
		return ECONNREFUSED;
	}
	switch (status) {
	case 200: case 206: return 0;
	case 401: return EACCES;
	case 404: return ENOENT;
	case 500: case 502: case 503: case 504: return ECONNREFUSED;
	default: return EIO;
	}
}

/*
 * The common set-up of every request to target (path and query); the
 * request's sig= into reqsig when not NULL ("" without a key).
 */
static CURL *
easy(struct peer *p, const char *target, struct curl_slist **hdrs,
    char reqsig[M4F_SHA256_HEX + 1])
{
	const struct dvrfs_opts *o = p->o;
	char *url = NULL, auth[256], line[300];
	const char *sig;
	CURL *e;

	*hdrs = NULL;
	if (reqsig != NULL)
		reqsig[0] = '\0';
	if ((e = curl_easy_init()) == NULL)
		return errno = ENOMEM, NULL;
	if (asprintf(&url, "%s%s", p->base, target) < 0)
		goto fail;
	curl_easy_setopt(e, CURLOPT_URL, url);
	free(url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, (long)o->timeout);
	/* A peer that sends nothing for timeout= seconds is stalled. */
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)o->timeout);
	if (o->tls) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
		if (o->cafile != NULL)
			curl_easy_setopt(e, CURLOPT_CAINFO, o->cafile);
	}
	if (o->key != NULL) {
		if (m4f_auth_header(o->key, o->keylen, "GET", target,
		    (int64_t)time(NULL), auth, sizeof(auth)) == -1)
			goto fail;
		/* The answer's signature names this request by it. */
		if (reqsig != NULL && (sig = strstr(auth, "sig=")) != NULL)
			snprintf(reqsig, M4F_SHA256_HEX + 1, "%s", sig + 4);
		snprintf(line, sizeof(line), "Authorization: %s", auth);
		if ((*hdrs = curl_slist_append(NULL, line)) == NULL)
			goto fail;
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, *hdrs);
	}
	return e;
fail:
	curl_easy_cleanup(e);
	return errno = ENOMEM, NULL;
}

CURL *
peer_file_easy(struct peer *p, const char *rel, struct curl_slist **hdrs,
    char reqsig[M4F_SHA256_HEX + 1])
{
	char *esc, *target = NULL;
	CURL *e;

	if ((esc = m4f_escape_path(rel)) == NULL)
		return NULL;
	if (asprintf(&target, "%s/%s", p->export, esc) < 0)
		target = NULL;
	free(esc);
	if (target == NULL)
		return errno = ENOMEM, NULL;
	e = easy(p, target, hdrs, reqsig);
	free(target);
	return e;
}

CURL *
peer_files_easy(struct peer *p, const char *const *rel, size_t n,
    struct curl_slist **hdrs, char reqsig[M4F_SHA256_HEX + 1])
{
	const char *slash = strrchr(rel[0], '/');
	size_t dl = slash != NULL ? (size_t)(slash - rel[0]) : 0, i;
	char *dir = NULL, *esc = NULL, *name, *target = NULL;
	size_t len;
	CURL *e = NULL;
	FILE *s;

	if ((dir = strndup(rel[0], dl)) == NULL ||
	    (esc = m4f_escape_path(dir)) == NULL ||
	    (s = open_memstream(&target, &len)) == NULL) {
		errno = ENOMEM;
		goto out;
	}
	fprintf(s, "%s/files%s%s%s", M4F_API_PREFIX, p->export,
	    *esc != '\0' ? "/" : "", esc);
	/* Names are single components: '/' is never left unescaped. */
	for (i = 0; i < n; i++) {
		if ((name = m4f_escape_path(rel[i] + (dl ? dl + 1 : 0))) ==
		    NULL)
			break;
		fprintf(s, "%cname=%s", i == 0 ? '?' : '&', name);
		free(name);
	}
	if (fclose(s) != 0 || i < n)
		errno = ENOMEM;
	else
		e = easy(p, target, hdrs, reqsig);
out:
	free(target);
	free(esc);
	free(dir);
	return e;
}

int
peer_files_ok(const struct peer *p, int64_t now)
{
	return now >= p->files_off;
}

void
peer_files_refused(struct peer *p, int64_t now)
{
	p->files_off = now + PEER_FILES_OFF_MS;
}

static size_t
body_write(char *ptr, size_t sz, size_t nm, void *arg)
{
	struct body *b = arg;
	size_t n = sz * nm;
	char *nb;

	if (b->len + n > (size_t)BODY_MAX)
		return 0;
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->len + n + 1) * 2;

		if ((nb = realloc(b->buf, cap)) == NULL)
			return 0;
		b->buf = nb;
		b->cap = cap;
	}
	memcpy(b->buf + b->len, ptr, n);
	b->len += n;
	b->buf[b->len] = '\0';
	return n;
}

/* Keeps X-M4F-SHA256 and X-M4F-Signature of the last answer. */
static size_t
body_header(char *ptr, size_t sz, size_t nm, void *arg)
{
	struct body *b = arg;
	size_t n = sz * nm;

	if (n >= 5 && strncmp(ptr, "HTTP/", 5) == 0)
		b->sha[0] = b->asig[0] = '\0';
	else if (!m4f_header_value(ptr, n, M4F_BODY_SHA256, b->sha,
	    sizeof(b->sha)))
		m4f_header_value(ptr, n, ANSWER_SIGNATURE, b->asig,
		    sizeof(b->asig));
	return n;
}

/*
 * GETs a JSON answer of the API into b and checks its X-M4F-SHA256 and,
 * with a key, its X-M4F-Signature (refused: EKEYREJECTED), as a file
 * answer's: a listing says which hash each file must have.
 * maxtime bounds the whole request (0: none but the stall timeout).
 */
static int
get_json(struct peer *p, const char *target, long maxtime, struct body *b)
{
	const struct dvrfs_opts *o = p->o;
	struct curl_slist *hdrs;
	char hex[M4F_SHA256_HEX + 1], reqsig[M4F_SHA256_HEX + 1];
	long status = 0;
	CURLcode rc;
	CURL *e;
	int err;

	memset(b, 0, sizeof(*b));
	if ((e = easy(p, target, &hdrs, reqsig)) == NULL)
		return -1;
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, body_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, b);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, body_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, b);
	if (maxtime > 0)
		curl_easy_setopt(e, CURLOPT_TIMEOUT, maxtime);
	rc = curl_easy_perform(e);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(e);
	curl_slist_free_all(hdrs);
	if (rc != CURLE_OK)
		log_debug("GET %s: %s", target, curl_easy_strerror(rc));
	/* A 401 carries no signature: the origin could not check ours. */
	if (rc == CURLE_OK && o->key != NULL && status != 401 &&
	    answer_check(o->key, o->keylen, reqsig, (int)status, "",
	    status == 200 ? b->sha : "", b->asig[0] != '\0' ? b->asig :
	    NULL) == -1) {
		log_warnx("GET %s: %s, refused", target, errno == EACCES ?
		    "wrong " ANSWER_SIGNATURE : "no " ANSWER_SIGNATURE);
		err = EKEYREJECTED;
		goto fail;
	}
	if ((err = peer_errno(rc, status)) != 0) {
		if (rc == CURLE_OK)
			log_debug("GET %s: status %ld", target, status);
		goto fail;
	}
	err = EBADMSG;
	if (b->buf == NULL || m4f_sha256_hex(b->buf, b->len, hex) == -1 ||
	    strcmp(hex, b->sha) != 0) {
		log_warnx("GET %s: the body does not match its %s", target,
		    M4F_BODY_SHA256);
		goto fail;
	}
	return 0;
fail:
	free(b->buf);
	b->buf = NULL;
	return errno = err, -1;
}

/* Appends the files of page l to *v, names made relative to the export. */
static int
take_files(struct m4f_listing *l, const char *sub, struct m4f_entry **v,
    size_t *n, size_t *cap)
{
	struct m4f_entry *nv;
	size_t i;
	char *name;

	for (i = 0; i < l->n; i++) {
		if (l->entries[i].type != M4F_FILE)
			continue;
		if (*n == *cap) {
			*cap = *cap ? *cap * 2 : 1024;
			if ((nv = realloc(*v, *cap * sizeof(*nv))) == NULL)
				return -1;
			*v = nv;
		}
		if (*sub == '\0') {
			name = l->entries[i].name;
			l->entries[i].name = NULL;
		} else if (asprintf(&name, "%s/%s", sub,
		    l->entries[i].name) < 0)
			return errno = ENOMEM, -1;
		(*v)[*n] = l->entries[i];
		(*v)[(*n)++].name = name;
	}
	return 0;
}

int
peer_list(struct peer *p, const char *sub, struct m4f_entry **v, size_t *n)
{
	struct m4f_listing *l = NULL;
	struct body b;
	char *esc = NULL, *after = NULL, *target = NULL, why[160];
	size_t cap = 0;
	int err = 0;

	*v = NULL;
	*n = 0;
	if ((esc = m4f_escape_path(sub)) == NULL)
		return -1;
	for (;;) {
		free(target);
		if (asprintf(&target, "%s/list%s%s%s?recursive=1&limit=%d%s%s",
		    M4F_API_PREFIX, p->export, *sub != '\0' ? "/" : "", esc,
		    LIST_PAGE, after != NULL ? "&after=" : "",
		    after != NULL ? after : "") < 0) {
			target = NULL;
			err = ENOMEM;
			break;
		}
		if (get_json(p, target, 0, &b) == -1) {
			err = errno == ENOENT && *sub != '\0' ? 0 : errno;
			break;
		}
		l = m4f_listing_decode(b.buf, b.len, 1, why, sizeof(why));
		free(b.buf);
		if (l == NULL) {
			log_warnx("GET %s: %s", target, why);
			err = EBADMSG;
			break;
		}
		if (take_files(l, sub, v, n, &cap) == -1) {
			err = ENOMEM;
			break;
		}
		curl_free(after);
		after = NULL;
		if (l->next == NULL)
			break;
		if ((after = curl_easy_escape(NULL, l->next, 0)) == NULL) {
			err = ENOMEM;
			break;
		}
		m4f_listing_free(l);
		l = NULL;
	}
	m4f_listing_free(l);
	curl_free(after);
	free(target);
	free(esc);
	if (err != 0) {
		peer_entries_free(*v, *n);
		*v = NULL;
		*n = 0;
		return errno = err, -1;
	}
	return 0;
}

int
peer_feed(struct peer *p, int known, uint64_t since, int wait,
    struct m4f_feed **out)
{
	struct body b;
	char target[M4F_PATH_MAX + 128], why[160];
	int n;

	if (known)
		n = snprintf(target, sizeof(target), "%s/feed%s?since=%"
		    PRIu64 "&wait=%d", M4F_API_PREFIX, p->export, since, wait);
	else
		n = snprintf(target, sizeof(target), "%s/feed%s",
		    M4F_API_PREFIX, p->export);
	if (n < 0 || (size_t)n >= sizeof(target))
		return errno = ENAMETOOLONG, -1;
	if (get_json(p, target, wait + p->o->timeout + 5L, &b) == -1)
		return -1;
	*out = m4f_feed_decode(b.buf, b.len, why, sizeof(why));
	free(b.buf);
	if (*out == NULL) {
		log_warnx("GET %s: %s", target, why);
		return errno = EBADMSG, -1;
	}
	return 0;
}
