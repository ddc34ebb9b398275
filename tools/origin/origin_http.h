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

/*
 * The server's state, shared by every listen address. What a client can
 * make the origin hold is bounded here (docs/reliability.md, "Memory"):
 * connections, listings being built, JSON answers waiting to be sent.
 */
struct ohttp {
	const struct oexport *ex;
	size_t		 nex;
	struct ohash	*hash;
	struct ofeed	*feed;
	const char	*key;		/* NULL: no authentication */
	size_t		 keylen;
	struct ometrics	*metrics;	/* GET /metrics; NULL: 404 */
	_Atomic unsigned nconn;		/* open connections, all addresses */
	_Atomic unsigned nbuild;	/* listings being built */
	_Atomic size_t	 held;		/* bytes of JSON answers not yet sent */
	_Atomic long long busy_said;	/* when a busy refusal was last logged */
	_Atomic unsigned busy_quiet;	/* refusals not logged since */
};

/*
 * Starts one daemon on host:port (IPv4, or IPv6 in brackets). Serves
 * every connection on its own thread, so a long-poll blocks nobody else.
 * h must outlive the daemon. NULL on failure (logged).
 */
struct MHD_Daemon *ohttp_start(struct ohttp *h, const char *hostport);
void		 ohttp_stop(struct MHD_Daemon *);

/*
 * Is host:port a loopback address (127.0.0.0/8, ::1)? 1 or 0, -1 when it
 * does not resolve (logged).
 */
int		 ohttp_loopback(const char *hostport);

#endif
