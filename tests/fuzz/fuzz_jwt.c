/* fuzz_jwt — see fuzz_jwt.h. */
#include "fuzz_jwt.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

size_t fuzz_b64url(const unsigned char *in, size_t len, char *out)
{
    /* clang-format off */
    static const char abc[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    /* clang-format on */
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = abc[(v >> 18) & 63];
        out[o++] = abc[(v >> 12) & 63];
        if (i + 1 < len)
            out[o++] = abc[(v >> 6) & 63];
        if (i + 2 < len)
            out[o++] = abc[v & 63];
    }
    return o;
}

size_t fuzz_jwt_sign(const char *secret, const char *header, size_t header_len, const char *payload,
                     size_t payload_len, char *out)
{
    size_t o = fuzz_b64url((const unsigned char *)header, header_len, out);
    out[o++] = '.';
    o += fuzz_b64url((const unsigned char *)payload, payload_len, out + o);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;
    if (HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)out, o, mac,
             &mac_len) == NULL)
        abort();
    out[o++] = '.';
    o += fuzz_b64url(mac, mac_len, out + o);
    out[o] = '\0';
    return o;
}
