/*
 * dvrfs, also installed as mount.dvrfs: mounts a primary's DVR archive.
 * It returns only once the mount is usable, then serves it in the
 * background (or in the foreground with -f).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fetcher.h"
#include "fs.h"
#include "log.h"
#include "options.h"
#include "store.h"
#include "daemon.h"

static const char *progname = "dvrfs";

static void
usage(void)
{
	fprintf(stderr, "usage: %s SPEC DIR [-fnsv] [-o OPTION[,OPTION...]]\n"
	    "       SPEC is HOST:/PATH, m4f://HOST[:PORT]/PATH or "
	    "m4fs://HOST[:PORT]/PATH\n", progname);
}

int
main(int argc, char **argv)
{
	struct dvrfs_opts o;
	char err[512];
	int rc;

	progname = basename(argv[0]);
	log_init(progname, LOG_LVL_INFO);
	/*
	 * libcurl allocates each transfer's receive buffer (256 KiB) and
	 * frees it at the transfer's end. With malloc's own thresholds the
	 * network thread's heap was trimmed under it (madvise) about once
	 * a segment, and the next transfer faulted its pages in again:
	 * blocks up to 512 KiB come from the heaps, and a heap keeps up to
	 * 2 MiB free at its top.
	 */
	mallopt(M_MMAP_THRESHOLD, 512 * 1024);
	mallopt(M_TRIM_THRESHOLD, 2 << 20);
	if (opts_parse(&o, argc, argv, err, sizeof(err)) == -1) {
		if (strcmp(err, "usage") == 0) {
			usage();
			rc = OPT_EXIT_USAGE;
		} else {
			fprintf(stderr, "%s: %s\n", progname, err);
			rc = OPT_EXIT_FAIL;
		}
		opts_clear(&o);
		return rc;
	}
	if (o.verbose || o.debug)
		log_set_level(LOG_LVL_DEBUG);
	rc = daemon_run(&o, progname);
	opts_clear(&o);
	return rc;
}
