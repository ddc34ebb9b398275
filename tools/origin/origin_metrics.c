#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "m4f.h"
#include "origin_hash.h"
#include "origin_metrics.h"

#define STATUS_MIN	100
#define STATUS_MAX	599

/* What a request asked for, from its target. */
enum kind { K_FILE, K_FILES, K_LIST, K_FEED, K_METRICS, K_OTHER, NKIND };

static const char *const kind_names[NKIND] = {
	"file", "files", "list", "feed", "metrics", "other"
};

struct ometrics {
	struct ohash	*hash;
	int64_t		 started;	/* unix time */
	pthread_mutex_t	 lock;
	/* Answers by kind and status, under lock. */
	uint64_t	 requests[NKIND][STATUS_MAX - STATUS_MIN + 1];
	_Atomic uint64_t sent[NKIND];	/* body bytes fully sent */
	_Atomic int64_t	 inflight[NKIND];
	_Atomic int64_t	 conns;		/* open connections */
	_Atomic uint64_t auth_failures;
};

/* Per connection: the request being served. */
struct oconn {
	enum kind	 kind;
	int		 active;
	uint64_t	 body;		/* bytes queued for it */
};

struct ometrics *
ometrics_new(struct ohash *hash)
{
	struct ometrics *m;

	if ((m = calloc(1, sizeof(*m))) == NULL)
		return NULL;
	if (pthread_mutex_init(&m->lock, NULL) != 0) {
		free(m);
		errno = ENOMEM;
		return NULL;
	}
	m->hash = hash;
	m->started = (int64_t)time(NULL);
	return m;
}

void
ometrics_free(struct ometrics *m)
{
	if (m == NULL)
		return;
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static enum kind
kind_of(const char *uri)
{
	static const struct {
		const char *prefix;
		enum kind kind;
	} api[] = {
		{ M4F_API_PREFIX "/list/", K_LIST },
		{ M4F_API_PREFIX "/files/", K_FILES },
		{ M4F_API_PREFIX "/feed/", K_FEED },
		{ M4F_API_PREFIX "/", K_OTHER },
	};
	size_t i, n = strlen(OMETRICS_PATH);

	if (strncmp(uri, OMETRICS_PATH, n) == 0 &&
	    (uri[n] == '\0' || uri[n] == '?'))
		return K_METRICS;
	for (i = 0; i < sizeof(api) / sizeof(api[0]); i++)
		if (strncmp(uri, api[i].prefix, strlen(api[i].prefix)) == 0)
			return api[i].kind;
	return uri[0] == '/' ? K_FILE : K_OTHER;
}

static struct oconn *
conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci;
	struct oconn_ctx *x;

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	if (ci == NULL || (x = ci->socket_context) == NULL)
		return NULL;
	return x->m;
}

void
ometrics_conn(struct ometrics *m, struct oconn_ctx *x,
    enum MHD_ConnectionNotificationCode toe)
{
	struct oconn *oc = x != NULL ? x->m : NULL;

	if (m == NULL)
		return;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		if (x != NULL)
			x->m = calloc(1, sizeof(struct oconn));
		atomic_fetch_add(&m->conns, 1);
		return;
	}
	/* A request cut off with its connection still counts as ended. */
	if (oc != NULL && oc->active)
		atomic_fetch_sub(&m->inflight[oc->kind], 1);
	free(oc);
	if (x != NULL)
		x->m = NULL;
	atomic_fetch_sub(&m->conns, 1);
}

void
ometrics_start(struct ometrics *m, struct MHD_Connection *c, const char *uri)
{
	struct oconn *oc;

	if (m == NULL || (oc = conn_of(c)) == NULL)
		return;
	if (oc->active)		/* its end was never reported */
		atomic_fetch_sub(&m->inflight[oc->kind], 1);
	oc->kind = kind_of(uri);
	oc->active = 1;
	oc->body = 0;
	atomic_fetch_add(&m->inflight[oc->kind], 1);
}

void
ometrics_body(struct MHD_Connection *c, uint64_t n)
{
	struct oconn *oc;

	if ((oc = conn_of(c)) != NULL)
		oc->body += n;
}

void
ometrics_done(struct ometrics *m, struct MHD_Connection *c,
    enum MHD_RequestTerminationCode toe)
{
	const union MHD_ConnectionInfo *ci;
	struct oconn *oc;
	unsigned status = 0;

