/*
 * m4f-origin: the primary's read-only M4F server (docs/protocol.md).
 * Exports folders under their absolute paths, on one or more addresses,
 * with optional HMAC authentication by the cluster key.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "log.h"
#include "m4f.h"
#include "origin_feed.h"
#include "origin_fs.h"
#include "origin_hash.h"
#include "origin_hasher.h"
#include "origin_http.h"
#include "origin_metrics.h"

#define DEFAULT_CACHE	"/var/lib/m4f-origin/hashes.db"
#define MAX_EXPORTS	64
#define MAX_LISTEN	16
#define KEY_MAX		4096

/* SIGTERM: how long requests in flight may take to end, in ms. */
#define STOP_GRACE_MS	1500

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: m4f-origin [-Pv] [-c hashcache] [-H rate] "
	    "[-k keyfile]\n"
	    "                  -l host:port [-l host:port ...] "
	    "-r dir [-r dir ...]\n");
	exit(2);
}

/* Reads the key: the file's content without a trailing newline. */
static char *
read_key(const char *path, size_t *len)
{
	char *buf;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return NULL;
	if ((buf = malloc(KEY_MAX + 1)) == NULL) {
		close(fd);
		return NULL;
	}
	n = read(fd, buf, KEY_MAX + 1);
	close(fd);
	if (n < 0 || n > KEY_MAX) {
		free(buf);
		errno = n < 0 ? errno : EFBIG;
		return NULL;
	}
	if (n > 0 && buf[n - 1] == '\n')
		n--;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	if (n == 0) {
		free(buf);
		errno = ENODATA;
		return NULL;
	}
	*len = (size_t)n;
	return buf;
}

/* Fills an export from a -r argument; 0 or -1 (logged). */
static int
export_init(struct oexport *e, const char *arg)
{
	size_t n = strlen(arg);
	struct stat st;

	while (n > 1 && arg[n - 1] == '/')
		n--;
	if (arg[0] != '/' || (n > 1 && m4f_path_check(
	    strndupa(arg + 1, n - 1)) == -1)) {
		log_warnx("%s: export must be an absolute, plain path", arg);
		return -1;
	}
	if ((e->url = strndup(arg, n)) == NULL ||
	    (e->real = realpath(arg, NULL)) == NULL ||
	    stat(e->real, &st) == -1) {
		log_warn("%s", arg);
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		log_warnx("%s: not a folder", arg);
		return -1;
	}
	return ofs_export_open(e);
}

struct opts {
	struct oexport	 ex[MAX_EXPORTS];
	size_t		 nex;
	const char	*listen[MAX_LISTEN];
	size_t		 nlisten;
	const char	*keyfile;
	const char	*cache;
	uint64_t	 rate;		/* -H: back-catalogue hashing, bytes/s */
	int		 public;	/* -P: no key on a network address */
	int		 verbose;
};

static void
parse_opts(int argc, char *argv[], struct opts *o)
{
	static const struct option longopts[] = {
		{ "public-read", no_argument, NULL, 'P' },
		{ NULL, 0, NULL, 0 }
	};
	int ch;

	o->cache = DEFAULT_CACHE;
	while ((ch = getopt_long(argc, argv, "H:Pc:k:l:r:v", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'H':
			if (ohasher_parse_rate(optarg, &o->rate) == -1) {
				log_warnx("-H %s: a rate in bytes per second "
				    "is a number with an optional K, M or G",
				    optarg);
				usage();
			}
			break;
		case 'P':
			o->public = 1;
			break;
		case 'c':
			o->cache = optarg;
			break;
		case 'k':
			o->keyfile = optarg;
			break;
		case 'l':
			if (o->nlisten == MAX_LISTEN)
				usage();
			o->listen[o->nlisten++] = optarg;
			break;
		case 'r':
			if (o->nex == MAX_EXPORTS)
				usage();
			if (export_init(&o->ex[o->nex++], optarg) == -1)
				exit(1);
			break;
		case 'v':
			o->verbose = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc || o->nex == 0 || o->nlisten == 0)
		usage();
}

/*
 * Secure by default: without a key, anyone who reaches a port reads the
 * whole archive, so only loopback addresses are served unless -P says
 * that is meant. 0, or -1 logged.
 */
static int
check_listen(const struct opts *o)
{
	size_t i;
	int lo;

	for (i = 0; i < o->nlisten; i++) {
		if ((lo = ohttp_loopback(o->listen[i])) == -1)
			return -1;
		if (lo || o->keyfile != NULL || o->public)
			continue;
		log_warnx("%s is not a loopback address and there is no key "
		    "(-k): anyone on the network could read the archive; "
		    "give -k KEYFILE, or -P (--public-read) if that is "
		    "meant", o->listen[i]);
		return -1;
	}
	return 0;
}

/* A thousand connections, each with a file open, need descriptors. */
static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			log_warn("setrlimit");
	}
}

