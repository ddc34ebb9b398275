/*
 * origin_fs: exports, confined opens and listings. Every path is opened
 * with openat2(RESOLVE_BENEATH) from the export's descriptor, so a
 * symbolic link swapped in anywhere on the path cannot lead outside: the
 * kernel checks each step, there is no resolve-then-open window. A
 * listing is a pre-order walk with each folder's children sorted by
 * name, each folder opened the same way; paging skips whole subtrees
 * that sort before "after".
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/openat2.h>

#include "log.h"
#include "m4f.h"
#include "origin_fs.h"
#include "origin_hash.h"

/*
 * A listing being built. Its depth, and so its recursion, is bounded by
 * M4F_DEPTH_MAX: entries deeper than that beneath the export are left
 * out (a client refuses such names).
 */
struct walk {
	const struct oexport *ex;
	const char	*base;		/* the listed folder beneath the export */
	size_t		 base_depth;	/* its components */
	const char	*after;		/* may be NULL */
	size_t		 limit;
	int		 recursive;
	struct m4f_entry *v;		/* found entries, names malloc'd */
	char		**xrel;		/* each entry's path beneath the export */
	struct timespec	*mtim;		/* each entry's mtime, for the cache */
	size_t		 n, cap;
	int		 more;		/* more entries than limit */
	size_t		 too_deep;	/* entries left out for their depth */
	dev_t		 dev[M4F_DEPTH_MAX + 1];	/* folders being walked */
	ino_t		 ino[M4F_DEPTH_MAX + 1];
	int		 depth;
};

const struct oexport *
ofs_export(const struct oexport *ex, size_t n, const char *path,
    const char **rel)
{
	const struct oexport *best = NULL;
	size_t i, len, blen = 0;

	for (i = 0; i < n; i++) {
		len = strlen(ex[i].url);
		if (strncmp(path, ex[i].url, len) != 0 ||
		    (path[len] != '\0' && path[len] != '/') || len < blen)
			continue;
		best = &ex[i];
		blen = len;
	}
	if (best != NULL)
		*rel = path + blen + (path[blen] == '/');
	return best;
}

int
ofs_precmp(const char *a, const char *b)
{
	unsigned char ca, cb;

	for (;; a++, b++) {
		ca = *a == '/' ? 1 : (unsigned char)*a;
		cb = *b == '/' ? 1 : (unsigned char)*b;
		if (ca != cb || ca == 0)
			return (int)ca - (int)cb;
	}
}

int
ofs_export_open(struct oexport *ex)
{
	struct stat st;
	const char *why;
	int fd;

	ex->fd = open(ex->real, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (ex->fd == -1) {
		log_warn("%s", ex->real);
		return -1;
	}
	/* Every request opens beneath this folder: refuse to start without. */
	if (ofs_open(ex, "", &fd, &st, &why) != 200) {
		if (errno == ENOSYS)
			log_warnx("%s: this kernel has no openat2 (Linux 5.6 "
			    "or later is needed to confine requests to the "
			    "export without a race)", ex->real);
		else
			log_warn("%s: cannot open beneath the export",
			    ex->real);
		return -1;
	}
	close(fd);
	return 0;
}

/*
 * openat2 of rel beneath the export's folder: never outside it, never
 * through a magic link (/proc/PID/fd/N), never blocking (O_NONBLOCK: a
 * FIFO without a writer opens at once). Tries without symbolic links
 * first, the common case, and sets *followed when one was needed. The
 * descriptor, or -1 with errno (EXDEV: a link leaves the export).
 */
static int
open_beneath(const struct oexport *ex, const char *rel, int flags,
    int *followed)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS |
		    RESOLVE_NO_SYMLINKS,
	};
	int fd, tries;

	if (!(flags & O_PATH))
		how.flags |= O_NONBLOCK | O_NOCTTY;
	*followed = 0;
	/* EAGAIN: a rename raced the lookup; the kernel asks to try again. */
	for (tries = 0; tries < 8; tries++) {
		fd = (int)syscall(SYS_openat2, ex->fd, *rel ? rel : ".", &how,
		    sizeof(how));
		if (fd >= 0)
			return fd;
		if (errno == ELOOP && (how.resolve & RESOLVE_NO_SYMLINKS)) {
			how.resolve &= ~(uint64_t)RESOLVE_NO_SYMLINKS;
			*followed = 1;
		} else if (errno != EAGAIN)
			break;
	}
	return -1;
}

