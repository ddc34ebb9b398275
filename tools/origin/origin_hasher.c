/*
 * origin_hasher: one thread, two sources of work. The queue (under
 * hr->lock) holds new files too large for the feed thread to hash; it
 * comes first, while their bytes are likely still in the page cache. The
 * back-catalogue pass (thread only) first gathers every folder (metadata
 * only), then visits them by mtime, newest first: a folder's mtime is
 * when its last entry was added, so in a DVR tree the minutes just
 * recorded come first, every stream's alike, and last week last. Each
 * folder's files go newest first too. Bytes are read at most at the rate
 * given, and dropped from the page cache afterwards: nobody asked for
 * them.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "m4f.h"
#include "origin_fs.h"
#include "origin_hash.h"
#include "origin_hasher.h"

#define QUEUE_CAP	1024		/* new files waiting */
#define FOLDERS_MAX	(1 << 20)	/* folders one pass visits */
#define BURST_S		1.0		/* what the rate lets through at once */

struct item {
	const struct oexport *ex;
	char		*rel;
	int64_t		 mtime;		/* ns; orders the pass */
};

struct ohasher {
	const struct oexport *ex;
	size_t		 nex;
	struct ohash	*hash;
	uint64_t	 rate;		/* back catalogue, bytes/s; 0: no pass */
	pthread_t	 thr;
	int		 started;

	pthread_mutex_t	 lock;
	pthread_cond_t	 cond;
	struct item	 q[QUEUE_CAP];	/* under lock, a ring */
	size_t		 qhead, qn;	/* under lock */
	int		 stopping;	/* under lock */

	double		 next;		/* thread only: when pacing allows more */
	struct item	*dirs;		/* thread only: the pass's folders */
	size_t		 ndirs, capdirs;
	size_t		 gi;		/* thread only: next folder to gather */
	size_t		 di;		/* thread only: next folder to hash */
	int		 sorted;	/* thread only: gathering is over */
	struct item	*files;		/* thread only: one folder's files */
	size_t		 nfiles, fi;
	int		 pass;		/* thread only: the pass is running */
	int		 truncated;	/* thread only: folders left out */
	uint64_t	 pass_files, pass_bytes;
	double		 pass_start;
};

static double
now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
ohasher_parse_rate(const char *s, uint64_t *rate)
{
	uint64_t v = 0, mul = 1;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > ((uint64_t)1 << 40))
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	switch (*p) {
	case 'K': case 'k':
		mul = 1024, p++;
		break;
	case 'M': case 'm':
		mul = 1024 * 1024, p++;
		break;
	case 'G': case 'g':
		mul = 1024 * 1024 * 1024, p++;
		break;
	}
	if (*p != '\0' || v > ((uint64_t)1 << 40) / mul)
		return -1;
	*rate = v * mul;
	return 0;
}

/*
 * Holds the hashing to the rate: called after each chunk. Sleeps (on the
 * condition, so that closing wakes it) while the bytes read are ahead of
 * the rate; a burst of at most BURST_S seconds' worth after a pause.
 */
static int
pace(void *arg, size_t n)
{
	struct ohasher *hr = arg;
	uint64_t rate = hr->rate ? hr->rate : OHASHER_LIVE_RATE;
	struct timespec dl;
	double now = now_mono(), wake;
	int stop;

	if (hr->next < now - BURST_S)
		hr->next = now - BURST_S;
	hr->next += (double)n / (double)rate;
	wake = hr->next;
	dl.tv_sec = (time_t)wake;
	dl.tv_nsec = (long)((wake - (double)dl.tv_sec) * 1e9);
	pthread_mutex_lock(&hr->lock);
	/* The queue's signal wakes it early too: wait again. */
	while (!hr->stopping && now_mono() < wake)
		pthread_cond_timedwait(&hr->cond, &hr->lock, &dl);
	stop = hr->stopping;
	pthread_mutex_unlock(&hr->lock);
	return stop ? -1 : 0;
}

/*
 * Hashes file rel of ex unless the cache knows it. back: a file of the
 * back catalogue, dropped from the page cache afterwards. Bytes hashed.
 */
