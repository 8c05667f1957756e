/* et_macros — small language helpers shared by every module. */
#ifndef EXECTIME_ET_MACROS_H
#define EXECTIME_ET_MACROS_H

#include <stddef.h>

/* The struct that embeds member, from a pointer to that member (libuv handles). */
#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

#define ET_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