/* Stops the daemons on its own thread, so that main can bound the wait. */
struct stopper {
	struct MHD_Daemon **d;
	size_t		 n;
	struct ofeed	*feed;
	pthread_mutex_t	 lock;
	pthread_cond_t	 cond;
	int		 done;		/* under lock */
};

static void *
stop_main(void *arg)
{
	struct stopper *s = arg;
	size_t i;

	ofeed_stop(s->feed);
	for (i = 0; i < s->n; i++)
		ohttp_stop(s->d[i]);
	pthread_mutex_lock(&s->lock);
	s->done = 1;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/*
 * Stops every daemon, waiting up to STOP_GRACE_MS for the requests in
 * flight (an answer hashing what it sends, a slow client). Returns 0 when
 * all ended, -1 when some are still running: the caller must then exit
 * without freeing what they use.
 */
static int
stop_all(struct MHD_Daemon **d, size_t n, struct ofeed *feed)
{
	static struct stopper s = { .lock = PTHREAD_MUTEX_INITIALIZER,
	    .cond = PTHREAD_COND_INITIALIZER };
	struct timespec dl;
	pthread_t thr;
	int rc = 0;

	s.d = d, s.n = n, s.feed = feed;
	if (pthread_create(&thr, NULL, stop_main, &s) != 0) {
		stop_main(&s);
		return 0;
	}
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += STOP_GRACE_MS / 1000;
	dl.tv_nsec += (STOP_GRACE_MS % 1000) * 1000000L;
	if (dl.tv_nsec >= 1000000000L)
		dl.tv_sec++, dl.tv_nsec -= 1000000000L;
	pthread_mutex_lock(&s.lock);
	while (!s.done && rc == 0)
		rc = pthread_cond_timedwait(&s.cond, &s.lock, &dl);
	rc = s.done ? 0 : -1;
	pthread_mutex_unlock(&s.lock);
	if (rc == 0)
		pthread_join(thr, NULL);
	return rc;
}

/* Blocks until SIGTERM or SIGINT (which all threads have blocked). */
static int
wait_signal(const sigset_t *set)
{
	int sig;

	while (sigwait(set, &sig) != 0)
		;
	return sig;
}

int
main(int argc, char *argv[])
{
	struct MHD_Daemon *d[MAX_LISTEN] = { NULL };
	struct ohttp h = { 0 };
	struct ohasher *hasher = NULL;
	static struct opts o;	/* static: reachable when parse_opts() exits */
	sigset_t set;
	size_t i;
	int rc = 1, sig;

	log_init("m4f-origin", LOG_LVL_INFO);
	parse_opts(argc, argv, &o);
	if (o.verbose)
		log_set_level(LOG_LVL_DEBUG);
	if (check_listen(&o) == -1)
		return 1;
	raise_nofile();
	if (o.keyfile != NULL &&
	    (h.key = read_key(o.keyfile, &h.keylen)) == NULL) {
		log_err("key file %s", o.keyfile);
		return 1;
	}
	/* Every thread inherits this mask; only sigwait() sees the signals. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	sigdelset(&set, SIGPIPE);

	h.ex = o.ex, h.nex = o.nex;
	if ((h.hash = ohash_open(o.cache)) == NULL) {
		log_errx("cannot open hash cache %s", o.cache);
		goto out;
	}
	if ((hasher = ohasher_open(o.ex, o.nex, h.hash, o.rate)) == NULL)
		goto out;
	if ((h.feed = ofeed_open(o.ex, o.nex, h.hash, hasher)) == NULL)
		goto out;
	if ((h.metrics = ometrics_new(h.hash)) == NULL) {
		log_err("metrics");
		goto out;
	}
	for (i = 0; i < o.nlisten; i++)
		if ((d[i] = ohttp_start(&h, o.listen[i])) == NULL)
			goto out;
	for (i = 0; i < o.nex; i++)
		log_info("exporting %s (%s)", o.ex[i].url, o.ex[i].real);
	log_info("listening on %zu address(es)%s", o.nlisten,
	    h.key ? ", signed requests only" : "");
	if (o.rate > 0)
		log_info("hashing the back catalogue at %llu bytes/s, newest "
		    "first", (unsigned long long)o.rate);
	sig = wait_signal(&set);
	log_info("signal %d, stopping", sig);
	rc = 0;
out:
	if (stop_all(d, o.nlisten, h.feed) == -1) {
		/* Threads still use the feed, the cache and the exports. */
		log_warnx("requests still in flight after %d ms: exiting "
		    "without them", STOP_GRACE_MS);
		_exit(rc);
	}
	ofeed_close(h.feed);
	ohasher_close(hasher);
	ometrics_free(h.metrics);
	ohash_close(h.hash);
	for (i = 0; i < o.nex; i++) {
		free(o.ex[i].url);
		free(o.ex[i].real);
		close(o.ex[i].fd);
	}
	free((char *)h.key);
	return rc;
}
