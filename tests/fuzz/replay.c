/*
 * replay: runs a fuzz harness once on each file named on the command line
 * (a folder means every regular file in it, in name order), without
 * libFuzzer, so the corpora are regression inputs under any compiler.
 * Prints one line with the count; a crash or a failed property ends the
 * program abnormally.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#define INPUT_MAX	(1 << 20)

/* Feeds one file; 0, or -1 when it cannot be read. */
static int
replay_file(const char *path)
{
	FILE *f;
	uint8_t *buf, *in;
	size_t n;

	if ((f = fopen(path, "rb")) == NULL) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	if ((buf = malloc(INPUT_MAX)) == NULL) {
		fclose(f);
		return -1;
	}
	n = fread(buf, 1, INPUT_MAX, f);
	fclose(f);
	/* An exact-size copy, so that ASan sees reads past the input. */
	if ((in = malloc(n ? n : 1)) == NULL) {
		free(buf);
		return -1;
	}
	memcpy(in, buf, n);
	free(buf);
	LLVMFuzzerTestOneInput(in, n);
	free(in);
	return 0;
}

int
main(int argc, char **argv)
{
	struct dirent **de;
	struct stat st;
	char path[4096];
	int i, j, k, n = 0, bad = 0;

	for (i = 1; i < argc; i++) {
		if (stat(argv[i], &st) == -1) {
			fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
			bad = 1;
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			bad |= replay_file(argv[i]) == -1;
			n++;
			continue;
		}
		/* Name order: a harness may keep state from input to input. */
		if ((k = scandir(argv[i], &de, NULL, alphasort)) == -1) {
			fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
			bad = 1;
			continue;
		}
		for (j = 0; j < k; j++) {
			snprintf(path, sizeof(path), "%s/%s", argv[i],
			    de[j]->d_name);
			if (de[j]->d_name[0] != '.' && stat(path, &st) == 0 &&
			    S_ISREG(st.st_mode)) {
				bad |= replay_file(path) == -1;
				n++;
			}
			free(de[j]);
		}
		free(de);
	}
	printf("%d inputs replayed\n", n);
	return bad;
}
