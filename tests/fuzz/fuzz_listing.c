/*
 * fuzz_listing: m4f_listing_decode on hostile JSON. The first byte picks
 * the mode (recursive or not); the rest is the document. A decoded listing
 * must hold only valid names and survive an encode/decode round trip.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "m4f.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct m4f_listing *l, *again;
	char err[128], *json;
	size_t i;
	int recursive;

	if (size < 1)
		return 0;
	recursive = data[0] & 1;
	l = m4f_listing_decode((const char *)data + 1, size - 1, recursive,
	    err, sizeof(err));
	if (l == NULL) {
		FUZZ_ASSERT(memchr(err, '\0', sizeof(err)) != NULL);
		return 0;
	}
	FUZZ_ASSERT(l->path != NULL && l->path[0] == '/');
	for (i = 0; i < l->n; i++) {
		const struct m4f_entry *e = &l->entries[i];

		FUZZ_ASSERT(e->name[0] != '\0' && m4f_path_check(e->name) == 0);
		FUZZ_ASSERT(recursive || strchr(e->name, '/') == NULL);
		FUZZ_ASSERT(e->type == M4F_FILE || e->type == M4F_DIR ||
		    e->type == M4F_LINK);
		FUZZ_ASSERT(e->mtime >= 0);
		/* A file's hash is 64 hex digits, or "" when not known. */
		FUZZ_ASSERT(e->type != M4F_FILE || e->sha256[0] == '\0' ||
		    strlen(e->sha256) == M4F_SHA256_HEX);
		FUZZ_ASSERT(e->type != M4F_LINK || e->target != NULL);
	}
	FUZZ_ASSERT(l->next == NULL || m4f_path_check(l->next) == 0);

	json = m4f_listing_encode(l);
	FUZZ_ASSERT(json != NULL);
	again = m4f_listing_decode(json, strlen(json), recursive, err,
	    sizeof(err));
	FUZZ_ASSERT(again != NULL);
	FUZZ_ASSERT(again->n == l->n && strcmp(again->path, l->path) == 0);
	FUZZ_ASSERT((again->next == NULL) == (l->next == NULL));
	for (i = 0; i < l->n; i++) {
		FUZZ_ASSERT(strcmp(again->entries[i].name,
		    l->entries[i].name) == 0);
		FUZZ_ASSERT(again->entries[i].type == l->entries[i].type);
		FUZZ_ASSERT(again->entries[i].size == l->entries[i].size);
		FUZZ_ASSERT(again->entries[i].mtime == l->entries[i].mtime);
		FUZZ_ASSERT(strcmp(again->entries[i].sha256,
		    l->entries[i].sha256) == 0);
	}
	m4f_listing_free(again);
	free(json);
	m4f_listing_free(l);
	return 0;
}
