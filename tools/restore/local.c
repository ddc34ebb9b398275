#include <sys/file.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "local.h"
#include "log.h"
#include "m4f.h"

struct names {
	char	       **v;
	size_t		 n, cap;
	size_t		 cleaned;
	int		 clean;
};

int
local_open(const char *dir, int shared)
{
	int fd;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	if (flock(fd, (shared ? LOCK_SH : LOCK_EX) | LOCK_NB) == -1) {
		int e = errno;

		close(fd);
		return errno = e, -1;
	}
	return fd;
}

int
local_is_tmp(const char *name)
{
	size_t len = strlen(name), k = strlen(LOCAL_TMP);

	return name[0] == '.' && len > k + 1 &&
	    strcmp(name + len - k, LOCAL_TMP) == 0;
}

char *
local_tmp_name(const char *rel)
{
	const char *base = strrchr(rel, '/');
	char *t;

	base = base != NULL ? base + 1 : rel;
	if (strlen(base) + 1 + strlen(LOCAL_TMP) > NAME_MAX)
		return errno = ENAMETOOLONG, NULL;
	if (asprintf(&t, "%.*s.%s%s", (int)(base - rel), rel, base,
	    LOCAL_TMP) < 0)
		return errno = ENOMEM, NULL;
	return t;
}

static int
add(struct names *s, const char *prefix, const char *name)
{
	char **nv;

	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 4096;
		if ((nv = realloc(s->v, s->cap * sizeof(*nv))) == NULL)
			return -1;
		s->v = nv;
	}
	if (asprintf(&s->v[s->n], "%s%s%s", prefix, *prefix ? "/" : "",
	    name) < 0)
		return errno = ENOMEM, -1;
	s->n++;
	return 0;
}

