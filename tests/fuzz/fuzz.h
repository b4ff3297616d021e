/* fuzz.h: what the libFuzzer targets in tests/fuzz share: the entry point's prototype, a
 * check that aborts with a message (so libFuzzer records the input as a crash) and a small
 * deterministic generator for decisions derived from the input. */
#ifndef RTD_TESTS_FUZZ_H
#define RTD_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* xorshift64*: never returns the same sequence for different non-zero seeds. */
static inline uint64_t fuzz_rng(uint64_t *s)
{
    if (*s == 0)
        *s = 0x9E3779B97F4A7C15ull;
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}

#endif