	if (m == NULL || (oc = conn_of(c)) == NULL || !oc->active)
		return;
	oc->active = 0;
	atomic_fetch_sub(&m->inflight[oc->kind], 1);
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_HTTP_STATUS);
	if (ci != NULL)
		status = ci->http_status;
	if (status < STATUS_MIN || status > STATUS_MAX)
		return;		/* nothing was answered */
	pthread_mutex_lock(&m->lock);
	m->requests[oc->kind][status - STATUS_MIN]++;
	pthread_mutex_unlock(&m->lock);
	if (status == 401)
		atomic_fetch_add(&m->auth_failures, 1);
	/* Bytes of answers cut off halfway are not known: left out. */
	if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
		atomic_fetch_add(&m->sent[oc->kind], oc->body);
}

static void
family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP m4f_origin_%s %s\n# TYPE m4f_origin_%s %s\n", name,
	    help, name, type);
}

/* The text of /metrics; at its end the same as a scrape would see. */
static void
render(struct ometrics *m, FILE *f)
{
	uint64_t req[NKIND][STATUS_MAX - STATUS_MIN + 1], hits = 0, misses = 0,
	    hashed = 0;
	int64_t pending = 0;
	int k, s;

	pthread_mutex_lock(&m->lock);
	memcpy(req, m->requests, sizeof(req));
	pthread_mutex_unlock(&m->lock);
	family(f, "requests_total", "counter",
	    "Requests answered, by kind and HTTP status.");
	for (k = 0; k < NKIND; k++)
		for (s = 0; s <= STATUS_MAX - STATUS_MIN; s++)
			if (req[k][s] > 0)
				fprintf(f, "m4f_origin_requests_total{kind=\"%s\","
				    "code=\"%d\"} %" PRIu64 "\n", kind_names[k],
				    s + STATUS_MIN, req[k][s]);
	family(f, "sent_bytes_total", "counter",
	    "Body bytes of answers sent whole, by kind.");
	for (k = 0; k < NKIND; k++)
		fprintf(f, "m4f_origin_sent_bytes_total{kind=\"%s\"} %" PRIu64
		    "\n", kind_names[k], atomic_load(&m->sent[k]));
	family(f, "open_connections", "gauge", "Client connections open.");
	fprintf(f, "m4f_origin_open_connections %" PRId64 "\n",
	    atomic_load(&m->conns));
	family(f, "clients", "gauge", "Requests being served, by kind "
	    "(feed: long-polls waiting for news).");
	for (k = 0; k < NKIND; k++)
		fprintf(f, "m4f_origin_clients{kind=\"%s\"} %" PRId64 "\n",
		    kind_names[k], atomic_load(&m->inflight[k]));
	if (m->hash != NULL)
		ohash_stats(m->hash, &hits, &misses, &hashed, &pending);
	family(f, "hash_cache_hits_total", "counter",
	    "SHA-256 look-ups answered from the hash cache.");
	fprintf(f, "m4f_origin_hash_cache_hits_total %" PRIu64 "\n", hits);
	family(f, "hash_cache_misses_total", "counter",
	    "SHA-256 look-ups that found no hash (the file is not read).");
	fprintf(f, "m4f_origin_hash_cache_misses_total %" PRIu64 "\n", misses);
	family(f, "hashed_bytes_total", "counter",
	    "Bytes read to hash: answers' digests, new files, background.");
	fprintf(f, "m4f_origin_hashed_bytes_total %" PRIu64 "\n", hashed);
	family(f, "hash_pending", "gauge", "Hashings running now.");
	fprintf(f, "m4f_origin_hash_pending %" PRId64 "\n", pending);
	family(f, "auth_failures_total", "counter",
	    "Requests refused with 401: no, a bad or an expired signature.");
	fprintf(f, "m4f_origin_auth_failures_total %" PRIu64 "\n",
	    atomic_load(&m->auth_failures));
	family(f, "start_time_seconds", "gauge",
	    "When the origin started, unix time.");
	fprintf(f, "m4f_origin_start_time_seconds %" PRId64 "\n", m->started);
}

struct MHD_Response *
ometrics_answer(struct ometrics *m, struct MHD_Connection *c)
{
	struct MHD_Response *r;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	if (m == NULL || (f = open_memstream(&buf, &len)) == NULL)
		return NULL;
	render(m, f);
	if (fclose(f) == EOF) {
		free(buf);
		return NULL;
	}
	if ((r = MHD_create_response_from_buffer(len, buf,
	    MHD_RESPMEM_MUST_FREE)) == NULL) {
		free(buf);
		return NULL;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
	    "text/plain; version=0.0.4; charset=utf-8");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	ometrics_body(c, len);
	return r;
}
