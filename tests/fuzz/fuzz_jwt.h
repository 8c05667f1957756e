/*
 * fuzz_jwt — HS256 tokens for the fuzz targets, signed here (OpenSSL HMAC) so that fuzzed
 * claims get past the signature check into the code behind it.
 *
 * out must hold the base64url of header and payload plus 46 bytes (dots, signature, NUL).
 */
#ifndef EXECTIME_FUZZ_JWT_H
#define EXECTIME_FUZZ_JWT_H

#include <stddef.h>

/* Unpadded base64url of in into out; returns the length written. */
size_t fuzz_b64url(const unsigned char *in, size_t len, char *out);

/* "<b64 header>.<b64 payload>.<b64 HMAC-SHA256>" into out, NUL-terminated; its length. */
size_t fuzz_jwt_sign(const char *secret, const char *header, size_t header_len, const char *payload,
                     size_t payload_len, char *out);

#endif