/* Reads folder fd (rel from the top, "" for the top); closes fd. */
static int
walk(int fd, const char *rel, char *const *streams, struct names *s)
{
	struct dirent *d;
	struct stat st;
	char *sub;
	DIR *dir;
	int cfd, type, rc = 0;

	if ((dir = fdopendir(fd)) == NULL) {
		close(fd);
		return -1;
	}
	while (rc == 0 && (errno = 0, d = readdir(dir)) != NULL) {
		if (s->clean && local_is_tmp(d->d_name)) {
			if (unlinkat(fd, d->d_name, 0) == 0)
				s->cleaned++;
			continue;
		}
		if (m4f_name_hidden(d->d_name))
			continue;
		type = d->d_type;
		if (type == DT_UNKNOWN || type == DT_LNK) {
			if (fstatat(fd, d->d_name, &st, 0) == -1)
				continue;
			type = S_ISDIR(st.st_mode) ? DT_DIR :
			    S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
		}
		if (type == DT_REG) {
			rc = add(s, rel, d->d_name);
			continue;
		}
		if (type != DT_DIR)
			continue;
		if (*rel == '\0' && streams != NULL) {
			char *const *p;

			for (p = streams; *p != NULL; p++)
				if (strcmp(*p, d->d_name) == 0)
					break;
			if (*p == NULL)
				continue;
		}
		if ((cfd = openat(fd, d->d_name, O_RDONLY | O_DIRECTORY |
		    O_CLOEXEC)) == -1) {
			log_warn("%s%s%s", rel, *rel ? "/" : "", d->d_name);
			continue;
		}
		if (asprintf(&sub, "%s%s%s", rel, *rel ? "/" : "",
		    d->d_name) < 0) {
			close(cfd);
			return errno = ENOMEM, -1;
		}
		rc = walk(cfd, sub, streams, s);
		free(sub);
	}
	if (rc == 0 && errno != 0)
		rc = -1;
	closedir(dir);
	return rc;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
local_scan(int dirfd, char *const *streams, int clean, char ***v,
    size_t *n, size_t *cleaned)
{
	struct names s = { .clean = clean };
	int fd;

	*v = NULL;
	*n = 0;
	if ((fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	if (walk(fd, "", streams, &s) == -1) {
		int e = errno;

		local_names_free(s.v, s.n);
		return errno = e, -1;
	}
	qsort(s.v, s.n, sizeof(*s.v), cmp_str);
	*v = s.v;
	*n = s.n;
	if (cleaned != NULL)
		*cleaned = s.cleaned;
	return 0;
}

void
local_names_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

int
local_sync_dir(int dirfd, const char *dir)
{
	int fd, rc;

	if ((fd = openat(dirfd, *dir ? dir : ".", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

int
local_mkparents(int dirfd, const char *rel, char **last)
{
	const char *slash = strrchr(rel, '/');
	char *dir, *p;

	if (slash == NULL)
		return 0;
	if ((dir = strndup(rel, (size_t)(slash - rel))) == NULL)
		return -1;
	if (*last != NULL && strcmp(*last, dir) == 0) {
		free(dir);
		return 0;
	}
	for (p = dir;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;

		*p = '\0';
		if (mkdirat(dirfd, dir, 0755) == 0) {
			char *up = strrchr(dir, '/');

			if (up != NULL)
				*up = '\0';
			if (local_sync_dir(dirfd, up != NULL ? dir : "") == -1)
				goto fail;
			if (up != NULL)
				*up = '/';
		} else if (errno != EEXIST)
			goto fail;
		*p = c;
		if (c == '\0')
			break;
	}
	free(*last);
	*last = dir;
	return 0;
fail:
	free(dir);
	return -1;
}

/* A file handed over to the committer. */
struct item {
	struct item	*next;
	int		 fd;		/* -1 once closed */
	char		*tmp;		/* NULL once renamed or removed */
	const char	*rel;
	int64_t		 mtime;
	void		*cookie;
	int		 err;
};

/*
 * The lock order: c->lock alone. The committer takes the whole queue at
 * once and works on it without the lock.
 */
struct local_commit {
	int		 dirfd;
	local_wake_cb	*wake;
	void		*warg;
	pthread_t	 thread;
	pthread_mutex_t	 lock;
	pthread_cond_t	 work;		/* the queue has files, or quit */
	pthread_cond_t	 room;		/* a batch ended */
	struct item	*queue, **qtail;	/* under lock */
	struct item	*done, **dtail;		/* under lock */
	size_t		 pending;	/* added, not reaped; under lock */
	size_t		 busy;		/* queued or in a batch; under lock */
	int		 quit;		/* under lock */
};

/* The length of rel's folder part (0: at the top). */
static size_t
dir_len(const char *rel)
{
	const char *slash = strrchr(rel, '/');

	return slash != NULL ? (size_t)(slash - rel) : 0;
}

/* Are a and b in one folder? */
static int
same_dir(const char *a, const char *b)
{
	size_t la = dir_len(a);

	return la == dir_len(b) && strncmp(a, b, la) == 0;
}

/*
 * Puts the batch v in place: every file's mtime and fsync first, so one
 * file's wait overlaps the write-back of the others; the renames; one
 * fsync per folder. Sets each item's err.
 */
static void
commit_batch(struct local_commit *c, struct item *v)
{
	struct timespec ts[2];
	struct item *i, *k;
	char *dir;
	int err;

	for (i = v; i != NULL; i = i->next) {
		ts[0].tv_sec = ts[1].tv_sec = i->mtime;
		ts[0].tv_nsec = ts[1].tv_nsec = 0;
		if (futimens(i->fd, ts) == -1 || fsync(i->fd) == -1)
			i->err = errno;
		close(i->fd);
		i->fd = -1;
	}
	for (i = v; i != NULL; i = i->next) {
		/* Never over a file that appeared meanwhile (the recorder's). */
		if (i->err == 0 && renameat2(c->dirfd, i->tmp, c->dirfd,
		    i->rel, RENAME_NOREPLACE) == 0) {
			free(i->tmp);
			i->tmp = NULL;
			continue;
		}
		if (i->err == 0)
			i->err = errno;
		unlinkat(c->dirfd, i->tmp, 0);
		free(i->tmp);
		i->tmp = NULL;
	}
	/* Each folder once, by the first file renamed into it. */
	for (i = v; i != NULL; i = i->next) {
		if (i->err != 0)
			continue;
		for (k = v; k != i; k = k->next)
			if (k->err == 0 && same_dir(k->rel, i->rel))
				break;
		if (k != i)
			continue;
		if ((dir = strndup(i->rel, dir_len(i->rel))) == NULL ||
		    local_sync_dir(c->dirfd, dir) == -1) {
			err = errno;
			log_warn("sync of the folder of %s", i->rel);
			for (k = i; k != NULL; k = k->next)
				if (k->err == 0 && same_dir(k->rel, i->rel))
					k->err = err;
		}
		free(dir);
	}
}

static void *
commit_main(void *arg)
{
	struct local_commit *c = arg;
	struct item *v;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		while (c->queue == NULL && !c->quit)
			pthread_cond_wait(&c->work, &c->lock);
		if (c->queue == NULL)
			break;
		v = c->queue;
		c->queue = NULL;
		c->qtail = &c->queue;
		pthread_mutex_unlock(&c->lock);
		commit_batch(c, v);
		pthread_mutex_lock(&c->lock);
		*c->dtail = v;
		while (*c->dtail != NULL) {
			c->busy--;
			c->dtail = &(*c->dtail)->next;
		}
		pthread_cond_broadcast(&c->room);
		if (c->wake != NULL)
			c->wake(c->warg);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

struct local_commit *
local_commit_new(int dirfd, local_wake_cb *wake, void *warg)
{
	struct local_commit *c;
	int err;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->dirfd = dirfd;
	c->wake = wake;
	c->warg = warg;
	c->qtail = &c->queue;
	c->dtail = &c->done;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->work, NULL);
	pthread_cond_init(&c->room, NULL);
	if ((err = pthread_create(&c->thread, NULL, commit_main, c)) != 0) {
		pthread_cond_destroy(&c->room);
		pthread_cond_destroy(&c->work);
		pthread_mutex_destroy(&c->lock);
		free(c);
		return errno = err, NULL;
	}
	return c;
}

int
local_commit_add(struct local_commit *c, int fd, char *tmp, const char *rel,
    int64_t mtime, void *cookie)
{
	struct item *i;

	if ((i = calloc(1, sizeof(*i))) == NULL)
		return errno = ENOMEM, -1;
	i->fd = fd;
	i->tmp = tmp;
	i->rel = rel;
	i->mtime = mtime;
	i->cookie = cookie;
	/* The batch's fsync then finds it written, or on its way. */
	(void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	pthread_mutex_lock(&c->lock);
	while (c->pending >= LOCAL_COMMIT_MAX && c->busy > 0)
		pthread_cond_wait(&c->room, &c->lock);
	*c->qtail = i;
	c->qtail = &i->next;
	c->pending++;
	c->busy++;
	pthread_cond_signal(&c->work);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

size_t
local_commit_reap(struct local_commit *c, local_done_cb *done, void *arg)
{
	struct item *v, *i;
	size_t n = 0;

	pthread_mutex_lock(&c->lock);
	v = c->done;
	c->done = NULL;
	c->dtail = &c->done;
	pthread_mutex_unlock(&c->lock);
	while ((i = v) != NULL) {
		v = i->next;
		done(arg, i->cookie, i->err);
		free(i);
		n++;
	}
	pthread_mutex_lock(&c->lock);
	c->pending -= n;
	pthread_mutex_unlock(&c->lock);
	return n;
}

size_t
local_commit_pending(struct local_commit *c)
{
	size_t n;

	pthread_mutex_lock(&c->lock);
	n = c->pending;
	pthread_mutex_unlock(&c->lock);
	return n;
}

void
local_commit_wait(struct local_commit *c)
{
	pthread_mutex_lock(&c->lock);
	while (c->busy > 0)
		pthread_cond_wait(&c->room, &c->lock);
	pthread_mutex_unlock(&c->lock);
}

void
local_commit_free(struct local_commit *c)
{
	struct item *i;

	if (c == NULL)
		return;
	pthread_mutex_lock(&c->lock);
	c->quit = 1;
	pthread_cond_signal(&c->work);
	pthread_mutex_unlock(&c->lock);
	pthread_join(c->thread, NULL);
	while ((i = c->done) != NULL) {
		c->done = i->next;
		free(i);
	}
	pthread_cond_destroy(&c->room);
	pthread_cond_destroy(&c->work);
	pthread_mutex_destroy(&c->lock);
	free(c);
}
