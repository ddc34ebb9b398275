/*
 * status_info: what the dvrfs daemon publishes for dvrfs-status —
 * STORE/dvrfs.json, written when it mounts, and the live counters in the
 * mount root's extended attribute user.dvrfs.status. Parsing only; no I/O
 * beyond reading the one file.
 *
 * Convention: 0 on success, -1 with errno (EINVAL for malformed JSON or
 * a value out of range).
 */
#ifndef DVRFS_STATUS_INFO_H
#define DVRFS_STATUS_INFO_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define SINFO_DEPTH_DEFAULT	(7 * 86400)
#define SINFO_DEPTH_MAX		(366LL * 86400)

/* STORE/dvrfs.json */
struct sinfo_mount {
	char		*spec;		/* NULL when not known */
	char		*mountpoint;	/* NULL when not known */
	int64_t		 depth;		/* seconds */
	int		 replicate;
	char	       **streams;	/* NULL: all */
	size_t		 nstreams;
	long		 pid;		/* 0 when not known */
	uint64_t	 max_size;	/* bytes, 0: no cap or not known */
};

/* user.dvrfs.status */
struct sinfo_live {
	uint64_t	 reads_local;
	uint64_t	 reads_fetched;
	uint64_t	 reads_failed;
	uint64_t	 bytes_local;
	uint64_t	 bytes_fetched;
	uint64_t	 hash_failures;
	uint64_t	 crawler_done_bytes;
	uint64_t	 crawler_queued;
	int		 connected;	/* -1 when not reported */
	int		 auth_failed;
	int		 listing;	/* the crawler's first walk is not done */
	json_t		*rates;		/* the crawler's rates by stream, in
					   raw; NULL when not reported */
	json_t		*raw;		/* the whole object, owned */
};

/*
 * Parses the text of dvrfs.json into *m (cleared first; free with
 * sinfo_mount_clear(), also after a failure). Missing keys keep their
 * defaults: depth 7 days, all streams.
 */
int	sinfo_mount_parse(const char *text, size_t len, struct sinfo_mount *m);
/* Reads and parses STORE/dvrfs.json; -1 with ENOENT when there is none. */
int	sinfo_mount_load(const char *store, struct sinfo_mount *m);
void	sinfo_mount_clear(struct sinfo_mount *m);

/*
 * Parses the live counters (an object; missing counters read 0, unknown
 * keys are kept in raw). Free with sinfo_live_clear(), also after a
 * failure.
 */
int	sinfo_live_parse(const char *text, size_t len, struct sinfo_live *l);
void	sinfo_live_clear(struct sinfo_live *l);
/*
 * The bytes a second the mount reports copying of stream lately: 0 for a
 * stream it copied nothing of, -1 when the mount reports no rates.
 */
double	sinfo_live_rate(const struct sinfo_live *l, const char *stream);

#endif