static uint64_t
hash_one(struct ohasher *hr, const struct oexport *ex, const char *rel,
    int back)
{
	struct stat st;
	const char *why;
	char *abs = NULL, hex[65];
	uint64_t n = 0;
	int fd;

	if (ofs_open(ex, rel, &fd, &st, &why) != 200)
		return 0;
	if (!S_ISREG(st.st_mode) ||
	    asprintf(&abs, "%s/%s", ex->real, rel) < 0) {
		abs = NULL;
		goto out;
	}
	if (ohash_lookup(hr->hash, abs, &st, hex) == 1)
		goto out;
	if (ohash_file(hr->hash, abs, fd, &st, hex, pace, hr) == 0)
		n = (uint64_t)st.st_size;
	else if (errno != ECANCELED)
		log_debug("hasher: %s: %s", abs, strerror(errno));
	if (back)
		(void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
out:
	free(abs);
	close(fd);
	return n;
}

void
ohasher_queue(struct ohasher *hr, const struct oexport *ex, const char *rel)
{
	char *copy;

	if (hr == NULL || (copy = strdup(rel)) == NULL)
		return;
	pthread_mutex_lock(&hr->lock);
	if (hr->qn == QUEUE_CAP || hr->stopping) {
		pthread_mutex_unlock(&hr->lock);
		log_debug("hasher: queue full, %s left for later", rel);
		free(copy);
		return;
	}
	hr->q[(hr->qhead + hr->qn) % QUEUE_CAP] = (struct item){ .ex = ex,
	    .rel = copy };
	hr->qn++;
	pthread_cond_signal(&hr->cond);
	pthread_mutex_unlock(&hr->lock);
}

/* Adds a folder to the pass; drops rel when there are too many. */
static void
dirs_add(struct ohasher *hr, const struct oexport *ex, char *rel,
    int64_t mtime)
{
	struct item *nv;
	size_t cap;

	if (hr->ndirs == FOLDERS_MAX) {
		if (!hr->truncated++)
			log_warnx("hasher: more than %d folders: the pass "
			    "leaves the rest out", FOLDERS_MAX);
		free(rel);
		return;
	}
	if (hr->ndirs == hr->capdirs) {
		cap = hr->capdirs ? hr->capdirs * 2 : 64;
		if ((nv = realloc(hr->dirs, cap * sizeof(*nv))) == NULL) {
			free(rel);
			return;
		}
		hr->dirs = nv;
		hr->capdirs = cap;
	}
	hr->dirs[hr->ndirs++] = (struct item){ .ex = ex, .rel = rel,
	    .mtime = mtime };
}

static int64_t
mtime_ns(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

static int
newest_first(const void *a, const void *b)
{
	const struct item *x = a, *y = b;

	/* Same mtime: DVR names grow with time, the greater name first. */
	if (x->mtime != y->mtime)
		return x->mtime < y->mtime ? 1 : -1;
	return strcmp(y->rel, x->rel);
}

/* Adds a file of the folder being visited; drops rel on failure. */
static void
files_add(struct ohasher *hr, const struct oexport *ex, char *rel,
    int64_t mtime)
{
	struct item *nv;

	if ((nv = realloc(hr->files, (hr->nfiles + 1) * sizeof(*nv))) ==
	    NULL) {
		free(rel);
		return;
	}
	hr->files = nv;
	hr->files[hr->nfiles++] = (struct item){ .ex = ex, .rel = rel,
	    .mtime = mtime };
}

/*
 * Reads folder f: with files unset its folders are added to the pass,
 * else its regular files go into hr->files, newest first. Symbolic links
 * are not followed: what they lead to is hashed under its own path.
 */
static void
visit(struct ohasher *hr, const struct item *f, int files)
{
	struct dirent *de;
	struct stat st;
	const char *why;
	char *child;
	DIR *d;
	int fd;

	if (ofs_open(f->ex, f->rel, &fd, &st, &why) != 200)
		return;
	if (!S_ISDIR(st.st_mode) || (d = fdopendir(fd)) == NULL) {
		close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (m4f_name_hidden(de->d_name) ||
		    m4f_name_check(de->d_name, strlen(de->d_name)) == -1 ||
		    fstatat(dirfd(d), de->d_name, &st,
		    AT_SYMLINK_NOFOLLOW) == -1)
			continue;
		if (files ? !S_ISREG(st.st_mode) : !S_ISDIR(st.st_mode))
			continue;
		if (asprintf(&child, "%s%s%s", f->rel, *f->rel ? "/" : "",
		    de->d_name) < 0)
			continue;
		if (files)
			files_add(hr, f->ex, child, mtime_ns(&st));
		else
			dirs_add(hr, f->ex, child, mtime_ns(&st));
	}
	closedir(d);
	if (files && hr->nfiles > 0)
		qsort(hr->files, hr->nfiles, sizeof(*hr->files), newest_first);
}

/*
 * One step of the pass: one folder gathered, or one file hashed, or the
 * files of the next folder read.
 */
static void
pass_step(struct ohasher *hr)
{
	if (hr->gi < hr->ndirs) {
		visit(hr, &hr->dirs[hr->gi++], 0);
		return;
	}
	if (!hr->sorted) {
		qsort(hr->dirs, hr->ndirs, sizeof(*hr->dirs), newest_first);
		hr->sorted = 1;
		log_info("hasher: %zu folders to hash, newest first",
		    hr->ndirs);
		return;
	}
	if (hr->fi < hr->nfiles) {
		hr->pass_bytes += hash_one(hr, hr->files[hr->fi].ex,
		    hr->files[hr->fi].rel, 1);
		hr->pass_files++;
		free(hr->files[hr->fi].rel);
		hr->fi++;
		return;
	}
	free(hr->files);
	hr->files = NULL;
	hr->nfiles = hr->fi = 0;
	if (hr->di < hr->ndirs) {
		visit(hr, &hr->dirs[hr->di++], 1);
		return;
	}
	hr->pass = 0;
	log_info("hasher: back catalogue done, %llu files looked at, %llu "
	    "MiB hashed in %.0f s", (unsigned long long)hr->pass_files,
	    (unsigned long long)(hr->pass_bytes >> 20),
	    now_mono() - hr->pass_start);
}

static void *
hasher_main(void *arg)
{
	struct ohasher *hr = arg;
	struct item it;

	for (;;) {
		pthread_mutex_lock(&hr->lock);
		while (!hr->stopping && hr->qn == 0 && !hr->pass)
			pthread_cond_wait(&hr->cond, &hr->lock);
		if (hr->stopping) {
			pthread_mutex_unlock(&hr->lock);
			break;
		}
		if (hr->qn > 0) {
			it = hr->q[hr->qhead];
			hr->qhead = (hr->qhead + 1) % QUEUE_CAP;
			hr->qn--;
			pthread_mutex_unlock(&hr->lock);
			hash_one(hr, it.ex, it.rel, 0);
			free(it.rel);
			continue;
		}
		pthread_mutex_unlock(&hr->lock);
		pass_step(hr);
	}
	return NULL;
}

struct ohasher *
ohasher_open(const struct oexport *ex, size_t nex, struct ohash *hash,
    uint64_t rate)
{
	struct ohasher *hr;
	pthread_condattr_t ca;
	size_t i;
	char *root;

	if ((hr = calloc(1, sizeof(*hr))) == NULL)
		return NULL;
	hr->ex = ex, hr->nex = nex, hr->hash = hash, hr->rate = rate;
	pthread_mutex_init(&hr->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&hr->cond, &ca);
	pthread_condattr_destroy(&ca);
	hr->next = now_mono();
	if (rate > 0) {
		hr->pass = 1;
		hr->pass_start = hr->next;
		for (i = 0; i < nex; i++)
			if ((root = strdup("")) != NULL)
				dirs_add(hr, &ex[i], root, INT64_MAX);
	}
	if ((errno = pthread_create(&hr->thr, NULL, hasher_main, hr)) != 0) {
		log_warn("hasher");
		ohasher_close(hr);
		return NULL;
	}
	hr->started = 1;
	return hr;
}

void
ohasher_close(struct ohasher *hr)
{
	size_t i;

	if (hr == NULL)
		return;
	pthread_mutex_lock(&hr->lock);
	hr->stopping = 1;
	pthread_cond_broadcast(&hr->cond);
	pthread_mutex_unlock(&hr->lock);
	if (hr->started)
		pthread_join(hr->thr, NULL);
	for (i = 0; i < hr->qn; i++)
		free(hr->q[(hr->qhead + i) % QUEUE_CAP].rel);
	for (i = 0; i < hr->ndirs; i++)
		free(hr->dirs[i].rel);
	free(hr->dirs);
	for (i = hr->fi; i < hr->nfiles; i++)
		free(hr->files[i].rel);
	free(hr->files);
	pthread_cond_destroy(&hr->cond);
	pthread_mutex_destroy(&hr->lock);
	free(hr);
}
