/*
 * origin_hash: SHA-256 cache in SQLite. Rows: (path, size, mtime_ns,
 * sha256). A look-up only reads the table; whoever reads a file's bytes
 * anyway hashes them (ohash_range, ohash_file) and stores the row,
 * replacing whatever the path had before.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include "log.h"
#include "m4f.h"
#include "origin_hash.h"

/* Bytes read at a time: a thousand requests hashing hold 128 MiB. */
#define CHUNK	(128 * 1024)

struct ohash {
	pthread_mutex_t	 lock;
	sqlite3		*db;		/* under lock */
	sqlite3_stmt	*get;		/* under lock */
	sqlite3_stmt	*put;		/* under lock */
	_Atomic uint64_t hits;
	_Atomic uint64_t misses;
	_Atomic uint64_t bytes;		/* read to hash */
	_Atomic int64_t	 pending;
};

static const char schema[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    "CREATE TABLE IF NOT EXISTS hashes ("
    " path TEXT PRIMARY KEY, size INTEGER NOT NULL,"
    " mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL);";

/* mkdir -p of the folder that holds path. */
static int
mkparent(const char *path)
{
	char buf[PATH_MAX], *p;

	if (strlen(path) >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(buf, path);
	if ((p = strrchr(buf, '/')) == NULL || p == buf)
		return 0;
	*p = '\0';
	for (p = buf + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) == -1 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, 0755) == -1 && errno != EEXIST)
		return -1;
	return 0;
}

