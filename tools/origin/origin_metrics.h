/*
 * origin_metrics: what m4f-origin counts about itself, and GET /metrics,
 * which answers it in the Prometheus text exposition format 0.0.4.
 *
 * origin_http.c calls the hooks: ometrics_conn (libmicrohttpd's
 * connection notifier) keeps a small context per connection;
 * ometrics_start when a request's target is known, ometrics_body with the
 * body bytes of the answer it queues, ometrics_done when the request
 * ends, with the status MHD queued. A connection serves one request at a
 * time (a thread each), so the context holds the current one.
 *
 * Thread-safe: counters are atomics or under the metrics' lock.
 */
#ifndef ORIGIN_METRICS_H
#define ORIGIN_METRICS_H

#include <stdint.h>

#include <microhttpd.h>

#define OMETRICS_PATH	"/metrics"

struct ometrics;
struct ohash;
struct ohttp;

/* NULL when out of memory. hash may be NULL. Free with ometrics_free. */
struct ometrics	*ometrics_new(struct ohash *hash);
void		 ometrics_free(struct ometrics *);

struct oconn;

/*
 * What the origin keeps per connection, as libmicrohttpd's socket context:
 * origin_http.c allocates it when a connection starts and frees it when
 * the connection ends; the metrics keep their part in it.
 */
struct oconn_ctx {
	const struct ohttp *http;	/* the server it came to (signing) */
	int		 spare;		/* past the connection limit: 503 */
	struct oconn	*m;		/* the metrics' own, or NULL */
};

/*
 * A connection started or ended (toe), with its context x (may be NULL
 * when it could not be allocated). m may be NULL.
 */
void	ometrics_conn(struct ometrics *m, struct oconn_ctx *x,
	    enum MHD_ConnectionNotificationCode toe);
/* A request for the raw target uri begins on c. m may be NULL. */
void	ometrics_start(struct ometrics *m, struct MHD_Connection *c,
	    const char *uri);
/* The answer queued on c carries n body bytes. */
void	ometrics_body(struct MHD_Connection *c, uint64_t n);
/* The request on c ended (toe: how). m may be NULL. */
void	ometrics_done(struct ometrics *m, struct MHD_Connection *c,
	    enum MHD_RequestTerminationCode toe);

/*
 * The answer to GET /metrics on c, for the caller to queue (and sign) and
 * destroy; NULL when out of memory.
 */
struct MHD_Response *ometrics_answer(struct ometrics *m,
	    struct MHD_Connection *c);

#endif