/*
 * Does fd, reached through a symbolic link, name a hidden file of the
 * export (a link to a file still being written)? Asks the kernel for the
 * path it opened; 0 when it cannot tell (the open was confined anyway).
 */
static int
target_hidden(const struct oexport *ex, int fd)
{
	char proc[32], buf[PATH_MAX];
	size_t len = strcmp(ex->real, "/") == 0 ? 0 : strlen(ex->real);
	ssize_t n;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if ((n = readlink(proc, buf, sizeof(buf) - 1)) <= 0)
		return 0;
	buf[n] = '\0';
	if (strncmp(buf, ex->real, len) != 0 || (buf[len] != '/' &&
	    buf[len] != '\0'))
		return 0;
	return m4f_name_hidden(buf + len);
}

/* An errno of open_beneath as a status and reason. */
static int
open_status(int err, const char **why)
{
	switch (err) {
	case ENOENT:
	case ENOTDIR:
	case ELOOP:
		return *why = "not found", 404;
	case EXDEV:
		return *why = "symlink leaves the export", 403;
	case EACCES:
	case EPERM:
		return *why = "forbidden", 403;
	case ENXIO:		/* a socket */
	case ENODEV:
		return *why = "not a regular file", 400;
	default:
		return *why = "cannot open", 500;
	}
}

int
ofs_open(const struct oexport *ex, const char *rel, int *fd,
    struct stat *st, const char **why)
{
	int followed, status;

	*fd = -1;
	if (m4f_path_check(rel) == -1)
		return *why = "bad path", 400;
	if (m4f_name_hidden(rel))
		return *why = "not found", 404;
	if ((*fd = open_beneath(ex, rel, O_RDONLY, &followed)) == -1)
		return open_status(errno, why);
	if (fstat(*fd, st) == -1)
		status = 500, *why = "cannot stat";
	else if (!S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode))
		status = 400, *why = "not a regular file";
	else if (followed && target_hidden(ex, *fd))
		status = 404, *why = "not found";
	else
		return 200;
	close(*fd);
	*fd = -1;
	return status;
}

static int
namecmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The sorted, visible, valid names in the folder open as dfd, which it
 * takes (closed on return); NULL on error.
 */
static char **
read_names(int dfd, size_t *np)
{
	char **v = NULL, **nv;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;

	if ((d = fdopendir(dfd)) == NULL) {
		close(dfd);
		return NULL;
	}
	while ((de = readdir(d)) != NULL) {
		if (m4f_name_hidden(de->d_name) ||
		    m4f_name_check(de->d_name, strlen(de->d_name)) == -1)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			if ((nv = realloc(v, cap * sizeof(*v))) == NULL)
				goto fail;
			v = nv;
		}
		if ((v[n] = strdup(de->d_name)) == NULL)
			goto fail;
		n++;
	}
	closedir(d);
	qsort(v, n, sizeof(*v), namecmp);
	*np = n;
	return v ? v : calloc(1, sizeof(*v));
fail:
	closedir(d);
	while (n > 0)
		free(v[--n]);
	free(v);
	errno = ENOMEM;
	return NULL;
}

/*
 * May a link's text be listed? A relative path: components joined by
 * single '/', each ".." or a valid name, at most M4F_PATH_MAX bytes. An
 * absolute link is never listed (nor followed: RESOLVE_BENEATH).
 */
static int
link_text_ok(const char *t)
{
	const char *p = t, *end;
	size_t len = strlen(t);

	if (len == 0 || len > M4F_PATH_MAX || *t == '/')
		return 0;
	for (;;) {
		end = strchrnul(p, '/');
		if (!((end - p == 2 && p[0] == '.' && p[1] == '.') ||
		    m4f_name_check(p, (size_t)(end - p)) == 0))
			return 0;
		if (*end == '\0')
			return 1;
		p = end + 1;
	}
}

int
ofs_link(const struct oexport *ex, const char *rel, struct stat *st,
    char **target)
{
	char buf[M4F_PATH_MAX + 2];
	struct stat to;
	ssize_t n;
	int lfd, fd, followed, ok;

	*target = NULL;
	if ((lfd = open_beneath(ex, rel, O_PATH | O_NOFOLLOW, &followed)) == -1)
		return 0;
	ok = fstat(lfd, st) == 0 && S_ISLNK(st->st_mode) &&
	    (n = readlinkat(lfd, "", buf, sizeof(buf) - 1)) > 0;
	close(lfd);
	if (!ok)
		return 0;
	buf[n] = '\0';
	if (!link_text_ok(buf))
		return 0;
	/* It must lead to a file or folder inside the export, not hidden. */
	if ((fd = open_beneath(ex, rel, O_PATH, &followed)) == -1)
		return 0;
	ok = fstat(fd, &to) == 0 && (S_ISREG(to.st_mode) ||
	    S_ISDIR(to.st_mode)) && !target_hidden(ex, fd);
	close(fd);
	if (!ok || (*target = strdup(buf)) == NULL)
		return 0;
	return 1;
}