struct ohash *
ohash_open(const char *dbpath)
{
	struct ohash *h;

	if (mkparent(dbpath) == -1) {
		log_warn("%s", dbpath);
		return NULL;
	}
	if ((h = calloc(1, sizeof(*h))) == NULL)
		return NULL;
	pthread_mutex_init(&h->lock, NULL);
	if (sqlite3_open_v2(dbpath, &h->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
	    sqlite3_busy_timeout(h->db, 5000) != SQLITE_OK ||
	    sqlite3_exec(h->db, schema, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(h->db, "SELECT sha256 FROM hashes WHERE path=?1"
	    " AND size=?2 AND mtime_ns=?3", -1, &h->get, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(h->db, "INSERT OR REPLACE INTO hashes"
	    " (path, size, mtime_ns, sha256) VALUES (?1, ?2, ?3, ?4)", -1,
	    &h->put, NULL) != SQLITE_OK) {
		log_warnx("%s: %s", dbpath, h->db ? sqlite3_errmsg(h->db) :
		    "cannot open");
		ohash_close(h);
		errno = EIO;
		return NULL;
	}
	return h;
}

void
ohash_close(struct ohash *h)
{
	if (h == NULL)
		return;
	sqlite3_finalize(h->get);
	sqlite3_finalize(h->put);
	sqlite3_close(h->db);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

static int64_t
mtime_ns(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

/* Looks the row up; 1 found (hex filled), 0 not found, -1 error. */
static int
cache_get(struct ohash *h, const char *path, const struct stat *st,
    char hex[65])
{
	const unsigned char *s;
	int rc, found = 0;

	pthread_mutex_lock(&h->lock);
	sqlite3_bind_text(h->get, 1, path, -1, SQLITE_STATIC);
	sqlite3_bind_int64(h->get, 2, (sqlite3_int64)st->st_size);
	sqlite3_bind_int64(h->get, 3, mtime_ns(st));
	rc = sqlite3_step(h->get);
	if (rc == SQLITE_ROW) {
		s = sqlite3_column_text(h->get, 0);
		if (s != NULL && strlen((const char *)s) == 64) {
			memcpy(hex, s, 65);
			found = 1;
		}
	} else if (rc != SQLITE_DONE) {
		log_warnx("hash cache: %s", sqlite3_errmsg(h->db));
		found = -1;
	}
	sqlite3_reset(h->get);
	sqlite3_clear_bindings(h->get);
	pthread_mutex_unlock(&h->lock);
	return found;
}

void
ohash_put(struct ohash *h, const char *path, const struct stat *st,
    const char hex[65])
{
	pthread_mutex_lock(&h->lock);
	sqlite3_bind_text(h->put, 1, path, -1, SQLITE_STATIC);
	sqlite3_bind_int64(h->put, 2, (sqlite3_int64)st->st_size);
	sqlite3_bind_int64(h->put, 3, mtime_ns(st));
	sqlite3_bind_text(h->put, 4, hex, 64, SQLITE_STATIC);
	if (sqlite3_step(h->put) != SQLITE_DONE)
		log_warnx("hash cache: %s", sqlite3_errmsg(h->db));
	sqlite3_reset(h->put);
	sqlite3_clear_bindings(h->put);
	pthread_mutex_unlock(&h->lock);
}

int
ohash_lookup(struct ohash *h, const char *path, const struct stat *st,
    char hex[65])
{
	if (cache_get(h, path, st, hex) == 1) {
		atomic_fetch_add(&h->hits, 1);
		return 1;
	}
	atomic_fetch_add(&h->misses, 1);
	return 0;
}

/* Has the file open as fd kept st's size and mtime? */
static int
same_file(int fd, const struct stat *st)
{
	struct stat now;

	return fstat(fd, &now) == 0 && now.st_size == st->st_size &&
	    mtime_ns(&now) == mtime_ns(st) && now.st_ino == st->st_ino;
}

static int
hash_chunks(int fd, uint64_t off, uint64_t len, EVP_MD_CTX *ctx,
    unsigned char *buf, ohash_pace_fn *pace, void *arg, uint64_t *done)
{
	ssize_t n;
	size_t want;

	while (len > 0) {
		want = len < CHUNK ? (size_t)len : CHUNK;
		n = pread(fd, buf, want, (off_t)off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (n == 0) {		/* shorter than its fstat said */
			errno = EAGAIN;
			return -1;
		}
		if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1) {
			errno = EIO;
			return -1;
		}
		off += (uint64_t)n;
		len -= (uint64_t)n;
		*done += (uint64_t)n;
		if (pace != NULL && pace(arg, (size_t)n) == -1) {
			errno = ECANCELED;
			return -1;
		}
	}
	return 0;
}

int
ohash_range(struct ohash *h, int fd, const struct stat *st, uint64_t off,
    uint64_t len, uint8_t md[32], ohash_pace_fn *pace, void *arg)
{
	unsigned char *buf = NULL;
	unsigned int mdlen = 0;
	uint64_t done = 0;
	EVP_MD_CTX *ctx;
	int rc = -1, saved;

	atomic_fetch_add(&h->pending, 1);
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL || (buf = malloc(CHUNK)) == NULL ||
	    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		errno = ENOMEM;
		goto out;
	}
	/* A file that changes while it is read has no hash to give. */
	if (!same_file(fd, st)) {
		errno = EAGAIN;
		goto out;
	}
	if (hash_chunks(fd, off, len, ctx, buf, pace, arg, &done) == -1)
		goto out;
	if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32) {
		errno = EIO;
		goto out;
	}
	if (!same_file(fd, st)) {
		errno = EAGAIN;
		goto out;
	}
	rc = 0;
out:
	saved = errno;
	atomic_fetch_add(&h->bytes, done);
	atomic_fetch_sub(&h->pending, 1);
	EVP_MD_CTX_free(ctx);
	free(buf);
	errno = saved;
	return rc;
}

int
ohash_file(struct ohash *h, const char *abspath, int fd,
    const struct stat *st, char hex[65], ohash_pace_fn *pace, void *arg)
{
	uint8_t md[32];

	if (ohash_range(h, fd, st, 0, (uint64_t)st->st_size, md, pace,
	    arg) == -1)
		return -1;
	m4f_hex_encode(md, sizeof(md), hex);
	ohash_put(h, abspath, st, hex);
	return 0;
}

int
ohash_unhex(const char *hex, uint8_t md[32])
{
	size_t n = 0;

	/* The cache holds only what m4f_hex_encode wrote: 64 digits. */
	if (strlen(hex) != 64 || OPENSSL_hexstr2buf_ex(md, 32, &n, hex,
	    '\0') != 1 || n != 32) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

void
ohash_stats(struct ohash *h, uint64_t *hits, uint64_t *misses,
    uint64_t *bytes, int64_t *pending)
{
	*hits = atomic_load(&h->hits);
	*misses = atomic_load(&h->misses);
	*bytes = atomic_load(&h->bytes);
	*pending = atomic_load(&h->pending);
}
