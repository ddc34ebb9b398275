/*
 * fetcher: the fetcher's life (fetcher_new, fetcher_free: the network
 * thread and the finishers), listings, the crawler's whole files, holds,
 * the feed's subscriber, counters. Reads are served in read.c, the
 * network thread is xfer.c's; the files and the lock order are listed in
 * fetch_int.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fetch_int.h"
#include "store.h"

void
fetcher_hold(struct fetcher *f, int hold)
{
	int held;

	pthread_mutex_lock(&f->lock);
	held = hold ? ++f->held : --f->held;
	pthread_mutex_unlock(&f->lock);
	if (held == 0)
		fetch_wake(f);
}

int
fetcher_get_file(struct fetcher *f, uint64_t id, enum fetch_prio prio,
    void (*done)(void *arg, uint64_t id, int err), void *arg)
{
	struct store_ent e;
	struct job *j;
	char *rel;
	int created, err;

	if (!fetch_prio_ok(prio)) {
		errno = EINVAL;
		return -1;
	}
	if (store_get(f->store, id, &e) == -1)
		return -1;
	if (e.type != STORE_FILE) {
		errno = EISDIR;
		return -1;
	}
	if ((rel = store_path(f->store, id)) == NULL)
		return -1;
	pthread_mutex_lock(&f->lock);
	j = job_get(f, &e, rel, FETCH_WHOLE, prio, 0, &created);
	err = errno;
	if (j != NULL && !created && j->file.done != NULL) {
		/* Someone else's callback: a job of its own, not in the table. */
		j = file_job_new(f, &e, rel, prio);
		created = j != NULL;
		err = errno;
	}
	if (j != NULL) {
		j->file.done = done;
		j->file.done_arg = arg;
	}
	pthread_mutex_unlock(&f->lock);
	free(rel);
	if (j == NULL) {
		errno = err;
		return -1;
	}
	if (created)
		fetch_wake(f);
	return 0;
}

int
fetcher_list(struct fetcher *f, const char *rel, int recursive,
    enum fetch_prio prio, int timeout_ms)
{
	return list_wait(f, rel, recursive, prio, timeout_ms);
}

int
fetcher_follow(struct fetcher *f,
    void (*cb)(void *arg, const struct fetcher_change *), void *arg)
{
	char epoch[33];
	uint64_t seq;
	int resume;

	resume = feed_load(f, epoch, &seq);
	pthread_mutex_lock(&f->lock);
	if (f->follow) {
		pthread_mutex_unlock(&f->lock);
		errno = EALREADY;
		return -1;
	}
	/* The network thread reads these once it sees follow set. */
	if (resume) {
		memcpy(f->feed_epoch, epoch, sizeof(epoch));
		f->feed_seq = seq;
		f->feed_resume = 1;
	}
	f->follow = 1;
	f->follow_cb = cb;
	f->follow_arg = arg;
	pthread_mutex_unlock(&f->lock);
	fetch_wake(f);
	return 0;
}

void
fetcher_stats(struct fetcher *f, struct fetcher_stats *out)
{
	int i;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < FETCH_PRIOS; i++)
		out->bytes[i] = atomic_load(&f->st_bytes[i]);
	out->requests = atomic_load(&f->st_requests);
	out->failures = atomic_load(&f->st_failures);
	out->retries = atomic_load(&f->st_retries);
	out->bad_answers = atomic_load(&f->st_bad);
	out->connected = atomic_load(&f->st_connected);
	out->answers = atomic_load(&f->st_answers);
	out->bad_signatures = atomic_load(&f->st_badsig);
	out->auth_failed = atomic_load(&f->st_auth_failed);
}

