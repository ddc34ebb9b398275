/*
 * store: opening the store, crash recovery, and the two background
 * threads (the committer of block marks, the checker of complete files).
 * The top of the store's files: calls store_sql.c and store_data.c, and
 * nothing calls back into it. The layering and the lock order are in
 * store_impl.h.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "store.h"
#include "store_impl.h"

#define BS_MIN	512
#define BS_MAX	(64 * 1024 * 1024)

/* The background check's pace: 1,024 files a second at most. */
#define CHECK_BATCH	256
#define CHECK_PAUSE_MS	250
#define CHECK_SAVE_MS	10000

/*
 * The block size: the stored one, or conf's for a new store (then
 * recorded; s->wlock held, in a transaction).
 */
static int
settings(struct store *s, const struct store_conf *conf)
{
	sqlite3_stmt *st;
	uint32_t want = conf ? conf->block_size : 0;
	struct conn *c = s->ro ? &s->rd : &s->wr;
	int64_t bs = 0;
	int rc;

	if ((st = store_q(c, Q_BS_GET)) == NULL)
		return -1;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		bs = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_sqlerr(c, rc, "settings");
	if (rc == SQLITE_ROW) {
		if (bs < BS_MIN || bs > BS_MAX) {
			log_warnx("%s: bad block size %lld", s->dir,
			    (long long)bs);
			errno = EIO;
			return -1;
		}
		if (want != 0 && want != bs) {
			errno = EINVAL;
			return -1;
		}
		s->bs = (uint32_t)bs;
		return 0;
	}
	if (s->ro) {
		errno = ENOENT;
		return -1;
	}
	s->bs = want ? want : STORE_BLOCK_DEFAULT;
	if (s->bs < BS_MIN || s->bs > BS_MAX) {
		errno = EINVAL;
		return -1;
	}
	if ((st = store_q(c, Q_BS_SET)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, s->bs);
	return store_step(c, st, "settings");
}

/* Removes every file in dir/sub (not recursive: tmp/ is flat). */
static void
clear_dir(struct store *s, const char *sub)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int fd;

	if (store_xpath(s, path, sizeof(path), sub, NULL) == -1 ||
	    (d = opendir(path)) == NULL)
		return;
	fd = dirfd(d);
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.' || (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0))
			if (unlinkat(fd, de->d_name, 0) == -1)
				log_warn("unlink %s/%s", path, de->d_name);
	fsync(fd);
	closedir(d);
}

/*
 * Is the file at path, found where an intent said id (at rel) was being
 * installed, the verified content of id? Then marks id complete and
 * returns 1; else 0. s->wlock held, in a transaction.
 */
static int
intent_keep(struct store *s, uint64_t id, const char *rel, const char *path)
{
	sqlite3_stmt *st;
	struct ent e;
	char *now = NULL;
	uint8_t sha[32];
	int fd, keep = 0;

	if (store_get_c(&s->wr, id, &e) == -1 || e.e.type != STORE_FILE ||
	    !e.has_sha || (now = store_path_c(&s->wr, id)) == NULL ||
	    strcmp(now, rel) != 0 ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		goto out;
	if (store_sha256(fd, NULL, 0, e.e.size, sha) == 0 &&
	    memcmp(sha, e.sha, 32) == 0 &&
	    (st = store_q(&s->wr, Q_COMPLETE)) != NULL) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)e.e.id);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)e.gen);
		keep = store_step(&s->wr, st, "complete") == 0;
	}
	close(fd);
out:
	free(now);
	return keep;
}

/*
 * Completions interrupted by a crash: the index recorded where a file was
 * about to be renamed. If it is there, complete it only when its bytes
 * verify; otherwise make sure nothing is left at that path. s->wlock
 * held, in a transaction.
 */
static int
recover_intents(struct store *s)
{
	sqlite3_stmt *st;
	struct { uint64_t id; char *path; } *v = NULL;
	const unsigned char *rel;
	size_t n = 0, i;
	char path[PATH_MAX];
	int rc, r = -1;
	void *nv;

	if ((st = store_q(&s->wr, Q_INTENTS)) == NULL)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((nv = realloc(v, (n + 1) * sizeof(*v))) == NULL)
			goto out;
		v = nv;
		v[n].id = (uint64_t)sqlite3_column_int64(st, 0);
		rel = sqlite3_column_text(st, 1);
		if ((v[n].path = strdup(rel ? (const char *)rel : "")) == NULL)
			goto out;
		n++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		store_sqlerr(&s->wr, rc, "intent");
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (*v[i].path == '\0' || store_xpath(s, path, sizeof(path),
		    "data", v[i].path) == -1)
			continue;
		if (intent_keep(s, v[i].id, v[i].path, path)) {
			store_partial_path(s, path, sizeof(path), v[i].id);
			unlink(path);
		} else if (unlink(path) == -1 && errno != ENOENT)
			log_warn("unlink %s", path);
	}
	r = store_run(&s->wr, Q_INTENT_CLEAR);
