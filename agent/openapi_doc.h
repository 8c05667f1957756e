/*
 * openapi_doc — the API's OpenAPI document (docs/openapi.yaml), converted to JSON and
 * compiled into the binary by agent/embed_openapi.py; the router serves it at
 * GET /openapi.json.
 *
 * Ownership: static, read-only data for the life of the process.
 */
#ifndef EXECTIME_OPENAPI_DOC_H
#define EXECTIME_OPENAPI_DOC_H

#include <stddef.h>

extern const char openapi_json[];      /* UTF-8 JSON, NUL-terminated */
extern const size_t openapi_json_len;  /* bytes, without the NUL */
extern const char openapi_json_etag[]; /* "\"<16 hex digits>\"", a strong ETag */

#endif
