/*
 * slowfs: a read-only FUSE filesystem whose folders are slow to list, as
 * on a disk that is overloaded or a network mount whose server stalls.
 *
 *     slowfs SECONDS MOUNTPOINT
 *
 * The root holds the empty folders a, b and c. Every listing of a folder
 * waits SECONDS (0 to 3600) before it is answered; a listing is not
 * cached, so the next one waits again. Requests run on threads of their
 * own: listings wait side by side. Stays in the foreground until
 * unmounted.
 */
#define FUSE_USE_VERSION 31

#include <errno.h>
#include <fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const folders[] = { "a", "b", "c" };
#define NFOLDERS	(sizeof(folders) / sizeof(folders[0]))

static unsigned delay;		/* seconds a listing waits */

/* Is path "/" or one of the folders ("/a")? */
static int
exists(const char *path)
{
	size_t i;

	if (strcmp(path, "/") == 0)
		return 1;
	for (i = 0; i < NFOLDERS; i++)
		if (path[0] == '/' && strcmp(path + 1, folders[i]) == 0)
			return 1;
	return 0;
}

static int
slow_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	(void)fi;
	if (!exists(path))
		return -ENOENT;
	memset(st, 0, sizeof(*st));
	st->st_mode = S_IFDIR | 0555;
	st->st_nlink = 2;
	return 0;
}

static int
slow_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
    struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	unsigned left = delay;
	size_t i;

	(void)off, (void)fi, (void)flags;
	if (!exists(path))
		return -ENOENT;
	while (left > 0)
		left = sleep(left);
	if (strcmp(path, "/") == 0)
		for (i = 0; i < NFOLDERS; i++)
			fill(buf, folders[i], NULL, 0, 0);
	return 0;
}

static void *
slow_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	(void)conn;
	cfg->kernel_cache = 0;
	cfg->entry_timeout = cfg->attr_timeout = 1;
	return NULL;
}

static const struct fuse_operations slow_ops = {
	.init = slow_init,
	.getattr = slow_getattr,
	.readdir = slow_readdir,
};

int
main(int argc, char *argv[])
{
	char *fargv[] = { argv[0], "-f", "-o", "ro,max_threads=16", NULL,
	    NULL };
	char *end;
	unsigned long n;

	if (argc != 3) {
		fprintf(stderr, "usage: slowfs seconds mountpoint\n");
		return 2;
	}
	errno = 0;
	n = strtoul(argv[1], &end, 10);
	if (errno != 0 || end == argv[1] || *end != '\0' || n > 3600 ||
	    argv[1][0] == '-') {
		fprintf(stderr, "slowfs: %s: seconds from 0 to 3600\n",
		    argv[1]);
		return 2;
	}
	delay = (unsigned)n;
	fargv[4] = argv[2];
	return fuse_main(5, fargv, &slow_ops, NULL);
}