out:
	sqlite3_reset(st);
	for (i = 0; i < n; i++)
		free(v[i].path);
	free(v);
	return r;
}

/*
 * Partial files: one per entry in state PARTIAL (or NONE while its first
 * blocks were not committed yet). Any other file in partial/ is an
 * orphan; a PARTIAL entry without its file loses its bits. s->wlock
 * held, in a transaction.
 */
static int
recover_partial(struct store *s)
{
	char path[PATH_MAX], *end;
	struct dirent *de;
	struct ent e;
	sqlite3_stmt *st;
	DIR *d;
	unsigned long long id;
	struct stat sb;
	uint64_t *ids;
	size_t n, i;
	int r = 0;

	if (store_xpath(s, path, sizeof(path), "partial", NULL) == -1 ||
	    (d = opendir(path)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		errno = 0;
		id = strtoull(de->d_name, &end, 10);
		if (errno == 0 && *end == '\0' && de->d_name[0] != '0' &&
		    store_get_c(&s->wr, id, &e) == 0 &&
		    e.e.type == STORE_FILE && e.e.state == STORE_PARTIAL)
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == -1)
			log_warn("unlink %s/%s", path, de->d_name);
	}
	closedir(d);

	if ((st = store_q(&s->wr, Q_PARTIALS)) == NULL ||
	    store_ids(&s->wr, st, &ids, &n) == -1)
		return -1;
	for (i = 0; i < n && r == 0; i++) {
		if (store_partial_path(s, path, sizeof(path), ids[i]) == -1 ||
		    stat(path, &sb) == 0)
			continue;
		memset(&e, 0, sizeof(e));
		e.e.id = ids[i];
		e.e.type = STORE_FILE;
		e.e.state = STORE_PARTIAL;
		r = store_drop_local(s, &e, NULL);
	}
	free(ids);
	return r;
}

/* Recovery after a crash; s->wlock held, in a transaction. */
static int
recover(struct store *s)
{
	clear_dir(s, "tmp");
	if (recover_intents(s) == -1 || recover_partial(s) == -1)
		return -1;
	return 0;
}

/*
 * A new store's tables, its block size, then recovery: one transaction.
 * An index just brought to the new layout is then compacted: the old
 * table's pages would stay free in the file for good.
 */
static int
prepare(struct store *s, const struct store_conf *conf, const char *path)
{
	int migrated = 0;

	if (store_begin(&s->wr) == -1 || store_end(&s->wr,
	    store_schema(&s->wr, path, &migrated) == 0 &&
	    settings(s, conf) == 0 && recover(s) == 0 ? 0 : -1) == -1)
		return -1;
	if (migrated && store_exec(&s->wr, "VACUUM") == -1)
		log_warnx("%s: not compacted after its upgrade; it works as"
		    " it is", path);
	return 0;
}

