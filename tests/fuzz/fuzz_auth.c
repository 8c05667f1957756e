/*
 * libFuzzer target for bearer tokens and their claims (agent/auth.c), HS256 with a fixed
 * test secret at a fixed clock. The first byte picks how the rest is used:
 *  - even: the rest is the Authorization header value as a client sends it ("Bearer
 *    <jwt>"); the seed corpus holds real tokens signed with FUZZ_SECRET;
 *  - odd: the rest is a JOSE header and a claims payload as JSON text, split at the first
 *    NUL byte (no NUL: a standard HS256 header and the whole rest as the payload), which
 *    this target encodes and signs with FUZZ_SECRET. So the fuzzer reaches the code after
 *    the signature check (times, tenants, role, subject) with any JSON it likes.
 * Beyond "never crash": a refusal is -EACCES with a one-line printable reason that never
 * echoes the token and leaves the claims zeroed; an accepted token has claims JSON that
 * parses back to an object with exp, its tenants agree with tenant_count, and its subject
 * has no control bytes.
 */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "fuzz_jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The seed tokens of corpus/fuzz_auth/ are signed with it, for the clock below. */
#define FUZZ_SECRET "fuzz-secret-0123456789abcdef0123"
#define NOW_S 1795000000LL /* 2026-11-18T10:13:20Z */
#define TOKEN_MAX (3 * AUTH_MAX_TOKEN_LEN)

static const char default_header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

/* "Bearer " + header.payload.HMAC-SHA256 into out (capacity TOKEN_MAX + 64). */
static void sign(const char *header, size_t header_len, const char *payload, size_t payload_len,
                 char *out)
{
    size_t o = strlen(strcpy(out, "Bearer "));
    fuzz_jwt_sign(FUZZ_SECRET, header, header_len, payload, payload_len, out + o);
}

static bool has_control_byte(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            return true;
    }
    return false;
}

/* True when the tenant claim places auth.c reads name t. */
static bool names_tenant(const json_t *obj, const char *t)
{
    if (!json_is_object(obj))
        return false;
    const char *one = json_string_value(json_object_get(obj, "tenant_id"));
    if (one != NULL && strcmp(one, t) == 0)
        return true;
    size_t i;
    const json_t *v;
    json_array_foreach(json_object_get(obj, "tenant_ids"), i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), t) == 0)
            return true;
    }
    return false;
}

static void check_accepted(const auth_claims_t *c)
{
    if (c->claims_json == NULL || c->tenant_count < 0 || has_control_byte(c->subject))
        abort();
    json_error_t jerr;
    json_t *claims = json_loads(c->claims_json, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(claims) || !json_is_number(json_object_get(claims, "exp")) ||
        json_number_value(json_object_get(claims, "exp")) <= (double)(NOW_S - AUTH_CLOCK_SKEW_S))
        abort();
    if ((c->tenant_count == 1) != (c->tenant[0] != '\0'))
        abort();
    if (c->tenant_count == 1 && !names_tenant(claims, c->tenant) &&
        !names_tenant(json_object_get(claims, "app_metadata"), c->tenant))
        abort();
    const char *role = json_string_value(json_object_get(claims, "role"));
    if (c->all_tenants != (role != NULL && strcmp(role, "service_role") == 0))
        abort();
    json_decref(claims);
}

static void check_refused(const auth_claims_t *c, const char *why, const char *authorization)
{
    if (why[0] == '\0' || has_control_byte(why) || c->claims_json != NULL || c->tenant_count != 0 ||
        c->tenant[0] != '\0' || c->subject[0] != '\0')
        abort();
    /* The reason goes to the client and to logs: it must never carry the token. */
    const char *tok = strchr(authorization, ' ');
    if (tok != NULL) {
        while (*tok == ' ')
            tok++;
        if (strlen(tok) >= 16 && strstr(why, tok) != NULL)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static auth_t a;
    static bool ready;
    static char authorization[TOKEN_MAX + 64];
    if (!ready) {
        char err[256];
        if (auth_init(&a, FUZZ_SECRET, NULL, err, sizeof err) != 0)
            abort();
        ready = true;
    }
    if (size == 0)
        return 0;
    const char *rest = (const char *)data + 1;
    size_t rest_len = size - 1;
    if (data[0] % 2 == 0) {
        /* A header value is a C string to auth_verify: it ends at the first NUL. */
        size_t n = strnlen(rest, rest_len);
        if (n > TOKEN_MAX)
            n = TOKEN_MAX;
        memcpy(authorization, rest, n);
        authorization[n] = '\0';
    } else {
        /* Base64 grows by 4/3: keep the signed token within what the buffer holds. */
        if (rest_len > TOKEN_MAX / 2)
            return 0;
        const char *nul = memchr(rest, '\0', rest_len);
        if (nul != NULL)
            sign(rest, (size_t)(nul - rest), nul + 1, rest_len - (size_t)(nul - rest) - 1,
                 authorization);
        else
            sign(default_header, sizeof default_header - 1, rest, rest_len, authorization);
    }

    auth_claims_t c;
    char why[256];
    int rc = auth_verify(&a, authorization, NOW_S, &c, why, sizeof why);
    if (rc == 0)
        check_accepted(&c);
    else if (rc == -EACCES)
        check_refused(&c, why, authorization);
    else if (rc != -ENOMEM)
        abort();
    auth_claims_free(&c);
    return 0;
}
