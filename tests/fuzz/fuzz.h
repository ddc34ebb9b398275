/*
 * The entry point every fuzz harness in tests/fuzz/ defines. Built with
 * clang -fsanitize=fuzzer it is driven by libFuzzer; built with replay.c
 * it is fed each corpus file once (make check).
 */
#ifndef DVRFS_FUZZ_H
#define DVRFS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts with a message when a harness finds a broken property. */
#define FUZZ_ASSERT(cond) do {						\
	if (!(cond))							\
		fuzz_fail(__FILE__, __LINE__, #cond);			\
} while (0)

void	fuzz_fail(const char *file, int line, const char *what)
	    __attribute__((noreturn));

#endif
