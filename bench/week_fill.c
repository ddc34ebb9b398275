/*
 * week_fill: fills a dvrfs store with a whole DVR tree through the store
 * API, as a replicating mount would have left it, without the network.
 *
 *     week_fill [-n] [-j threads] store dir
 *
 * dir is the primary's exported folder (STREAM/YYYY/MM/DD/HH/MM/SS.ts).
 * Every folder above the hours gets a complete listing of its folders;
 * every hour folder a complete recursive listing of its segments (as the
 * mount lists hours), with the size, mtime and SHA-256 of the real files,
 * which m4f-origin reports too; then each segment's bytes are installed
 * by store_put_verified() from -j (16) threads, so installs are group
 * commits as the crawler's are. -n skips fsync and fdatasync while
 * filling (this driver's own calls and the store's) and ends with one
 * sync(2): the store's layout and index are the same, only the
 * durability of each step is not waited for.
 *
 * Prints "files N", "bytes N" and "seconds S". Exits 0 when every
 * segment is installed, 1 otherwise.
 */
#include <sys/stat.h>
#include <sys/syscall.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "m4f.h"
#include "store.h"

#define SEG_MAX		(1 << 20)	/* bytes of one segment at most */
#define THREADS_MAX	64
#define HOUR_DEPTH	5		/* STREAM/YYYY/MM/DD/HH */

struct seg {
	char		 name[16];	/* MM/SS.ts */
	char		 sha[65];
	uint8_t		 digest[32];
	unsigned char	*data;
	size_t		 size;
	int64_t		 mtime;
	uint64_t	 id;
};

struct fill {
	struct store	*st;
	const char	*top;
	int		 threads;
	struct seg	*segs;		/* one hour folder's */
	size_t		 nsegs, asegs;
	atomic_size_t	 next;		/* the next of segs to install */
	atomic_int	 failed;
	uint64_t	 files, bytes;
};

static int nosync;

/* -n: the store's and SQLite's syncs return at once. */
int
fsync(int fd)
{
	return nosync ? 0 : (int)syscall(SYS_fsync, fd);
}

int
fdatasync(int fd)
{
	return nosync ? 0 : (int)syscall(SYS_fdatasync, fd);
}

