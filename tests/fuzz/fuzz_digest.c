/*
 * fuzz_digest: answer_digest_parse on any field value. An accepted value
 * holds a sha-256 member whose bytes format back to that member.
 */
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s, back[ANSWER_DIGEST_LEN];
	uint8_t md[32];

	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (answer_digest_parse(s, md) == 0) {
		answer_digest_format(md, back);
		FUZZ_ASSERT(strstr(s, back) != NULL);
	}
	free(s);
	return 0;
}
