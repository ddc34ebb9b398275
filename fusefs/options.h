/*
 * options: the dvrfs command line in mount(8) helper form
 *
 *	dvrfs SPEC DIR [-fnsv] [-o OPTION[,OPTION...]]
 *
 * SPEC is HOST:/PATH, m4f://HOST[:PORT]/PATH or m4fs://HOST[:PORT]/PATH
 * (HOST may be [IPv6]). OPTIONs are described in docs/man/mount.dvrfs.8.
 */
#ifndef DVRFS_OPTIONS_H
#define DVRFS_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

#define OPT_EXIT_USAGE	1	/* mount(8): incorrect invocation */
#define OPT_EXIT_FAIL	32	/* mount(8): mount failure */

struct dvrfs_opts {
	int		 tls;		/* m4fs:// */
	char		*host;
	int		 port;		/* default 80 (443 for m4fs) */
	char		*export;	/* absolute, no trailing '/' except "/" */
	char		*mountpoint;
	char		*store;
	int64_t		 depth;		/* seconds; default 7 days */
	int		 replicate;
	char	       **streams;	/* NULL: all; else NULL-terminated */
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

/*
 * Parses argv (argv[0] is the program). On success fills *o and returns
 * 0. On a bad command line writes one line naming the problem into err
 * and returns -1. The strings in *o are malloc'd: free with
 * opts_clear(), also after a failure.
 */
int	opts_parse(struct dvrfs_opts *o, int argc, char **argv, char *err,
	    size_t errlen);
void	opts_clear(struct dvrfs_opts *o);

/*
 * Parses a duration ("30", "30s", "10m", "2h", "7d") into seconds, or a
 * rate or size ("500", "64k", "2M", "1G", binary multiples) into bytes.
 * Return 0, or -1 with errno EINVAL or ERANGE.
 */
int	opts_duration(const char *s, int64_t *out);
int	opts_size(const char *s, uint64_t *out);

#endif