/* "a/b" (or b when a is "") into buf of PATH_MAX bytes; 0, or -1 when long. */
static int
join(char *buf, const char *a, const char *b)
{
	int n = snprintf(buf, PATH_MAX, "%s%s%s", a, *a ? "/" : "", b);

	if (n < 0 || n >= PATH_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

static void
usage(void)
{
	fprintf(stderr, "usage: week_fill [-n] [-j threads] store dir\n");
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The visible names in folder path (no "." files: dvr-fake's temporary
 * files start with one), sorted, as a malloc'd array of malloc'd strings
 * in *out. Returns the count, or -1.
 */
static ssize_t
names(const char *path, char ***out)
{
	struct dirent *d;
	char **v = NULL, **nv;
	size_t n = 0, a = 0;
	DIR *dir;

	if ((dir = opendir(path)) == NULL)
		return -1;
	while ((d = readdir(dir)) != NULL) {
		if (d->d_name[0] == '.')
			continue;
		if (n == a) {
			a = a ? 2 * a : 64;
			if ((nv = realloc(v, a * sizeof(*v))) == NULL)
				goto fail;
			v = nv;
		}
		if ((v[n] = strdup(d->d_name)) == NULL)
			goto fail;
		n++;
	}
	closedir(dir);
	qsort(v, n, sizeof(*v), by_name);
	*out = v;
	return (ssize_t)n;
fail:
	while (n > 0)
		free(v[--n]);
	free(v);
	closedir(dir);
	return -1;
}

static void
names_free(char **v, ssize_t n)
{
	while (n > 0)
		free(v[--n]);
	free(v);
}

/* Reads segment path into s (data malloc'd) and hashes it. 0 or -1. */
static int
seg_read(const char *path, struct seg *s)
{
	unsigned int mdlen;
	struct stat sb;
	ssize_t r;
	int fd;

	if ((fd = open(path, O_RDONLY)) == -1)
		return -1;
	if (fstat(fd, &sb) == -1 || sb.st_size > SEG_MAX ||
	    (s->data = malloc(sb.st_size > 0 ? (size_t)sb.st_size : 1)) ==
	    NULL)
		goto fail;
	s->size = (size_t)sb.st_size;
	s->mtime = sb.st_mtim.tv_sec;
	if ((r = pread(fd, s->data, s->size, 0)) != (ssize_t)s->size) {
		if (r >= 0)
			errno = EIO;
		goto fail;
	}
	close(fd);
	if (EVP_Digest(s->data, s->size, s->digest, &mdlen, EVP_sha256(),
	    NULL) != 1) {
		errno = EIO;
		return -1;
	}
	m4f_hex_encode(s->digest, 32, s->sha);
	return 0;
fail:
	close(fd);
	return -1;
}

static void *
installer(void *arg)
{
	struct fill *f = arg;
	struct seg *s;
	size_t i;

	while ((i = atomic_fetch_add(&f->next, 1)) < f->nsegs) {
		s = &f->segs[i];
		if (store_put_verified(f->st, s->id, s->data, s->size,
		    s->digest, STORE_COLD) == -1) {
			fprintf(stderr, "week_fill: install %s: %s\n",
			    s->name, strerror(errno));
			atomic_store(&f->failed, 1);
		}
	}
	return NULL;
}

/* Adds the segments of minute folder rel/min of the hour to f->segs. */
static int
hour_minute(struct fill *f, const char *path, const char *min)
{
	char p[PATH_MAX], **v;
	ssize_t n, i;
	struct seg *s;

	if (join(p, path, min) == -1 || (n = names(p, &v)) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		if (f->nsegs == f->asegs) {
			size_t a = f->asegs ? 2 * f->asegs : 2048;
			struct seg *ns = realloc(f->segs, a * sizeof(*ns));
			if (ns == NULL)
				goto fail;
			f->segs = ns;
			f->asegs = a;
		}
		s = &f->segs[f->nsegs];
		memset(s, 0, sizeof(*s));
		if (snprintf(s->name, sizeof(s->name), "%s/%s", min, v[i]) >=
		    (int)sizeof(s->name)) {
			fprintf(stderr, "week_fill: %s/%s: not a segment\n",
			    p, v[i]);
			errno = EINVAL;
			goto fail;
		}
		if (join(p, path, s->name) == -1 || seg_read(p, s) == -1) {
			fprintf(stderr, "week_fill: %s: %s\n", p,
			    strerror(errno));
			goto fail;
		}
		f->nsegs++;
	}
	names_free(v, n);
	return 0;
fail:
	names_free(v, n);
	return -1;
}

/*
 * One hour folder rel: a complete recursive listing of its segments, then
 * every segment installed by f->threads threads. Returns 0 or -1.
 */
static int
fill_hour(struct fill *f, const char *rel)
{
	pthread_t th[THREADS_MAX];
	struct store_remote *r = NULL;
	uint64_t *ids = NULL;
	char path[PATH_MAX], **v;
	ssize_t n, i;
	size_t k;
	int t, rc = -1;

	if (join(path, f->top, rel) == -1 || (n = names(path, &v)) == -1)
		return -1;
	f->nsegs = 0;
	for (i = 0; i < n; i++)
		if (hour_minute(f, path, v[i]) == -1)
			goto out;
	if ((r = calloc(f->nsegs + 1, sizeof(*r))) == NULL ||
	    (ids = calloc(f->nsegs + 1, sizeof(*ids))) == NULL)
		goto out;
	for (k = 0; k < f->nsegs; k++)
		r[k] = (struct store_remote){ .name = f->segs[k].name,
		    .type = STORE_FILE, .size = f->segs[k].size,
		    .mtime = f->segs[k].mtime, .sha256 = f->segs[k].sha };
	if (store_apply_listing(f->st, rel, r, f->nsegs, 1, 1, time(NULL),
	    ids) == -1) {
		fprintf(stderr, "week_fill: listing %s: %s\n", rel,
		    strerror(errno));
		goto out;
	}
	for (k = 0; k < f->nsegs; k++)
		f->segs[k].id = ids[k];
	atomic_store(&f->next, 0);
	for (t = 0; t < f->threads; t++)
		if (pthread_create(&th[t], NULL, installer, f) != 0)
			break;
	while (t > 0)
		pthread_join(th[--t], NULL);
	if (atomic_load(&f->failed) || atomic_load(&f->next) < f->nsegs)
		goto out;
	for (k = 0; k < f->nsegs; k++) {
		f->files++;
		f->bytes += f->segs[k].size;
	}
	rc = 0;
out:
	for (k = 0; k < f->nsegs; k++)
		free(f->segs[k].data);
	f->nsegs = 0;
	free(r);
	free(ids);
	names_free(v, n);
	return rc;
}

/*
 * Folder rel ("" for the top) at depth levels below the top: a complete
 * listing of its folders, then each of them. Returns 0 or -1.
 */
static int
fill_dir(struct fill *f, const char *rel, int depth)
{
	struct store_remote *r;
	char path[PATH_MAX], sub[PATH_MAX], **v;
	struct stat sb;
	ssize_t n, i;
	int rc = -1;

	if (depth == HOUR_DEPTH)
		return fill_hour(f, rel);
	if (join(path, f->top, rel) == -1 || (n = names(path, &v)) == -1) {
		fprintf(stderr, "week_fill: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if ((r = calloc((size_t)n + 1, sizeof(*r))) == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		if (join(sub, path, v[i]) == -1 || stat(sub, &sb) == -1 ||
		    !S_ISDIR(sb.st_mode)) {
			fprintf(stderr, "week_fill: %s: not a DVR folder\n",
			    sub);
			goto out;
		}
		r[i] = (struct store_remote){ .name = v[i], .type = STORE_DIR,
		    .mtime = sb.st_mtim.tv_sec };
	}
	if (store_apply_listing(f->st, rel, r, (size_t)n, 0, 1, time(NULL),
	    NULL) == -1) {
		fprintf(stderr, "week_fill: listing '%s': %s\n", rel,
		    strerror(errno));
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (join(sub, rel, v[i]) == -1 ||
		    fill_dir(f, sub, depth + 1) == -1)
			goto out;
	}
	rc = 0;
out:
	free(r);
	names_free(v, n);
	return rc;
}

int
main(int argc, char **argv)
{
	struct fill f = { .threads = 16 };
	double t0;
	char *end;
	long v;
	int c, rc = 1;

	while ((c = getopt(argc, argv, "j:n")) != -1) {
		switch (c) {
		case 'j':
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || v < 1 ||
			    v > THREADS_MAX) {
				fprintf(stderr, "week_fill: -j: 1 to %d\n",
				    THREADS_MAX);
				return 1;
			}
			f.threads = (int)v;
			break;
		case 'n':
			nosync = 1;
			break;
		default:
			usage();
			return 1;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 2) {
		usage();
		return 1;
	}
	f.top = argv[1];
	t0 = now_s();
	if ((f.st = store_open(argv[0], NULL)) == NULL) {
		fprintf(stderr, "week_fill: %s: %s\n", argv[0],
		    strerror(errno));
		return 1;
	}
	if (fill_dir(&f, "", 0) == 0 && store_sync(f.st) == 0)
		rc = 0;
	store_close(f.st);
	if (nosync)
		sync();
	free(f.segs);
	printf("files %llu\nbytes %llu\nseconds %.1f\n",
	    (unsigned long long)f.files, (unsigned long long)f.bytes,
	    now_s() - t0);
	return rc;
}
