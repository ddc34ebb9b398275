#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"

/* A broken property is a crash, so that libFuzzer keeps the input. */
void
fuzz_fail(const char *file, int line, const char *what)
{
	fprintf(stderr, "%s:%d: property failed: %s\n", file, line, what);
	abort();
}
