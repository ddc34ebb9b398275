/*
 * fuzz_sizes: m4f_sizes_parse on any string (an X-M4F-Sizes header from
 * the network). An accepted value holds 1 to M4F_FILES_MAX sizes and
 * prints back to exactly the same text; a refused one sets EINVAL.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "m4f.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t v[M4F_FILES_MAX];
	char *s, *back;
	size_t n = 0, i, used = 0, cap;

	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (m4f_sizes_parse(s, v, M4F_FILES_MAX, &n) == -1) {
		FUZZ_ASSERT(errno == EINVAL);
		free(s);
		return 0;
	}
	FUZZ_ASSERT(n >= 1 && n <= M4F_FILES_MAX);
	cap = n * 21 + 1;
	back = malloc(cap);
	FUZZ_ASSERT(back != NULL);
	for (i = 0; i < n; i++)
		used += (size_t)snprintf(back + used, cap - used, "%s%" PRIu64,
		    i ? "," : "", v[i]);
	FUZZ_ASSERT(strcmp(back, s) == 0);
	free(back);
	free(s);
	return 0;
}
