/*
 * et_rng — splitmix64, the one small deterministic generator of the load generator and the
 * tests: a fixed seed gives the same sequence on every run and machine. Not for secrets.
 * Header only.
 */
#ifndef EXECTIME_ET_RNG_H
#define EXECTIME_ET_RNG_H

#include <stdint.h>

/* The next 64 bits of the sequence whose state is *state (any seed will do). */
static inline uint64_t et_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

#endif
