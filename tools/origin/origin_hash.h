/*
 * origin_hash: the SHA-256 of served files, kept in an SQLite file across
 * restarts, keyed by absolute path, size and mtime. A look-up never reads
 * a file: hashes are computed from bytes read for another reason (an
 * answer about to be sent, a file that just appeared, the optional
 * background pass) and then kept here.
 * Thread-safe: one connection behind a mutex; hashing runs outside it.
 * Functions return 0 / -1 with errno, NULL for pointers.
 */
#ifndef ORIGIN_HASH_H
#define ORIGIN_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

struct ohash;

/* Opens (creating, with its folder) the cache file. Free with ohash_close. */
struct ohash	*ohash_open(const char *dbpath);
void		 ohash_close(struct ohash *);

/*
 * The hash the cache keeps for abspath at st's size and mtime, as 64 hex
 * digits in hex: 1 when known, 0 when not (or on a cache error, logged).
 * Never reads the file.
 */
int		 ohash_lookup(struct ohash *, const char *abspath,
		    const struct stat *st, char hex[65]);

/* Keeps hex as the hash of abspath at st's size and mtime. */
void		 ohash_put(struct ohash *, const char *abspath,
		    const struct stat *st, const char hex[65]);

/*
 * Called after each chunk hashed with its size (a rate limit): may sleep;
 * returns 0 to go on, -1 to give up (the hashing fails with ECANCELED).
 */
typedef int	 ohash_pace_fn(void *arg, size_t n);

/*
 * The SHA-256 of bytes [off, off + len) of the regular file open as fd,
 * whose fstat the caller took as st, into md. Reads with pread in fixed
 * chunks (no buffer of the file's size; fd's offset is untouched). The
 * file must keep st's size and mtime from before the first read to after
 * the last: -1 with errno EAGAIN otherwise (or when it comes out short).
 * pace may be NULL. The caller keeps fd.
 */
int		 ohash_range(struct ohash *, int fd, const struct stat *st,
		    uint64_t off, uint64_t len, uint8_t md[32],
		    ohash_pace_fn *pace, void *arg);

/*
 * ohash_range of the whole file, kept in the cache as abspath's hash
 * and written as hex digits into hex. Same returns.
 */
int		 ohash_file(struct ohash *, const char *abspath, int fd,
		    const struct stat *st, char hex[65], ohash_pace_fn *pace,
		    void *arg);

/* 64 hex digits into the 32 bytes they spell: 0, or -1 (EINVAL). */
int		 ohash_unhex(const char *hex, uint8_t md[32]);

/*
 * Look-ups answered from the cache (hits), that found nothing (misses),
 * bytes read to hash, and hashings running now (pending), since
 * ohash_open.
 */
void		 ohash_stats(struct ohash *, uint64_t *hits, uint64_t *misses,
		    uint64_t *bytes, int64_t *pending);

#endif
