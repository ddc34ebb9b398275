/*
 * viewers: many paced HTTP viewers on loopback, for benchmarks.
 *
 *     viewers [-o file] [-p pace_ms] [-s spread_ms] [-T seconds] base list ...
 *
 * Each list file is one viewer: paths, one per line, fetched in order
 * from base (http://127.0.0.1:PORT/..., nothing else is accepted) over
 * one keep-alive connection of its own. A viewer fetches segment i, then
 * waits for the slot of segment i + 1, pace_ms after the slot of i,
 * before it asks for it; a viewer that falls behind goes on at once.
 * Viewer v starts v * spread_ms / viewers after the first (default: its
 * starts spread over one pace), so they do not all ask at the same
 * instant. The run stops after -T seconds (default 600): transfers still
 * running then are cut and counted as failures, segments not yet asked
 * for are not counted at all.
 *
 * Prints, one "name value" per line: requests, failures (transport
 * errors and answers other than 200), bytes, seconds, mibps, ttfb_p50_ms,
 * ttfb_p99_ms, ttfb_max_ms (time to the first byte of each answer,
 * CURLINFO_STARTTRANSFER_TIME_T, connection set-up included) and late
 * (segments that ended after the next one's slot). With -o, one line per
 * request to file: start ms since the run began, first byte ms, bytes,
 * 1 for success or 0.
 *
 * Exits 0 when the run completed (whatever failed within it), 1 on a
 * usage or set-up error.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#define VIEWERS_MAX	4096
#define PATHS_MAX	100000		/* per viewer */
#define PATH_LEN_MAX	4096
#define LOOPBACK	"http://127.0.0.1:"

struct viewer {
	CURL		 *h;
	char		**paths;
	size_t		  npaths;
	size_t		  next;		/* index of the next path to ask */
	int		  busy;		/* a transfer is in the multi handle */
	int64_t		  start_ms;	/* the slot of path 0 */
	int64_t		  asked_ms;	/* when the running transfer began */
	uint64_t	  got;		/* bytes of the running transfer */
};

struct run {
	const char	 *base;
	int64_t		  pace_ms;
	FILE		 *log;		/* -o, or NULL */
	int64_t		  t0;
	uint64_t	  requests, failures, bytes, late;
	double		 *ttfb_ms;	/* one per finished request */
	size_t		  nttfb, attfb;
};

