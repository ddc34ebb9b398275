/*
 * options: the dvrfs command line in mount(8) helper form
 *
 *	dvrfs SPEC DIR [-fnsv] [-o OPTION[,OPTION...]]
 *
 * SPEC and the OPTIONs are parsed by common/opts.c (the vocabulary the
 * mount shares with dvrfs-restore); they are described in
 * docs/man/mount.dvrfs.8.
 */
#ifndef DVRFS_OPTIONS_H
#define DVRFS_OPTIONS_H

#include "opts.h"

#define OPT_EXIT_USAGE	1	/* mount(8): incorrect invocation */
#define OPT_EXIT_FAIL	32	/* mount(8): mount failure */

/*
 * Parses argv (argv[0] is the program). On success fills *o and returns
 * 0. On a bad command line writes one line naming the problem into err
 * and returns -1. The strings in *o are malloc'd: free with
 * opts_clear(), also after a failure.
 */
int	opts_parse(struct dvrfs_opts *o, int argc, char **argv, char *err,
	    size_t errlen);

#endif
