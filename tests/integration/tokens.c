/* tokens — see tokens.h. */
#include "tokens.h"

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

char *it_bearer_signed(jwt_alg_t alg, const char *key, const char *claims_json)
{
    jwt_t *jwt = NULL;
    cr_assert_eq(jwt_new(&jwt), 0);
    cr_assert_eq(jwt_add_grants_json(jwt, claims_json), 0, "bad test claims %s", claims_json);
    cr_assert_eq(jwt_set_alg(jwt, alg, (const unsigned char *)key, key ? (int)strlen(key) : 0), 0);
    char *token = jwt_encode_str(jwt);
    cr_assert_not_null(token);
    jwt_free(jwt);
    size_t n = strlen(token) + 32;
    char *out = malloc(n);
    cr_assert_not_null(out);
    snprintf(out, n, "Authorization: Bearer %s", token);
    free(token);
    return out;
}

char *it_bearer_hs256(const char *secret, const char *claims_fmt, ...)
{
    char members[1024], claims[1200];
    va_list ap;
    va_start(ap, claims_fmt);
    vsnprintf(members, sizeof members, claims_fmt, ap);
    va_end(ap);
    snprintf(claims, sizeof claims, "{\"exp\": %lld%s%s}", (long long)time(NULL) + 3600,
             members[0] ? ", " : "", members);
    return it_bearer_signed(JWT_ALG_HS256, secret, claims);
}
