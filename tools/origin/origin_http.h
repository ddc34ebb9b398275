/*
 * origin_http: the libmicrohttpd side of m4f-origin. Checks the signature,
 * routes a request to a file, a listing or the feed, and answers with the
 * bytes, JSON or a one-line text/plain error.
 */
#ifndef ORIGIN_HTTP_H
#define ORIGIN_HTTP_H

#include <stddef.h>

struct oexport;
struct ohash;
struct ofeed;
struct ometrics;
struct MHD_Daemon;

struct ohttp {
	const struct oexport *ex;
	size_t		 nex;
	struct ohash	*hash;
	struct ofeed	*feed;
	const char	*key;		/* NULL: no authentication */
	size_t		 keylen;
	struct ometrics	*metrics;	/* GET /metrics; NULL: 404 */
};

/*
 * Starts one daemon on host:port (IPv4, or IPv6 in brackets). Serves
 * every connection on its own thread, so a long-poll blocks nobody else.
 * h must outlive the daemon. NULL on failure (logged).
 */
struct MHD_Daemon *ohttp_start(struct ohttp *h, const char *hostport);
void		 ohttp_stop(struct MHD_Daemon *);

#endif
