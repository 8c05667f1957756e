/*
 * auth — verifies the API's bearer tokens (JWT, DESIGN.md section 5) and turns their
 * claims into what the query path needs: the compact claims JSON for
 * set_config('request.jwt.claims', ..., true), the token's tenant(s) and the subject.
 *
 * One algorithm is configured and only that one is accepted: HS256 with
 * EXECTIME_JWT_SECRET, or RS256 / ES256 (P-256) with the public key in
 * EXECTIME_JWT_PUBLIC_KEY_FILE, the algorithm following the key's type. The header's
 * `alg` is checked before the signature, so `none`, another HMAC size or an HS256 token
 * "signed" with the public key's PEM text (algorithm confusion) never reach libjwt's
 * verifier. `exp` is required, `nbf` honoured and an `iat` in the future refused, each
 * with AUTH_CLOCK_SKEW_S seconds of skew; there is no maximum lifetime, and `aud` and
 * `iss` are not checked.
 *
 * Ownership: auth_init fills a caller-provided auth_t that owns a copy of the secret (or
 * the key, re-encoded as SubjectPublicKeyInfo PEM); auth_free releases it and may be
 * called on a zeroed or already freed auth_t. auth_verify fills a caller-provided
 * auth_claims_t; it is zeroed first, so auth_claims_free is always safe on it, on
 * success and on failure. Nothing keeps a pointer to the Authorization value.
 *
 * Errors: negative errno codes with a one-line reason in the caller's buffer. auth_init:
 * -EINVAL (bad configuration; the reason names the variable), -ENOMEM. auth_verify:
 * -EACCES with a short reason fit for the client ("token expired"), or -ENOMEM. No
 * reason ever contains the token. Neither function logs. Thread-safe on a shared
 * const auth_t (no global state besides libjwt's and OpenSSL's own).
 */
#ifndef EXECTIME_AUTH_H
#define EXECTIME_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_MAX_TOKEN_LEN 8192  /* bytes of the token itself, without "Bearer " */
#define AUTH_MIN_SECRET_LEN 16   /* bytes; HS256 wants 32, Supabase's legacy secret has 40 */
#define AUTH_CLOCK_SKEW_S 30     /* seconds tolerated on exp and nbf */
#define AUTH_MAX_TENANT_LEN 64   /* bytes, as for tenant_id in events */
#define AUTH_MAX_SUBJECT_LEN 128 /* bytes of sub kept for logs */
#define AUTH_MIN_RSA_BITS 2048   /* smaller RSA keys are refused at start-up */

typedef enum auth_alg { AUTH_HS256, AUTH_RS256, AUTH_ES256 } auth_alg_t;

typedef struct auth {
    auth_alg_t alg;
    unsigned char *key; /* owned: the secret's bytes, or the public key as SPKI PEM + NUL */
    size_t key_len;     /* bytes of key, without the PEM's NUL */
} auth_t;

typedef struct auth_claims {
    char *claims_json; /* the payload as compact JSON (malloc'd, NUL-terminated) */
    char tenant[AUTH_MAX_TENANT_LEN + 1]; /* the one tenant when tenant_count == 1, else "" */
    int tenant_count; /* distinct tenants named by tenant_id / tenant_ids, top-level or
                           under app_metadata (0 for none) */
    bool all_tenants; /* role == "service_role" */
    char subject[AUTH_MAX_SUBJECT_LEN + 1]; /* sub for logs; control bytes replaced by '?';
                                               "" if absent, not a string or too long */
} auth_claims_t;

/**
 * Sets a up from the two configuration values; NULL and "" both mean "not set", and
 * exactly one must be set.
 * @param secret           EXECTIME_JWT_SECRET: HS256 secret, at least AUTH_MIN_SECRET_LEN bytes
 * @param public_key_file  EXECTIME_JWT_PUBLIC_KEY_FILE: PEM public key (SPKI or PKCS#1
 *                         RSA); RSA >= AUTH_MIN_RSA_BITS gives RS256, EC P-256 gives ES256
 * @return 0, -EINVAL with a reason naming the variable, or -ENOMEM
 */
__attribute__((warn_unused_result)) int auth_init(auth_t *a, const char *secret,
                                                  const char *public_key_file, char *err,
                                                  size_t err_cap);
void auth_free(auth_t *a);

/** The algorithm's JWS name ("HS256", "RS256", "ES256"). */
const char *auth_alg_name(auth_alg_t alg);

/**
 * Verifies an Authorization header value ("Bearer <jwt>", scheme case-insensitive) at
 * time now_s (Unix seconds) and fills out.
 * @return 0, -EACCES with a reason for the client in why ("missing bearer token",
 *         "token too long", "malformed token", "unexpected algorithm HS512",
 *         "bad signature", "missing exp claim", "token expired", "token not yet valid",
 *         "token issued in the future", "invalid tenant claim", ...), or -ENOMEM
 */
__attribute__((warn_unused_result)) int auth_verify(const auth_t *a, const char *authorization,
                                                    int64_t now_s, auth_claims_t *out, char *why,
                                                    size_t why_cap);
void auth_claims_free(auth_claims_t *c);

#endif
