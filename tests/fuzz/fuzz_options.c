/*
 * fuzz_options: opts_parse on a command line cut from the input at NUL
 * bytes (argv[0] is "dvrfs"). Success must give a complete, bounded set of
 * options; failure must give a one-line reason. Inputs naming files under
 * /dev, /proc or /sys are skipped: a key file there could block.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "m4f.h"
#include "options.h"

#define ARGS_MAX	64

static int
mentions_special(const uint8_t *data, size_t size)
{
	static const char *const bad[] = { "/dev", "/proc", "/sys" };
	size_t i, j, n;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		n = strlen(bad[i]);
		for (j = 0; j + n <= size; j++)
			if (memcmp(data + j, bad[i], n) == 0)
				return 1;
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dvrfs_opts o;
	char *argv[ARGS_MAX + 2], *buf, err[256];
	size_t i, start;
	int argc = 0, rc;

	if (size > 8192 || mentions_special(data, size))
		return 0;
	if ((buf = malloc(size + 1)) == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	argv[argc++] = (char *)"dvrfs";
	for (i = start = 0; i <= size && argc < ARGS_MAX + 1; i++)
		if (buf[i] == '\0') {
			argv[argc++] = buf + start;
			start = i + 1;
		}
	argv[argc] = NULL;

	err[0] = '\0';
	rc = opts_parse(&o, argc, argv, err, sizeof(err));
	if (rc == 0) {
		FUZZ_ASSERT(o.host != NULL && o.host[0] != '\0');
		FUZZ_ASSERT(o.export != NULL && o.export[0] == '/');
		FUZZ_ASSERT(strcmp(o.export, "/") == 0 ||
		    m4f_path_check(o.export + 1) == 0);
		FUZZ_ASSERT(o.store != NULL && o.mountpoint != NULL);
		FUZZ_ASSERT(o.port >= 1 && o.port <= 65535);
		FUZZ_ASSERT(o.replication_port >= 0 &&
		    o.replication_port <= 65535);
		FUZZ_ASSERT(o.depth > 0 && o.timeout >= 1 && o.timeout <= 3600);
		FUZZ_ASSERT(o.transfers >= 1 && o.transfers <= 64);
		FUZZ_ASSERT(o.key == NULL || strlen(o.key) == o.keylen);
		FUZZ_ASSERT(o.streams == NULL || o.replicate);
		for (i = 0; i < o.nstreams; i++)
			FUZZ_ASSERT(m4f_name_check(o.streams[i],
			    strlen(o.streams[i])) == 0);
		FUZZ_ASSERT(o.streams == NULL || o.streams[o.nstreams] == NULL);
	} else {
		FUZZ_ASSERT(err[0] != '\0');
	}
	opts_clear(&o);
	free(buf);
	return 0;
}
