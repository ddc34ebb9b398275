/*
 * fuzz_dvrpath: dvrpath_time on any string. An accepted path must have
 * a non-empty STREAM, a time from 1970 on, and print back to the same
 * date components.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fuzz.h"
#include "dvrpath.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s, want[64];
	const char *tail;
	struct tm tm;
	size_t slen;
	int64_t t;
	time_t tt;

	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (dvrpath_time(s, &t, &slen) == 0) {
		FUZZ_ASSERT(slen > 0 && slen < strlen(s) && s[slen] == '/');
		FUZZ_ASSERT(t >= 0);
		FUZZ_ASSERT(dvrpath_time(s, &t, NULL) == 0);
		/* The six date components after STREAM say the same time. */
		tt = (time_t)t;
		FUZZ_ASSERT(gmtime_r(&tt, &tm) != NULL);
		tail = s + slen + 1;
		if (strncmp(tail + 17, "60", 2) != 0) {
			snprintf(want, sizeof(want), "%04d/%02d/%02d/%02d/%02d/%02d",
			    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			    tm.tm_hour, tm.tm_min, tm.tm_sec);
			FUZZ_ASSERT(strncmp(tail, want, 19) == 0);
		}
	}
	free(s);
	return 0;
}
