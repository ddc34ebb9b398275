#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "options.h"

int
opts_parse(struct dvrfs_opts *o, int argc, char **argv, char *err,
    size_t errlen)
{
	const char *lists[32];
	size_t nlists = 0, i;
	int ch, sloppy = 0;

	opts_init(o);

	/*
	 * 0, not 1: glibc then also drops the rest of an option cluster
	 * ("-hf") a previous call stopped in, which points into that call's
	 * argv.
	 */
	optind = 0;
	opterr = 0;
	while ((ch = getopt(argc, argv, "fhnN:o:st:v")) != -1) {
		switch (ch) {
		case 'f': o->foreground = 1; break;
		case 'n': case 'N': case 't': break;
		case 's': sloppy = 1; break;
		case 'v': o->verbose = 1; break;
		case 'o':
			if (nlists == sizeof(lists) / sizeof(lists[0]))
				return snprintf(err, errlen, "too many -o"),
				    -1;
			lists[nlists++] = optarg;
			break;
		case 'h':
			return snprintf(err, errlen, "usage"), -1;
		default:
			return snprintf(err, errlen, "unknown flag '-%c'",
			    optopt), -1;
		}
	}
	if (argc - optind != 2)
		return snprintf(err, errlen, "usage"), -1;
	if ((o->fsname = strdup(argv[optind])) == NULL ||
	    (o->mountpoint = strdup(argv[optind + 1])) == NULL)
		return snprintf(err, errlen, "out of memory"), -1;
	if (opts_spec(o, argv[optind], err, errlen) == -1)
		return -1;
	for (i = 0; i < nlists; i++)
		if (opts_list(o, lists[i], OPTS_MOUNT, sloppy, err,
		    errlen) == -1)
			return -1;
	opts_default_port(o);
	if (o->store == NULL)
		return snprintf(err, errlen, "store=DIR is required"), -1;
	if (o->streams != NULL && !o->replicate)
		return snprintf(err, errlen, "streams= needs replicate"), -1;
	return 0;
}
