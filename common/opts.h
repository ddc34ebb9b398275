/*
 * opts: the option vocabulary users type, shared by the mount (dvrfs -o)
 * and dvrfs-restore (-o): the SPEC (HOST:/PATH, m4f://HOST[:PORT]/PATH,
 * m4fs://HOST[:PORT]/PATH, HOST may be [IPv6]), the option table with its
 * value syntax and limits, durations, sizes and the cluster key file.
 * Each program keeps its own command line (fusefs/options.c, the
 * restore's main) and says which options apply to it.
 *
 * Convention: 0 on success, -1 on failure; the parsers that take err
 * write one line naming the problem into it.
 */
#ifndef DVRFS_OPTS_H
#define DVRFS_OPTS_H

#include <stddef.h>
#include <stdint.h>

#define OPTS_DEPTH_MAX	(366LL * 86400)

/* Which program an option belongs to (opts_list's "who"). */
#define OPTS_MOUNT	0x1
#define OPTS_RESTORE	0x2

struct dvrfs_opts {
	int		 tls;		/* m4fs:// */
	char		*host;
	int		 port;		/* default 80 (443 for m4fs) */
	char		*export;	/* absolute, no trailing '/' except "/" */
	char		*mountpoint;	/* the mount's DIR, the restore's DIR */
	char		*store;
	int64_t		 depth;		/* seconds; default 7 days */
	int		 replicate;
	char	       **streams;	/* NULL: all; else NULL-terminated */
	int64_t		*stream_depth;	/* [nstreams]: seconds, 0: depth */
	size_t		 nstreams;
	int		 replication_port;	/* 0: none */
	char		*key;		/* cluster key, NUL-terminated */
	size_t		 keylen;
	uint64_t	 bwlimit;	/* bytes/s, 0: none */
	int		 transfers;	/* default 4 */
	int		 readahead;	/* segments read ahead; default 8 */
	int		 timeout;	/* seconds a read waits; default 10 */
	uint32_t	 block_size;	/* 0: the store's */
	uint64_t	 max_size;	/* store size cap, 0: none */
	char		*cafile;
	int		 allow_other;	/* default on */
	int		 foreground;
	int		 verbose;
	int		 debug;		/* FUSE request trace */
	char		*fsname;	/* the SPEC as given */
};

/* Zeroes *o and sets the defaults (depth 7d, 4 transfers, timeout 10…). */
void	opts_init(struct dvrfs_opts *o);

/*
 * Parses SPEC into o->tls, host, port (when the URL names one) and
 * export.
 */
int	opts_spec(struct dvrfs_opts *o, const char *spec, char *err,
	    size_t errlen);

/*
 * Parses one comma-separated OPTION list into o. Only the options of
 * who (OPTS_MOUNT, OPTS_RESTORE) are accepted; with who OPTS_MOUNT the
 * generic mount(8) options are accepted and ignored, and sloppy ignores
 * unknown ones (mount -s).
 */
int	opts_list(struct dvrfs_opts *o, const char *list, int who, int sloppy,
	    char *err, size_t errlen);

/* Sets o->port to the scheme's default when SPEC and -o named none. */
void	opts_default_port(struct dvrfs_opts *o);

/*
 * The depth of stream name: its own from streams=NAME:DEPTH, else
 * o->depth.
 */
int64_t	opts_stream_depth(const struct dvrfs_opts *o, const char *name);

/* Is name a stream to copy (no streams=, or one of them)? */
int	opts_stream_wanted(const struct dvrfs_opts *o, const char *name,
	    size_t len);

/* Frees the strings of *o (also after a failed parse) and zeroes it. */
void	opts_clear(struct dvrfs_opts *o);

/*
 * Parses a duration ("30", "30s", "10m", "2h", "7d") into seconds, or a
 * rate or size ("500", "64k", "2M", "1G", binary multiples) into bytes,
 * or an integer in [lo, hi] (the whole string). Return 0, or -1 with
 * errno EINVAL or ERANGE.
 */
int	opts_duration(const char *s, int64_t *out);
int	opts_size(const char *s, uint64_t *out);
int	opts_int(const char *s, long lo, long hi, int *out);

#endif
