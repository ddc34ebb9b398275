/*
 * origin_fs: exports, safe path resolution and listings. A listing is a
 * pre-order walk with each folder's children sorted by name; paging skips
 * whole subtrees that sort before "after".
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "m4f.h"
#include "origin_fs.h"
#include "origin_hash.h"

#define WALK_DEPTH_MAX	64

struct walk {
	const struct oexport *ex;
	const char	*after;		/* may be NULL */
	size_t		 limit;
	int		 recursive;
	struct m4f_entry *v;		/* found entries, names malloc'd */
	char		**abs;		/* absolute path of each entry */
	size_t		 n, cap;
	int		 more;		/* more entries than limit */
	dev_t		 dev[WALK_DEPTH_MAX];	/* folders being walked */
	ino_t		 ino[WALK_DEPTH_MAX];
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

/* Is real (a resolved path) the export root or inside it? */
static int
inside(const struct oexport *ex, const char *real)
{
	size_t len = strlen(ex->real);

	if (strcmp(ex->real, "/") == 0)
		return 1;
	return strncmp(real, ex->real, len) == 0 &&
	    (real[len] == '\0' || real[len] == '/');
}

int
ofs_resolve(const struct oexport *ex, const char *rel, char **real,
    struct stat *st, const char **why)
{
	char *full = NULL, *r = NULL;
	int status;

	*real = NULL;
	if (m4f_path_check(rel) == -1)
		return *why = "bad path", 400;
	if (m4f_name_hidden(rel))
		return *why = "not found", 404;
	if (asprintf(&full, "%s/%s", ex->real, rel) < 0)
		return *why = "out of memory", 500;
	if ((r = realpath(full, NULL)) == NULL) {
		status = (errno == ENOENT || errno == ENOTDIR || errno == ELOOP) ?
		    404 : errno == EACCES ? 403 : 500;
		*why = status == 404 ? "not found" : status == 403 ?
		    "forbidden" : "cannot resolve path";
		goto fail;
	}
	if (!inside(ex, r)) {
		status = 403, *why = "symlink leaves the export";
		goto fail;
	}
	if (m4f_name_hidden(r + strlen(ex->real))) {
		status = 404, *why = "not found";
		goto fail;
	}
	if (stat(r, st) == -1) {
		status = errno == ENOENT ? 404 : 500;
		*why = status == 404 ? "not found" : "cannot stat";
		goto fail;
	}
	free(full);
	*real = r;
	return 200;
fail:
	free(full);
	free(r);
	return status;
}

