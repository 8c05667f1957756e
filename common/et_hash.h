/*
 * et_hash — FNV-1a, the one hash of the project's in-memory indexes (rollup keys, workflow
 * sets, held stream entries) and of the API's ETags. Not for anything an attacker may
 * choose keys for in bulk beyond the limits that already bound those indexes.
 */
#ifndef EXECTIME_ET_HASH_H
#define EXECTIME_ET_HASH_H

#include <stddef.h>
#include <stdint.h>

#define ET_FNV32_INIT 2166136261u
#define ET_FNV64_INIT 1469598103934665603ULL

/* Folds len bytes into a 32-bit FNV-1a state (start with ET_FNV32_INIT). */
static inline uint32_t et_fnv1a32(uint32_t h, const void *data, size_t len)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

/* 64-bit FNV-1a of len bytes. */
static inline uint64_t et_fnv1a64(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t h = ET_FNV64_INIT;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

#endif
