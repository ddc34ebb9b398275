/*
 * fuzz_playback: pb_parse on any name. An accepted name prints back to
 * itself from what was parsed, and its range is within the limits.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "playback.h"

#define NOW	1796000000LL

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pb_name n;
	char *s, back[128];

	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (pb_parse(s, NOW, &n) == 0) {
		switch (n.kind) {
		case PB_LIVE:
			FUZZ_ASSERT(strcmp(s, "index.m3u8") == 0);
			break;
		case PB_STATUS:
			FUZZ_ASSERT(strcmp(s, "recording_status.json") == 0);
			break;
		case PB_EVENT:
			FUZZ_ASSERT(n.from <= NOW && n.duration == NOW - n.from);
			FUZZ_ASSERT(n.duration <= PB_DURATION_MAX);
			snprintf(back, sizeof(back), "archive-%" PRId64
			    "-now.m3u8", n.from);
			FUZZ_ASSERT(strcmp(s, back) == 0);
			break;
		case PB_VOD:
		case PB_TS:
			FUZZ_ASSERT(n.from >= 0 && n.from <= NOW);
			FUZZ_ASSERT(n.duration >= 1 &&
			    n.duration <= PB_DURATION_MAX);
			snprintf(back, sizeof(back), "%s-%" PRId64 "-%" PRId64
			    "%s", strncmp(s, "index-", 6) == 0 ? "index" :
			    "archive", n.from, n.duration,
			    n.kind == PB_TS ? ".ts" : ".m3u8");
			FUZZ_ASSERT(strcmp(s, back) == 0);
			break;
		}
	}
	free(s);
	return 0;
}
