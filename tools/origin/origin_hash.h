/*
 * origin_hash: the SHA-256 of every served file, computed once and kept in
 * an SQLite file across restarts, keyed by absolute path, size and mtime.
 * Thread-safe: one connection behind a mutex; hashing runs outside it.
 * Functions return 0 / -1 with errno, NULL for pointers.
 */
#ifndef ORIGIN_HASH_H
#define ORIGIN_HASH_H

#include <stdint.h>
#include <sys/stat.h>

struct ohash;

/* Opens (creating, with its folder) the cache file. Free with ohash_close. */
struct ohash	*ohash_open(const char *dbpath);
void		 ohash_close(struct ohash *);

/*
 * Writes the 64 hex digits of the SHA-256 of the regular file open as fd
 * (known in the cache as abspath), whose fstat the caller took as st,
 * into hex. Reads fd (from offset 0) only when the cache has no row for
 * this path, size and mtime; a file that changes while it is read gives
 * -1 with errno EAGAIN and is not cached. The caller keeps fd.
 */
int		 ohash_get(struct ohash *, const char *abspath, int fd,
		    const struct stat *st, char hex[65]);

/*
 * Look-ups answered from the cache (hits), that read the file (misses),
 * and files being read now (pending), since ohash_open.
 */
void		 ohash_stats(struct ohash *, uint64_t *hits, uint64_t *misses,
		    int64_t *pending);

#endif