/*
 * The stat of name in the folder dfd (xrel: the same beneath the export)
 * for listing; a symbolic link is listed as a link (ofs_link) with its
 * own stat and its text in *target. Returns 1 for an entry to list, 0 to
 * skip it (FIFOs, sockets, devices, links that lead out).
 */
static int
entry_stat(const struct oexport *ex, int dfd, const char *name,
    const char *xrel, struct stat *st, char **target)
{
	*target = NULL;
	if (fstatat(dfd, name, st, AT_SYMLINK_NOFOLLOW) == -1)
		return 0;
	if (S_ISLNK(st->st_mode))
		return ofs_link(ex, xrel, st, target);
	return S_ISREG(st->st_mode) || S_ISDIR(st->st_mode);
}

/*
 * Appends one entry (target: a link's text, taken, or NULL); 1 when the
 * page is full, 0 to go on, -1 on error.
 */
static int
walk_add(struct walk *w, const char *rel, const char *xrel,
    const struct stat *st, char *target)
{
	struct m4f_entry *nv;
	struct timespec *nt;
	char **na;

	if (w->n == w->limit) {
		free(target);
		w->more = 1;
		return 1;
	}
	if (w->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 256;
		if ((nv = realloc(w->v, w->cap * sizeof(*nv))) == NULL)
			goto fail;
		w->v = nv;
		if ((na = realloc(w->xrel, w->cap * sizeof(*na))) == NULL)
			goto fail;
		w->xrel = na;
		if ((nt = realloc(w->mtim, w->cap * sizeof(*nt))) == NULL)
			goto fail;
		w->mtim = nt;
	}
	memset(&w->v[w->n], 0, sizeof(w->v[w->n]));
	w->v[w->n].name = strdup(rel);
	w->xrel[w->n] = strdup(xrel);
	if (w->v[w->n].name == NULL || w->xrel[w->n] == NULL) {
		free(w->v[w->n].name);
		free(w->xrel[w->n]);
		goto fail;
	}
	w->v[w->n].type = S_ISDIR(st->st_mode) ? M4F_DIR :
	    S_ISLNK(st->st_mode) ? M4F_LINK : M4F_FILE;
	w->v[w->n].size = S_ISREG(st->st_mode) ? (uint64_t)st->st_size : 0;
	w->v[w->n].mtime = st->st_mtim.tv_sec;
	w->v[w->n].target = target;
	w->mtim[w->n] = st->st_mtim;
	w->n++;
	return 0;
fail:
	free(target);
	return -1;
}

/* Should the walk go into folder rel (pre-order, after w->after)? */
static int
walk_descend(const struct walk *w, const char *rel, const struct stat *st)
{
	size_t len = strlen(rel);
	int i;

	if (!w->recursive)
		return 0;
	for (i = 0; i < w->depth; i++)
		if (w->dev[i] == st->st_dev && w->ino[i] == st->st_ino)
			return 0;	/* a loop: a bind mount, say */
	/* Skip only subtrees that sort wholly before after. */
	return w->after == NULL || ofs_precmp(rel, w->after) >= 0 ||
	    (strncmp(w->after, rel, len) == 0 && w->after[len] == '/');
}

static int walk_dir(struct walk *, int dfd, const char *rel);

/*
 * One child name of the folder dfd: list it, then maybe walk it. rel is
 * its path in the listing, xrel beneath the export. Same returns.
 */
static int
walk_child(struct walk *w, int dfd, const char *name, const char *rel,
    const char *xrel)
{
	struct stat st;
	char *target;
	int rc, fd, followed;

	/* Deeper than a client accepts: left out, said once per listing. */
	if (w->base_depth + (size_t)w->depth > M4F_DEPTH_MAX) {
		w->too_deep++;
		return 0;
	}
	if (!entry_stat(w->ex, dfd, name, xrel, &st, &target))
		return 0;
	if (w->after == NULL || ofs_precmp(rel, w->after) > 0) {
		if ((rc = walk_add(w, rel, xrel, &st, target)) != 0)
			return rc;
	} else
		free(target);
	if (!S_ISDIR(st.st_mode) || !walk_descend(w, rel, &st))
		return 0;
	if ((fd = open_beneath(w->ex, xrel, O_RDONLY | O_DIRECTORY,
	    &followed)) == -1)
		return 0;	/* vanished, or became a link out */
	w->dev[w->depth] = st.st_dev;
	w->ino[w->depth] = st.st_ino;
	w->depth++;
	rc = walk_dir(w, fd, rel);
	w->depth--;
	return rc;
}

