#include <sys/file.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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

int
local_land(int dirfd, int fd, const char *tmp, const char *rel,
    int64_t mtime, char **syncdir)
{
	struct timespec ts[2] = { { .tv_sec = mtime }, { .tv_sec = mtime } };
	const char *slash = strrchr(rel, '/');
	char *dir;
	int rc;

	if (futimens(fd, ts) == -1 || fsync(fd) == -1) {
		rc = errno;
		close(fd);
		return errno = rc, -1;
	}
	close(fd);
	/* Never over a file that appeared meanwhile (the recorder's). */
	if (renameat2(dirfd, tmp, dirfd, rel, RENAME_NOREPLACE) == -1)
		return -1;
	/*
	 * The folder is synced once its files are done (newest first, they
	 * come folder by folder) rather than after each rename: the file's
	 * bytes are durable already, and a rename lost to a crash only
	 * means one more copy on the next run.
	 */
	if ((dir = strndup(rel, slash != NULL ? (size_t)(slash - rel) : 0)) ==
	    NULL)
		return -1;
	if (*syncdir != NULL && strcmp(*syncdir, dir) == 0) {
		free(dir);
		return 0;
	}
	rc = *syncdir != NULL ? local_sync_dir(dirfd, *syncdir) : 0;
	free(*syncdir);
	*syncdir = dir;
	return rc;
}