static int
namecmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted, visible, valid names in folder path; NULL on error. */
static char **
read_names(const char *path, size_t *np)
{
	char **v = NULL, **nv;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;

	if ((d = opendir(path)) == NULL)
		return NULL;
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
 * The stat of abs for listing: follows a symlink only when it stays in
 * the export. Returns 1 for a file or folder to list, 0 to skip it.
 */
static int
entry_stat(const struct oexport *ex, const char *abs, struct stat *st)
{
	char *r;
	int ok;

	if (lstat(abs, st) == -1)
		return 0;
	if (S_ISLNK(st->st_mode)) {
		if ((r = realpath(abs, NULL)) == NULL)
			return 0;
		ok = inside(ex, r) && !m4f_name_hidden(r + strlen(ex->real)) &&
		    stat(r, st) == 0;
		free(r);
		if (!ok)
			return 0;
	}
	return S_ISREG(st->st_mode) || S_ISDIR(st->st_mode);
}

/* Appends one entry; 1 when the page is full, 0 to go on, -1 on error. */
static int
walk_add(struct walk *w, const char *rel, const char *abs,
    const struct stat *st)
{
	struct m4f_entry *nv;
	char **na;

	if (w->n == w->limit) {
		w->more = 1;
		return 1;
	}
	if (w->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 256;
		if ((nv = realloc(w->v, w->cap * sizeof(*nv))) == NULL)
			return -1;
		w->v = nv;
		if ((na = realloc(w->abs, w->cap * sizeof(*na))) == NULL)
			return -1;
		w->abs = na;
	}
	memset(&w->v[w->n], 0, sizeof(w->v[w->n]));
	w->v[w->n].name = strdup(rel);
	w->abs[w->n] = strdup(abs);
	if (w->v[w->n].name == NULL || w->abs[w->n] == NULL) {
		free(w->v[w->n].name);
		free(w->abs[w->n]);
		return -1;
	}
	w->v[w->n].type = S_ISDIR(st->st_mode) ? M4F_DIR : M4F_FILE;
	w->v[w->n].size = S_ISREG(st->st_mode) ? (uint64_t)st->st_size : 0;
	w->v[w->n].mtime = st->st_mtim.tv_sec;
	w->n++;
	return 0;
}

/* Should the walk go into folder rel (pre-order, after w->after)? */
static int
walk_descend(const struct walk *w, const char *rel, const struct stat *st)
{
	size_t len = strlen(rel);
	int i;

	if (!w->recursive || w->depth >= WALK_DEPTH_MAX)
		return 0;
	for (i = 0; i < w->depth; i++)
		if (w->dev[i] == st->st_dev && w->ino[i] == st->st_ino)
			return 0;	/* a symlink loop */
	/* Skip only subtrees that sort wholly before after. */
	return w->after == NULL || ofs_precmp(rel, w->after) >= 0 ||
	    (strncmp(w->after, rel, len) == 0 && w->after[len] == '/');
}

static int walk_dir(struct walk *, const char *abs, const char *rel);

/* One child of a folder: list it, then maybe walk it. Same returns. */
static int
walk_child(struct walk *w, const char *abs, const char *rel)
{
	struct stat st;
	int rc;

	if (!entry_stat(w->ex, abs, &st))
		return 0;
	if (w->after == NULL || ofs_precmp(rel, w->after) > 0)
		if ((rc = walk_add(w, rel, abs, &st)) != 0)
			return rc;
	if (!S_ISDIR(st.st_mode) || !walk_descend(w, rel, &st))
		return 0;
	w->dev[w->depth] = st.st_dev;
	w->ino[w->depth] = st.st_ino;
	w->depth++;
	rc = walk_dir(w, abs, rel);
	w->depth--;
	return rc;
}

static int
walk_dir(struct walk *w, const char *abs, const char *rel)
{
	char **names, *cabs = NULL, *crel = NULL;
	size_t n, i;
	int rc = 0;

	if ((names = read_names(abs, &n)) == NULL)
		return *rel == '\0' ? -1 : 0;	/* a vanished subfolder */
	for (i = 0; i < n && rc == 0; i++) {
		if (asprintf(&cabs, "%s/%s", abs, names[i]) < 0 ||
		    asprintf(&crel, "%s%s%s", rel, *rel ? "/" : "",
		    names[i]) < 0) {
			cabs = crel = NULL;
			rc = -1;
			break;
		}
		rc = walk_child(w, cabs, crel);
		free(cabs);
		free(crel);
		cabs = crel = NULL;
	}
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
		free(w->abs[i]);
	}
	free(w->v);
	free(w->abs);
}

/* Fills in the sha256 of every file entry; 0 or -1. */
static int
walk_hash(struct walk *w, struct ohash *h)
{
	struct stat st;
	size_t i;

	for (i = 0; i < w->n; i++) {
		if (w->v[i].type != M4F_FILE)
			continue;
		if (stat(w->abs[i], &st) == -1 ||
		    ohash_get(h, w->abs[i], &st, w->v[i].sha256) == -1) {
			log_warn("hash %s", w->abs[i]);
			return -1;
		}
		w->v[i].size = (uint64_t)st.st_size;
		w->v[i].mtime = st.st_mtim.tv_sec;
	}
	return 0;
}

int
ofs_list(const struct oexport *ex, struct ohash *h, const char *urlpath,
    const char *rel, int recursive, const char *after, size_t limit,
    char **json, const char **why)
{
	struct walk w = { .ex = ex, .after = after, .limit = limit,
	    .recursive = recursive };
	struct m4f_listing l = { 0 };
	struct stat st;
	char *real = NULL;
	int status;

	*json = NULL;
	if ((status = ofs_resolve(ex, rel, &real, &st, why)) != 200)
		return status;
	if (!S_ISDIR(st.st_mode)) {
		free(real);
		return *why = "not a folder", 400;
	}
	w.dev[0] = st.st_dev;
	w.ino[0] = st.st_ino;
	w.depth = 1;
	status = 500, *why = "cannot list";
	if (walk_dir(&w, real, "") == -1 || walk_hash(&w, h) == -1)
		goto out;
	l.path = (char *)urlpath;
	l.entries = w.v;
	l.n = w.n;
	l.next = w.more && w.n > 0 ? w.v[w.n - 1].name : NULL;
	if ((*json = m4f_listing_encode(&l)) != NULL)
		status = 200;
out:
	walk_free(&w);
	free(real);
	return status;
}