/* The folder open as dfd (taken), rel in the listing. 0, 1 full, -1. */
static int
walk_dir(struct walk *w, int dfd, const char *rel)
{
	char **names, *crel = NULL, *cx = NULL;
	size_t n, i;
	int rc = 0, dup_fd;

	/* read_names takes a descriptor; the walk keeps one for fstatat. */
	if ((dup_fd = dup(dfd)) == -1) {
		close(dfd);
		return -1;
	}
	if ((names = read_names(dup_fd, &n)) == NULL) {
		close(dfd);
		return *rel == '\0' ? -1 : 0;	/* a vanished subfolder */
	}
	for (i = 0; i < n && rc == 0; i++) {
		if (asprintf(&crel, "%s%s%s", rel, *rel ? "/" : "",
		    names[i]) < 0 || asprintf(&cx, "%s%s%s", w->base,
		    *w->base ? "/" : "", crel) < 0) {
			free(crel);
			crel = cx = NULL;
			rc = -1;
			break;
		}
		rc = walk_child(w, dfd, names[i], crel, cx);
		free(crel);
		free(cx);
		crel = cx = NULL;
	}
	close(dfd);
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

static void
walk_free(struct walk *w)
{
	size_t i;

	for (i = 0; i < w->n; i++) {
		free(w->v[i].name);
		free(w->v[i].target);
		free(w->xrel[i]);
	}
	free(w->v);
	free(w->xrel);
	free(w->mtim);
}

/*
 * Fills in the sha256 of every file entry whose hash the cache knows
 * (at the size and mtime just listed); the others stay "" (null). Never
 * reads a file: a listing costs time in its entries, not their bytes.
 */
static int
walk_known(struct walk *w, struct ohash *h)
{
	struct stat st;
	char *abs;
	size_t i;

	for (i = 0; i < w->n; i++) {
		if (w->v[i].type != M4F_FILE)
			continue;
		if (asprintf(&abs, "%s/%s", w->ex->real, w->xrel[i]) < 0)
			return -1;
		memset(&st, 0, sizeof(st));
		st.st_size = (off_t)w->v[i].size;
		st.st_mtim = w->mtim[i];
		(void)ohash_lookup(h, abs, &st, w->v[i].sha256);
		free(abs);
	}
	return 0;
}

/* How many components rel has ("" has none). */
static size_t
path_depth(const char *rel)
{
	size_t n = *rel != '\0';

	for (; *rel != '\0'; rel++)
		n += *rel == '/';
	return n;
}

int
ofs_list(const struct oexport *ex, struct ohash *h, const char *urlpath,
    const char *rel, int recursive, const char *after, size_t limit,
    char **json, const char **why)
{
	struct walk w = { .ex = ex, .after = after, .limit = limit,
	    .recursive = recursive, .base = rel };
	struct m4f_listing l = { 0 };
	struct stat st;
	int status, fd;

	*json = NULL;
	if ((status = ofs_open(ex, rel, &fd, &st, why)) != 200)
		return status;
	if (!S_ISDIR(st.st_mode)) {
		close(fd);
		return *why = "not a folder", 400;
	}
	w.base_depth = path_depth(rel);
	w.dev[0] = st.st_dev;
	w.ino[0] = st.st_ino;
	w.depth = 1;
	status = 500, *why = "cannot list";
	if (walk_dir(&w, fd, "") == -1 || walk_known(&w, h) == -1)
		goto out;
	if (w.too_deep > 0)
		log_warnx("listing of %s: %zu entries deeper than %d levels "
		    "left out", urlpath, w.too_deep, M4F_DEPTH_MAX);
	l.path = (char *)urlpath;
	l.entries = w.v;
	l.n = w.n;
	l.next = w.more && w.n > 0 ? w.v[w.n - 1].name : NULL;
	if ((*json = m4f_listing_encode(&l)) != NULL)
		status = 200;
out:
	walk_free(&w);
	return status;
}