static void
usage(void)
{
	fprintf(stderr, "usage: viewers [-o file] [-p pace_ms] [-s spread_ms] "
	    "[-T seconds] base list ...\n");
}

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Parses a decimal number in [min, max]; -1 when it is not one. */
static int
num(const char *s, long long min, long long max, long long *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/*
 * Reads the paths of list file name into v (one per line, empty lines
 * skipped). Returns 0, or -1 with a message printed. v->paths is freed
 * by viewer_free().
 */
static int
viewer_load(struct viewer *v, const char *name)
{
	char line[PATH_LEN_MAX + 2];
	size_t len;
	FILE *f;
	int rc = -1;

	if ((f = fopen(name, "r")) == NULL) {
		fprintf(stderr, "viewers: %s: %s\n", name, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		len = strcspn(line, "\n");
		if (line[len] != '\n' && !feof(f)) {
			fprintf(stderr, "viewers: %s: line too long\n", name);
			goto out;
		}
		line[len] = '\0';
		if (len == 0)
			continue;
		if (v->npaths == PATHS_MAX) {
			fprintf(stderr, "viewers: %s: more than %d paths\n",
			    name, PATHS_MAX);
			goto out;
		}
		if (v->npaths % 256 == 0) {
			char **p = realloc(v->paths,
			    (v->npaths + 256) * sizeof(*p));
			if (p == NULL)
				goto out;
			v->paths = p;
		}
		if ((v->paths[v->npaths] = strdup(line)) == NULL)
			goto out;
		v->npaths++;
	}
	if (ferror(f)) {
		fprintf(stderr, "viewers: %s: read error\n", name);
		goto out;
	}
	rc = 0;
out:
	fclose(f);
	return rc;
}

static void
viewer_free(struct viewer *v)
{
	size_t i;

	if (v->h != NULL)
		curl_easy_cleanup(v->h);
	for (i = 0; i < v->npaths; i++)
		free(v->paths[i]);
	free(v->paths);
}

/* Counts the body's bytes; the body itself is dropped. */
static size_t
on_body(char *data, size_t size, size_t n, void *arg)
{
	struct viewer *v = arg;

	(void)data;
	v->got += size * n;
	return size * n;
}

/* Starts v's next transfer in m. Returns 0, or -1 (then v stays idle). */
static int
viewer_ask(struct run *r, CURLM *m, struct viewer *v, int64_t now)
{
	char url[2 * PATH_LEN_MAX];

	if ((size_t)snprintf(url, sizeof(url), "%s%s", r->base,
	    v->paths[v->next]) >= sizeof(url))
		return -1;
	curl_easy_setopt(v->h, CURLOPT_URL, url);
	v->got = 0;
	v->asked_ms = now;
	if (curl_multi_add_handle(m, v->h) != CURLM_OK)
		return -1;
	v->busy = 1;
	r->requests++;
	return 0;
}

/* Records v's finished (or cut) transfer; cut when res is not CURLE_OK. */
static int
viewer_done(struct run *r, CURLM *m, struct viewer *v, CURLcode res,
    int64_t now)
{
	curl_off_t ttfb = 0;
	long code = 0;
	int ok;

	curl_multi_remove_handle(m, v->h);
	v->busy = 0;
	curl_easy_getinfo(v->h, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_getinfo(v->h, CURLINFO_STARTTRANSFER_TIME_T, &ttfb);
	ok = res == CURLE_OK && code == 200;
	if (!ok)
		r->failures++;
	r->bytes += v->got;
	if (ok) {
		if (r->nttfb == r->attfb) {
			size_t a = r->attfb ? 2 * r->attfb : 4096;
			double *p = realloc(r->ttfb_ms, a * sizeof(*p));
			if (p == NULL)
				return -1;
			r->ttfb_ms = p;
			r->attfb = a;
		}
		r->ttfb_ms[r->nttfb++] = (double)ttfb / 1000.0;
	}
	/* Late: it ended after the slot of the next segment. */
	if (now > v->start_ms + (int64_t)(v->next + 1) * r->pace_ms)
		r->late++;
	if (r->log != NULL)
		fprintf(r->log, "%lld %.3f %llu %d\n",
		    (long long)(v->asked_ms - r->t0), (double)ttfb / 1000.0,
		    (unsigned long long)v->got, ok);
	v->next++;
	return 0;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The q-quantile (0..1) of the sorted v[0..n), nearest rank; 0 if n = 0. */
static double
quantile(const double *v, size_t n, double q)
{
	size_t k;

	if (n == 0)
		return 0;
	k = (size_t)(q * (double)n + 0.999999);
	if (k < 1)
		k = 1;
	return v[(k > n ? n : k) - 1];
}

/*
 * Runs the viewers vs[0..n) until every list is read or limit_ms passed.
 * Returns 0, or -1 on a libcurl or memory failure.
 */
static int
run_viewers(struct run *r, struct viewer *vs, size_t n, int64_t limit_ms)
{
	CURLM *m;
	CURLMsg *msg;
	int running, left, rc = -1;
	int64_t now, wait, due;
	size_t i, active;

	if ((m = curl_multi_init()) == NULL)
		return -1;
	curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)n);
	for (;;) {
		now = mono_ms();
		if (now - r->t0 >= limit_ms)
			break;
		/* Ask whoever is idle, has paths left and reached its slot. */
		wait = 1000;
		active = 0;
		for (i = 0; i < n; i++) {
			struct viewer *v = &vs[i];
			if (v->busy) {
				active++;
				continue;
			}
			if (v->next >= v->npaths)
				continue;
			active++;
			due = v->start_ms + (int64_t)v->next * r->pace_ms;
			if (due <= now) {
				if (viewer_ask(r, m, v, now) == -1)
					goto out;
			} else if (due - now < wait)
				wait = due - now;
		}
		if (active == 0)
			break;
		if (curl_multi_perform(m, &running) != CURLM_OK)
			goto out;
		while ((msg = curl_multi_info_read(m, &left)) != NULL) {
			struct viewer *v = NULL;
			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
			    (char **)&v);
			if (viewer_done(r, m, v, msg->data.result,
			    mono_ms()) == -1)
				goto out;
			wait = 0;
		}
		if (wait > limit_ms - (now - r->t0))
			wait = limit_ms - (now - r->t0);
		if (wait > 0 && curl_multi_poll(m, NULL, 0, (int)wait,
		    NULL) != CURLM_OK)
			goto out;
	}
	/* Cut what still runs: those count as failures. */
	now = mono_ms();
	for (i = 0; i < n; i++)
		if (vs[i].busy && viewer_done(r, m, &vs[i],
		    CURLE_OPERATION_TIMEDOUT, now) == -1)
			goto out;
	rc = 0;
out:
	for (i = 0; i < n; i++)
		if (vs[i].busy)
			curl_multi_remove_handle(m, vs[i].h);
	curl_multi_cleanup(m);
	return rc;
}

int
main(int argc, char **argv)
{
	struct run r = { .pace_ms = 1000 };
	struct viewer *vs = NULL;
	long long pace = 1000, spread = -1, limit = 600;
	const char *logname = NULL;
	size_t n = 0, i;
	double secs;
	int c, rc = 1;

	while ((c = getopt(argc, argv, "o:p:s:T:")) != -1) {
		switch (c) {
		case 'o':
			logname = optarg;
			break;
		case 'p':
			if (num(optarg, 0, 3600000, &pace) == -1) {
				fprintf(stderr, "viewers: -p: bad pace\n");
				return 1;
			}
			break;
		case 's':
			if (num(optarg, 0, 3600000, &spread) == -1) {
				fprintf(stderr, "viewers: -s: bad spread\n");
				return 1;
			}
			break;
		case 'T':
			if (num(optarg, 1, 86400, &limit) == -1) {
				fprintf(stderr, "viewers: -T: bad seconds\n");
				return 1;
			}
			break;
		default:
			usage();
			return 1;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 2 || argc - 1 > VIEWERS_MAX) {
		usage();
		return 1;
	}
	/* Load on this machine only. */
	if (strncmp(argv[0], LOOPBACK, strlen(LOOPBACK)) != 0) {
		fprintf(stderr, "viewers: %s: only %s... is allowed\n",
		    argv[0], LOOPBACK);
		return 1;
	}
	r.base = argv[0];
	r.pace_ms = pace;
	if (spread < 0)
		spread = pace;
	n = (size_t)argc - 1;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
		return 1;
	if ((vs = calloc(n, sizeof(*vs))) == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		if (viewer_load(&vs[i], argv[i + 1]) == -1)
			goto out;
		if ((vs[i].h = curl_easy_init()) == NULL)
			goto out;
		curl_easy_setopt(vs[i].h, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(vs[i].h, CURLOPT_WRITEDATA, &vs[i]);
		curl_easy_setopt(vs[i].h, CURLOPT_PRIVATE, &vs[i]);
		curl_easy_setopt(vs[i].h, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(vs[i].h, CURLOPT_PROXY, "");
		curl_easy_setopt(vs[i].h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	}
	if (logname != NULL && (r.log = fopen(logname, "w")) == NULL) {
		fprintf(stderr, "viewers: %s: %s\n", logname, strerror(errno));
		goto out;
	}
	r.t0 = mono_ms();
	for (i = 0; i < n; i++)
		vs[i].start_ms = r.t0 + (int64_t)((long long)i * spread /
		    (long long)n);
	if (run_viewers(&r, vs, n, limit * 1000) == -1) {
		fprintf(stderr, "viewers: libcurl or memory failure\n");
		goto out;
	}
	secs = (double)(mono_ms() - r.t0) / 1000.0;
	qsort(r.ttfb_ms, r.nttfb, sizeof(*r.ttfb_ms), cmp_double);
	printf("viewers %zu\n", n);
	printf("requests %llu\n", (unsigned long long)r.requests);
	printf("failures %llu\n", (unsigned long long)r.failures);
	printf("bytes %llu\n", (unsigned long long)r.bytes);
	printf("seconds %.3f\n", secs);
	printf("mibps %.1f\n", secs > 0 ? (double)r.bytes / 1048576.0 / secs :
	    0);
	printf("ttfb_p50_ms %.1f\n", quantile(r.ttfb_ms, r.nttfb, 0.50));
	printf("ttfb_p99_ms %.1f\n", quantile(r.ttfb_ms, r.nttfb, 0.99));
	printf("ttfb_max_ms %.1f\n", quantile(r.ttfb_ms, r.nttfb, 1.0));
	printf("late %llu\n", (unsigned long long)r.late);
	rc = 0;
out:
	if (r.log != NULL && fclose(r.log) == EOF) {
		fprintf(stderr, "viewers: %s: %s\n", logname, strerror(errno));
		rc = 1;
	}
	for (i = 0; vs != NULL && i < n; i++)
		viewer_free(&vs[i]);
	free(vs);
	free(r.ttfb_ms);
	curl_global_cleanup();
	return rc;
}
