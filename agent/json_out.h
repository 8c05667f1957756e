/*
 * json_out — a small JSON writer into a growable buffer, for API responses whose number
 * formatting we choose (durations in ms with at most six decimals, exact integers).
 * Commas are placed automatically inside objects and arrays.
 *
 * Ownership: json_out_t owns its buffer; json_out_take hands it to the caller (free()).
 * Allocation failure is sticky: json_out_failed() tells, and every later write is a no-op.
 * So is going past the limit set with json_out_set_limit (json_out_too_large() tells):
 * memory stays bounded however large the answer would have been.
 */
#ifndef EXECTIME_JSON_OUT_H
#define EXECTIME_JSON_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSON_OUT_DEPTH 16

typedef struct json_out {
    char *data;
    size_t len;
    size_t cap;
    bool failed;
    bool too_large; /* failed because the text would pass limit */
    size_t limit;   /* most bytes of text; 0: no limit */
    int depth;
    bool need_comma[JSON_OUT_DEPTH];
} json_out_t;

void json_out_init(json_out_t *j);
void json_out_free(json_out_t *j);
bool json_out_failed(const json_out_t *j);
/* Caps the text at limit bytes (0: no cap); going past it fails the writer. */
void json_out_set_limit(json_out_t *j, size_t limit);
/* The writer failed because the text would have passed its limit. */
bool json_out_too_large(const json_out_t *j);
/* The text (NUL-terminated) and its length; the caller frees it. NULL after a failure. */
char *json_out_take(json_out_t *j, size_t *len);

void jout_obj_begin(json_out_t *j);
void jout_obj_end(json_out_t *j);
void jout_arr_begin(json_out_t *j);
void jout_arr_end(json_out_t *j);
/* A key inside an object; the value follows with one of the value writers. */
void jout_key(json_out_t *j, const char *key);
void jout_str(json_out_t *j, const char *s);
void jout_int(json_out_t *j, int64_t v);
void jout_null(json_out_t *j);
void jout_bool(json_out_t *j, bool v);
/* A number with up to `decimals` decimals, trailing zeros dropped (NaN/inf: null). */
void jout_num(json_out_t *j, double v, int decimals);
/* A duration in µs as milliseconds, exact to the µs. */
void jout_ms(json_out_t *j, int64_t us);
/* An instant in µs since the epoch as an RFC 3339 UTC string (null when out of range). */
void jout_time(json_out_t *j, int64_t t_us);

/* Room for any error body: longer texts are cut, still as valid JSON. */
#define JSON_ERROR_BODY_MAX 1024

/*
 * The error body every endpoint answers, {"error":{"code":…,"message":…[,"parameter":…]}},
 * into buf without allocating (it serves out-of-memory answers too); parameter may be NULL.
 * Returns its length.
 */
size_t json_error_body(char *buf, size_t cap, const char *code, const char *message,
                       const char *parameter);

#endif
