/*
 * fuzz_feed: m4f_feed_decode on hostile JSON. A decoded feed must hold a
 * valid epoch and valid names and survive an encode/decode round trip.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "m4f.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct m4f_feed *f, *again;
	char err[128], *json;
	size_t i;

	f = m4f_feed_decode((const char *)data, size, err, sizeof(err));
	if (f == NULL)
		return 0;
	FUZZ_ASSERT(f->epoch[0] != '\0' && strlen(f->epoch) <= 32);
	for (i = 0; i < f->n; i++) {
		const struct m4f_event *ev = &f->events[i];

		FUZZ_ASSERT(ev->op == M4F_ADD || ev->op == M4F_DEL);
		FUZZ_ASSERT(ev->e.name[0] != '\0' &&
		    m4f_path_check(ev->e.name) == 0);
		/* A file's hash is 64 hex digits, or "" when not known. */
		FUZZ_ASSERT(ev->op != M4F_ADD || ev->e.type != M4F_FILE ||
		    ev->e.sha256[0] == '\0' ||
		    strlen(ev->e.sha256) == M4F_SHA256_HEX);
		FUZZ_ASSERT(ev->op != M4F_ADD || ev->e.type != M4F_LINK ||
		    ev->e.target != NULL);
	}
	json = m4f_feed_encode(f);
	FUZZ_ASSERT(json != NULL);
	again = m4f_feed_decode(json, strlen(json), err, sizeof(err));
	FUZZ_ASSERT(again != NULL);
	FUZZ_ASSERT(again->n == f->n && again->seq == f->seq &&
	    again->reset == f->reset && strcmp(again->epoch, f->epoch) == 0);
	for (i = 0; i < f->n; i++) {
		FUZZ_ASSERT(again->events[i].seq == f->events[i].seq);
		FUZZ_ASSERT(again->events[i].op == f->events[i].op);
		FUZZ_ASSERT(strcmp(again->events[i].e.name,
		    f->events[i].e.name) == 0);
	}
	m4f_feed_free(again);
	free(json);
	m4f_feed_free(f);
	return 0;
}