/* Writes "scheme://host:port" into buf. Returns 0, or -1 with EINVAL. */
static int
make_base(char *buf, size_t sz, int tls, const char *host, int port)
{
	int n;
	int v6 = strchr(host, ':') != NULL && host[0] != '[';

	n = snprintf(buf, sz, "%s://%s%s%s:%d", tls ? "https" : "http",
	    v6 ? "[" : "", host, v6 ? "]" : "", port);
	if (n < 0 || (size_t)n >= sz) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

/* Copies conf into f and checks it. Returns 0, or -1 with errno. */
static int
conf_copy(struct fetcher *f, const struct fetcher_conf *conf)
{
	size_t n;
	const char *s;

	f->conf = *conf;
	if (conf->host == NULL || conf->host[0] == '\0' ||
	    conf->export == NULL || conf->export[0] != '/' ||
	    conf->port <= 0 || conf->port > 65535 ||
	    conf->replication_port < 0 || conf->replication_port > 65535 ||
	    conf->transfers < 0 || conf->retries < 0 ||
	    conf->connect_timeout_ms < 0 || (conf->key == NULL) !=
	    (conf->keylen == 0)) {
		errno = EINVAL;
		return -1;
	}
	if (f->conf.connect_timeout_ms == 0)
		f->conf.connect_timeout_ms = 5000;
	if (f->conf.transfers == 0)
		f->conf.transfers = 4;
	if (f->conf.whole_max == 0 || f->conf.whole_max > FETCH_FILE_MAX)
		f->conf.whole_max = FETCH_WHOLE_MAX;
	if (f->conf.retries == 0)
		f->conf.retries = 3;
	if (f->conf.replication_port == 0)
		f->conf.replication_port = conf->port;

	/* "/storage/" and "/storage" name the same export. */
	n = strlen(conf->export);
	while (n > 1 && conf->export[n - 1] == '/')
		n--;
	if (n == 1)
		n = 0;	/* the origin's "/": the empty path */
	if ((f->host = strdup(conf->host)) == NULL ||
	    (f->export = strndup(conf->export, n)) == NULL)
		return -1;
	if (n > 0 && m4f_path_check(f->export + 1) == -1)
		return -1;
	if (conf->cafile != NULL && (f->cafile = strdup(conf->cafile)) == NULL)
		return -1;
	if (conf->key != NULL) {
		if ((f->key = malloc(conf->keylen)) == NULL)
			return -1;
		memcpy(f->key, conf->key, conf->keylen);
	}
	f->conf.host = f->host;
	f->conf.export = f->export;
	f->conf.cafile = f->cafile;
	f->conf.key = f->key;
	if (make_base(f->base, sizeof(f->base), conf->tls, f->host,
	    f->conf.port) == -1 ||
	    make_base(f->rbase, sizeof(f->rbase), conf->tls, f->host,
	    f->conf.replication_port) == -1)
		return -1;

	/* Lowered by tests to exercise paging. */
	f->list_limit = M4F_LIST_LIMIT_DEFAULT;
	if ((s = getenv("DVRFS_LIST_LIMIT")) != NULL) {
		char *end;
		unsigned long v;

		errno = 0;
		v = strtoul(s, &end, 10);
		if (errno == 0 && *end == '\0' && v >= 1 &&
		    v <= M4F_LIST_LIMIT_MAX)
			f->list_limit = (unsigned)v;
	}
	return 0;
}

/* Lets the finishers drain their queues, then joins them. */
static void
stop_finishers(struct fetcher *f)
{
	int i;

	pthread_mutex_lock(&f->lock);
	f->fin_stop = 1;
	pthread_cond_broadcast(&f->fin_cond[0]);
	pthread_cond_broadcast(&f->fin_cond[1]);
	pthread_mutex_unlock(&f->lock);
	for (i = 0; i < f->nfinishers; i++)
		pthread_join(f->finisher[i], NULL);
	f->nfinishers = 0;
	pthread_cond_destroy(&f->fin_cond[0]);
	pthread_cond_destroy(&f->fin_cond[1]);
}

static void
conf_free(struct fetcher *f)
{
	free(f->host);
	free(f->export);
	free(f->cafile);
	free(f->key);
}

static void
global_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct fetcher *
fetcher_new(const struct fetcher_conf *conf, struct store *store)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_condattr_t ca;
	struct fetcher *f;
	int err;

	if (conf == NULL || store == NULL) {
		errno = EINVAL;
		return NULL;
	}
	pthread_once(&once, global_init);
	if ((f = calloc(1, sizeof(*f))) == NULL)
		return NULL;
	if (conf_copy(f, conf) == -1)
		goto fail;
	f->store = store;
	f->bs = store_block_size(store);
	if (f->bs == 0) {
		errno = EINVAL;
		goto fail;
	}
	f->reachable = -1;
	f->refill = fetch_now_ms();
	pthread_mutex_init(&f->lock, NULL);
	pthread_mutex_init(&f->spare_lock, NULL);
	if ((f->multi = curl_multi_init()) == NULL) {
		errno = ENOMEM;
		goto fail_lock;
	}
	/*
	 * Besides the crawler's transfers: room for a burst of viewers'
	 * first segments. With 16, a hundred viewers starting together
	 * through a 20 ms link waited five round trips for the last ones
	 * (case_viewers: p99 first byte 97-112 ms; with 48, 86-89 ms).
	 */
	curl_multi_setopt(f->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
	    (long)f->conf.transfers + 48);
	curl_multi_setopt(f->multi, CURLMOPT_MAXCONNECTS,
	    (long)f->conf.transfers + 64);
	pthread_cond_init(&f->fin_cond[0], NULL);
	pthread_cond_init(&f->fin_cond[1], NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&f->relist_cond, &ca);
	pthread_condattr_destroy(&ca);
	/* The finishers learn their queue from f->finisher: hold them. */
	pthread_mutex_lock(&f->lock);
	for (; f->nfinishers < FETCH_FINISHERS; f->nfinishers++)
		if ((err = pthread_create(&f->finisher[f->nfinishers], NULL,
		    xfer_finisher_main, f)) != 0)
			break;
	pthread_mutex_unlock(&f->lock);
	if (f->nfinishers < FETCH_FINISHERS) {
		errno = err;
		goto fail_finishers;
	}
	if ((err = pthread_create(&f->thread, NULL, xfer_main, f)) != 0) {
		errno = err;
		goto fail_finishers;
	}
	return f;
fail_finishers:
	err = errno;
	stop_finishers(f);
	pthread_cond_destroy(&f->relist_cond);
	curl_multi_cleanup(f->multi);
	errno = err;
fail_lock:
	pthread_mutex_destroy(&f->spare_lock);
	pthread_mutex_destroy(&f->lock);
fail:
	err = errno;
	conf_free(f);
	free(f);
	errno = err;
	return NULL;
}

void
fetcher_cancel(struct fetcher *f)
{
	if (f != NULL)
		atomic_store(&f->cancel, 1);
}

void
fetcher_free(struct fetcher *f)
{
	if (f == NULL)
		return;
	pthread_mutex_lock(&f->lock);
	f->stop = 1;
	pthread_mutex_unlock(&f->lock);
	fetch_wake(f);
	pthread_join(f->thread, NULL);
	relist_stop(f);
	feed_save(f, 1);
	pthread_cond_destroy(&f->relist_cond);
	stop_finishers(f);
	curl_multi_cleanup(f->multi);
	body_pool_free(f);
	pthread_mutex_destroy(&f->spare_lock);
	pthread_mutex_destroy(&f->lock);
	conf_free(f);
	free(f);
}
