/*
 * tokens — API tokens for the integration tests, signed with libjwt (a library the agent
 * itself uses to verify them, so the tests also cross-check the encoder's output).
 *
 * Ownership: every string returned is malloc'd and freed by the caller. Any failure fails
 * the test (a criterion assertion).
 */
#ifndef EXECTIME_IT_TOKENS_H
#define EXECTIME_IT_TOKENS_H

#include <jwt.h>

/* "Authorization: Bearer <token>" signed by (alg, key) over claims_json as given. */
char *it_bearer_signed(jwt_alg_t alg, const char *key, const char *claims_json);

/* The same, HS256 with secret, exp an hour from now, plus the members of claims_fmt (the
 * inside of a JSON object, without braces; "" for none). */
char *it_bearer_hs256(const char *secret, const char *claims_fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