/* ms from now on the monotonic clock, the clock of s->wake. */
static void
deadline(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_nsec += ms * 1000000L;
	while (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* A read-only connection of the caller's own to the index. */
static int
check_conn(struct store *s, struct conn *c)
{
	char path[PATH_MAX];

	if (store_xpath(s, path, sizeof(path), "index.db", NULL) == -1)
		return -1;
	return store_conn_open(c, path, 1, 0);
}

/* The id the background check continues after: 0 for a new pass. */
static uint64_t
check_from(struct conn *c)
{
	sqlite3_stmt *st;
	sqlite3_int64 v = 0;

	if ((st = store_q(c, Q_CHECK_FROM)) == NULL)
		return 0;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return v > 0 ? (uint64_t)v : 0;
}

int
store_feed_get(struct store *s, char *token, size_t len, uint64_t *seq)
{
	sqlite3_stmt *st;
	const unsigned char *t;
	sqlite3_int64 v;
	int rc = -1;

	pthread_mutex_lock(&s->lock);
	if ((st = store_q(store_rdc(s), Q_FEED_GET)) == NULL)
		goto out;
	if (sqlite3_step(st) != SQLITE_ROW ||
	    (t = sqlite3_column_text(st, 0)) == NULL ||
	    sqlite3_column_type(st, 1) != SQLITE_INTEGER ||
	    (v = sqlite3_column_int64(st, 1)) < 0) {
		errno = ENOENT;
	} else {
		snprintf(token, len, "%s", (const char *)t);
		*seq = (uint64_t)v;
		rc = 0;
	}
	sqlite3_reset(st);
out:
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int
store_feed_set(struct store *s, const char *token, uint64_t seq)
{
	sqlite3_stmt *st;
	int r = -1;

	if (seq > INT64_MAX) {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&s->wlock);
	if (store_begin(&s->wr) == 0) {
		if ((st = store_q(&s->wr, Q_FEED_SET)) != NULL) {
			sqlite3_bind_text(st, 1, token, -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 2, (sqlite3_int64)seq);
			r = store_step(&s->wr, st, "feed");
		}
		r = store_end(&s->wr, r);
	}
	pthread_mutex_unlock(&s->wlock);
	return r;
}

/* Records where the background check got to: a transaction of its own. */
static void
check_save(struct store *s, uint64_t from)
{
	sqlite3_stmt *st;
	int r = -1;

	pthread_mutex_lock(&s->wlock);
	if (store_begin(&s->wr) == 0) {
		if ((st = store_q(&s->wr, Q_CHECK_FROM_SET)) != NULL) {
			sqlite3_bind_int64(st, 1, (sqlite3_int64)from);
			r = store_step(&s->wr, st, "check");
		}
		store_end(&s->wr, r);
	}
	pthread_mutex_unlock(&s->wlock);
}

/*
 * The background check of complete files (store_check's, paced): a
 * batch of CHECK_BATCH every CHECK_PAUSE_MS, read on a connection of its
 * own without the store's locks, so readers and writers hardly notice
 * it. Where it got to is saved every CHECK_SAVE_MS and when the store
 * closes: the next open continues there, and a pass that reached the
 * end starts the next open from the first file.
 */
static void *
checker(void *arg)
{
	struct store *s = arg;
	struct timespec ts;
	struct conn c;
	uint64_t from, next, saved;
	int64_t at;
	int stop = 0;

	if (check_conn(s, &c) == -1)
		return NULL;
	saved = from = check_from(&c);
	at = clock_ms();
	while (!stop) {
		pthread_mutex_lock(&s->lock);
		deadline(&ts, CHECK_PAUSE_MS);
		while (!s->stop && pthread_cond_timedwait(&s->cwake, &s->lock,
		    &ts) == 0)
			;
		stop = s->stop;
		pthread_mutex_unlock(&s->lock);
		if (stop)
			break;
		if (store_check_complete(s, &c, from, CHECK_BATCH, &next) == -1)
			break;
		from = next;
		if (next == 0)
			stop = 1;
		else if (clock_ms() - at < CHECK_SAVE_MS)
			continue;
		check_save(s, from);
		saved = from;
		at = clock_ms();
	}
	if (from != saved)
		check_save(s, from);
	store_conn_close(&c);
	return NULL;
}

ssize_t
store_check(struct store *s)
{
	struct conn c;
	uint64_t from = 0, next;
	int r = 0;

	if (s->ro)
		return 0;
	if (check_conn(s, &c) == -1)
		return -1;
	do {
		if ((r = store_check_complete(s, &c, from, 256, &next)) == -1)
			break;
		from = next;
	} while (next != 0);
	store_conn_close(&c);
	return r;
}

/*
 * The committer: sleeps until block marks, touches or suspects are
 * queued, gathers more for up to STORE_BATCH_MS, and commits them as one
 * batch (store_commit_batch); once more after store_close asks it to
 * stop.
 */
static void *
committer(void *arg)
{
	struct store *s = arg;
	struct timespec ts;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		while (!s->stop && !s->sync_req && s->ndirty == 0 &&
		    s->ntouch == 0 && s->nsuspect == 0)
			pthread_cond_wait(&s->wake, &s->lock);
		if (!s->stop && !s->sync_req && s->ndirty < STORE_BATCH_N) {
			/* Gather more marks for one sync. */
			deadline(&ts, STORE_BATCH_MS);
			while (!s->stop && !s->sync_req &&
			    s->ndirty < STORE_BATCH_N &&
			    pthread_cond_timedwait(&s->wake, &s->lock, &ts) == 0)
				;
		}
		store_commit_batch(s);
		if (s->stop)
			break;
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

int
store_sync(struct store *s)
{
	uint64_t want;

	if (s->ro)
		return 0;
	pthread_mutex_lock(&s->lock);
	want = s->seq_started + 1;
	s->sync_req = 1;
	pthread_cond_signal(&s->wake);
	while (s->seq_done < want && s->has_committer)
		pthread_cond_wait(&s->done, &s->lock);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static int
mkdir_sub(struct store *s, const char *sub)
{
	char path[PATH_MAX];

	if (store_xpath(s, path, sizeof(path), sub, NULL) == -1)
		return -1;
	if (mkdir(path, 0755) == -1 && errno != EEXIST) {
		log_warn("mkdir %s", path);
		return -1;
	}
	return 0;
}

/* The locks and conditions; s->wake waits on the monotonic clock. */
static int
init_sync(struct store *s)
{
	pthread_condattr_t ca;
	int rc;

	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->wlock, NULL);
	pthread_mutex_init(&s->ilock, NULL);
	pthread_cond_init(&s->done, NULL);
	pthread_cond_init(&s->idone, NULL);
	if ((rc = pthread_condattr_init(&ca)) != 0 ||
	    (rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC)) != 0 ||
	    (rc = pthread_cond_init(&s->wake, &ca)) != 0 ||
	    (rc = pthread_cond_init(&s->cwake, &ca)) != 0) {
		errno = rc;
		return -1;
	}
	pthread_condattr_destroy(&ca);
	return 0;
}

struct store *
store_open(const char *dir, const struct store_conf *conf)
{
	struct store *s;
	char path[PATH_MAX];
	int e;

	if (dir == NULL || *dir == '\0') {
		errno = EINVAL;
		return NULL;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	if (init_sync(s) == -1) {
		e = errno;
		free(s);
		errno = e;
		return NULL;
	}
	s->iq_tail = &s->iq;
	s->ro = conf ? conf->readonly : 0;
	s->max_bytes = conf ? conf->max_bytes : 0;
	if ((s->dir = strdup(dir)) == NULL ||
	    store_xpath(s, path, sizeof(path), "index.db", NULL) == -1)
		goto fail;
	if (!s->ro && ((mkdir(dir, 0755) == -1 && errno != EEXIST) ||
	    mkdir_sub(s, "data") == -1 || mkdir_sub(s, "partial") == -1 ||
	    mkdir_sub(s, "tmp") == -1))
		goto fail;
	/* The version first: a newer index must not even change journal. */
	if (!s->ro && (store_conn_open(&s->wr, path, 0, 0) == -1 ||
	    store_version(&s->wr, path) == -1 ||
	    store_exec(&s->wr, "PRAGMA journal_mode=WAL; "
	    "PRAGMA synchronous=FULL") == -1 || prepare(s, conf, path) == -1))
		goto fail;
	if (store_conn_open(&s->rd, path, s->ro, 1) == -1 ||
	    store_exec(&s->rd, "PRAGMA wal_autocheckpoint=0") == -1)
		goto fail;
	if (s->ro && (store_version(&s->rd, path) == -1 ||
	    settings(s, conf) == -1))
		goto fail;
	s->wr.commits = &s->commits;
	if (!s->ro) {
		if (pthread_create(&s->committer, NULL, committer, s)) {
			errno = EAGAIN;
			goto fail;
		}
		s->has_committer = 1;
		if (pthread_create(&s->checker, NULL, checker, s) == 0)
			s->has_checker = 1;
	}
	return s;
fail:
	e = errno;
	store_close(s);
	errno = e;
	return NULL;
}

void
store_close(struct store *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->lock);
	s->stop = 1;
	pthread_cond_broadcast(&s->wake);
	pthread_cond_broadcast(&s->cwake);
	pthread_mutex_unlock(&s->lock);
	if (s->has_checker)
		pthread_join(s->checker, NULL);
	if (s->has_committer)
		pthread_join(s->committer, NULL);
	store_pf_free_all(s);
	store_conn_close(&s->rd);
	store_conn_close(&s->wr);
	free(s->touch);
	free(s->suspect);
	pthread_cond_destroy(&s->wake);
	pthread_cond_destroy(&s->cwake);
	pthread_cond_destroy(&s->done);
	pthread_cond_destroy(&s->idone);
	pthread_mutex_destroy(&s->ilock);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->wlock);
	free(s->dir);
	free(s);
}

uint32_t
store_block_size(const struct store *s)
{
	return s->bs;
}

const char *
store_dir(const struct store *s)
{
	return s->dir;
}
