#include <errno.h>
#include <string.h>

#include "batch.h"

/* The folder part of rel: its length, up to the last '/' (0: the top). */
static size_t
dir_len(const char *rel)
{
	const char *s = strrchr(rel, '/');

	return s != NULL ? (size_t)(s - rel) : 0;
}

static int
same_dir(const char *a, const char *b)
{
	size_t la = dir_len(a);

	return la == dir_len(b) && strncmp(a, b, la) == 0;
}

size_t
batch_take(const struct m4f_entry *v, const size_t *idx, size_t n)
{
	const struct m4f_entry *first, *e;
	uint64_t bytes;
	size_t k;

	if (n == 0)
		return 0;
	first = &v[idx[0]];
	if (first->size == 0 || first->size > BATCH_BYTES)
		return 1;
	bytes = first->size;
	for (k = 1; k < n && k < BATCH_FILES; k++) {
		e = &v[idx[k]];
		if (e->size == 0 || e->size > BATCH_BYTES - bytes ||
		    !same_dir(first->name, e->name))
			break;
		bytes += e->size;
	}
	return k;
}

int
batch_answer(const struct m4f_entry *const *e, size_t n, const char *sizes,
    const char *digests, uint64_t *asize, char (*want)[M4F_SHA256_HEX + 1])
{
	char d[BATCH_FILES][M4F_SHA256_HEX + 1];
	size_t i, ns, nd = 0;

	if (n == 0 || n > BATCH_FILES || sizes == NULL ||
	    m4f_sizes_parse(sizes, asize, n, &ns) == -1 || ns != n ||
	    (digests != NULL && (m4f_digests_parse(digests, d, n, &nd) == -1 ||
	    nd != n)))
		return errno = EBADMSG, -1;
	for (i = 0; i < n; i++) {
		want[i][0] = '\0';
		if (asize[i] != e[i]->size)
			continue;
		if (e[i]->sha256[0] != '\0') {
			/* The file changed since it was listed. */
			if (digests != NULL && strcmp(d[i], e[i]->sha256) != 0)
				continue;
			memcpy(want[i], e[i]->sha256, sizeof(want[i]));
		} else if (digests != NULL)
			memcpy(want[i], d[i], sizeof(want[i]));
	}
	return 0;
}
