/*
 * Unit tests for agent/auth: bearer parsing, signature and algorithm checks, times,
 * claims and tenants, and start-up errors. Keys are generated once per run by the
 * openssl command into a temporary directory (a PRE_ALL hook in the runner process;
 * each test's process finds it through AUTH_TEST_KEYS). Valid tokens are signed with
 * libjwt; tokens libjwt would not build (arrays, duplicate keys, odd headers) are
 * assembled and HMAC-signed here.
 */
#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <errno.h>
#include <jansson.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"

#define SECRET "0123456789abcdef0123456789abcdef" /* 32 bytes */

static char keydir[256];
static char why[256];
static auth_t a;
static auth_claims_t c;
static int64_t now;

/* ---- keys, generated once for the whole run ---- */

static void run(const char *cmd)
{
    if (system(cmd) != 0) {
        fprintf(stderr, "test_auth: command failed: %s\n", cmd);
        abort();
    }
}

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
    (void)set;
    char tmpl[] = "/tmp/test_auth.XXXXXX";
    if (mkdtemp(tmpl) == NULL)
        abort();
    char cmd[2048];
    snprintf(
        cmd, sizeof cmd,
        "set -e; cd %s; exec 2>/dev/null; "
        "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.pem; "
        "openssl pkey -in rsa.pem -pubout -out rsa.pub; "
        "openssl rsa -in rsa.pem -RSAPublicKey_out -out rsa_pkcs1.pub; "
        "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out rsa1024.pem; "
        "openssl pkey -in rsa1024.pem -pubout -out rsa1024.pub; "
        "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec.pem; "
        "openssl pkey -in ec.pem -pubout -out ec.pub; "
        "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec2.pem; "
        "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out ec384.pem; "
        "openssl pkey -in ec384.pem -pubout -out ec384.pub; "
        "openssl genpkey -algorithm ED25519 -out ed.pem; "
        "openssl pkey -in ed.pem -pubout -out ed.pub; "
        "openssl req -x509 -new -key ec.pem -subj /CN=test -days 1 -out cert.pem; "
        "printf 'not a key at all\\n' > junk.txt; "
        "printf -- '-----BEGIN PUBLIC KEY-----\\nAAAA\\n-----END PUBLIC KEY-----\\n' > bad.pub",
        tmpl);
    run(cmd);
    setenv("AUTH_TEST_KEYS", tmpl, 1);
    snprintf(keydir, sizeof keydir, "%s", tmpl);
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
    (void)stats;
    if (keydir[0] != '\0') {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", keydir);
        run(cmd);
    }
}

static const char *key_path(const char *name)
{
    static char path[4][512];
    static int next;
    const char *dir = getenv("AUTH_TEST_KEYS");
    cr_assert_not_null(dir, "PRE_ALL hook did not run");
    char *p = path[next++ % 4];
    snprintf(p, 512, "%s/%s", dir, name);
    return p;
}

static unsigned char *slurp(const char *name, size_t *len)
{
    FILE *f = fopen(key_path(name), "rb");
    cr_assert_not_null(f);
    static unsigned char buf[4][16384];
    static int next;
    unsigned char *b = buf[next++ % 4];
    *len = fread(b, 1, sizeof buf[0] - 1, f);
    b[*len] = '\0';
    fclose(f);
    return b;
}

/* ---- token builders ---- */

/* Signs claims_json with libjwt; returns "Bearer <token>" (malloc'd). */
static char *bearer_jwt(jwt_alg_t alg, const unsigned char *key, size_t key_len,
                        const char *claims_json)
{
    jwt_t *jwt = NULL;
    cr_assert_eq(jwt_new(&jwt), 0);
    cr_assert_eq(jwt_add_grants_json(jwt, claims_json), 0, "bad test claims %s", claims_json);
    cr_assert_eq(jwt_set_alg(jwt, alg, key, (int)key_len), 0);
    char *tok = jwt_encode_str(jwt);
    cr_assert_not_null(tok);
    jwt_free(jwt);
    char *out = malloc(strlen(tok) + 8);
    sprintf(out, "Bearer %s", tok);
    free(tok);
    return out;
}

static char *bearer_hs256(const char *claims_json)
{
    return bearer_jwt(JWT_ALG_HS256, (const unsigned char *)SECRET, strlen(SECRET), claims_json);
}

static void b64url(const unsigned char *in, size_t len, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = tab[(acc >> bits) & 63];
        }
    }
    if (bits > 0)
        out[o++] = tab[(acc << (6 - bits)) & 63];
    out[o] = '\0';
}

/* Assembles "Bearer header.payload.sig" from raw JSON texts, HMAC-SHA256 with secret. */
static char *bearer_raw(const char *header, const char *payload, const char *secret)
{
    static char buf[4][16384];
    static int next;
    char *out = buf[next++ % 4];
    char *p = out + sprintf(out, "Bearer ");
    char *signing = p;
    b64url((const unsigned char *)header, strlen(header), p);
    p += strlen(p);
    *p++ = '.';
    b64url((const unsigned char *)payload, strlen(payload), p);
    p += strlen(p);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)signing,
         (size_t)(p - signing), mac, &mac_len);
    *p++ = '.';
    b64url(mac, mac_len, p);
    return out;
}

static const char *hs_header = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

static const char *claims_exp(const char *extra)
{
    static char buf[8192];
    snprintf(buf, sizeof buf, "{\"exp\":%lld%s%s}", (long long)now + 3600, extra[0] ? "," : "",
             extra);
    return buf;
}

static void verify_ok(const char *authorization)
{
    int rc = auth_verify(&a, authorization, now, &c, why, sizeof why);
    cr_assert_eq(rc, 0, "refused: %s", why);
    cr_assert_not_null(c.claims_json);
}

static void verify_refused(const char *authorization, const char *reason)
{
    int rc = auth_verify(&a, authorization, now, &c, why, sizeof why);
    cr_assert_eq(rc, -EACCES, "rc %d for %s", rc, reason);
    cr_assert_str_eq(why, reason);
    cr_assert_null(c.claims_json);
    cr_assert_eq(c.tenant_count, 0);
}

static void setup_hs(void)
{
    now = (int64_t)time(NULL);
    why[0] = '\0';
    cr_assert_eq(auth_init(&a, SECRET, NULL, why, sizeof why), 0, "%s", why);
    cr_assert_eq(a.alg, AUTH_HS256);
}

static void setup_key(const char *pub)
{
    now = (int64_t)time(NULL);
    why[0] = '\0';
    cr_assert_eq(auth_init(&a, "", key_path(pub), why, sizeof why), 0, "%s", why);
}

static void setup_rsa(void)
{
    setup_key("rsa.pub");
    cr_assert_eq(a.alg, AUTH_RS256);
}

static void setup_ec(void)
{
    setup_key("ec.pub");
    cr_assert_eq(a.alg, AUTH_ES256);
}

static void teardown(void)
{
    auth_claims_free(&c);
    auth_free(&a);
}

/* ---- HS256 ---- */

TestSuite(auth_hs256, .init = setup_hs, .fini = teardown);

Test(auth_hs256, verify_accepts_valid_token_and_returns_compact_claims)
{
    char *h = bearer_hs256(claims_exp("\"sub\": \"user-1\", \"role\": \"authenticated\""));
    verify_ok(h);
    json_error_t e;
    json_t *got = json_loads(c.claims_json, 0, &e);
    cr_assert_not_null(got, "claims_json not JSON: %s", c.claims_json);
    cr_assert_str_eq(json_string_value(json_object_get(got, "sub")), "user-1");
    cr_assert_eq(json_integer_value(json_object_get(got, "exp")), now + 3600);
    cr_assert_null(strchr(c.claims_json, ' '), "not compact: %s", c.claims_json);
    cr_assert_str_eq(c.subject, "user-1");
    cr_assert_eq(c.tenant_count, 0);
    cr_assert_str_eq(c.tenant, "");
    cr_assert_not(c.all_tenants);
    json_decref(got);
    free(h);
}

Test(auth_hs256, verify_accepts_lowercase_scheme_and_several_spaces)
{
    char *h = bearer_hs256(claims_exp(""));
    char alt[4096];
    snprintf(alt, sizeof alt, "bEARER    %s  ", h + strlen("Bearer "));
    verify_ok(alt);
    free(h);
}

Test(auth_hs256, verify_accepts_token_signed_by_openssl_command)
{
    /* The dev token of deploy/local is signed by the openssl command, not by libjwt. */
    char cmd[2048], tok[2048] = "";
    snprintf(cmd, sizeof cmd,
             "b() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }; "
             "h=$(printf '%%s' '{\"alg\":\"HS256\",\"typ\":\"JWT\"}' | b); "
             "p=$(printf '%%s' '{\"tenant_id\":\"t1\",\"exp\":%lld}' | b); "
             "s=$(printf '%%s' \"$h.$p\" | openssl dgst -sha256 -hmac '%s' -binary | b); "
             "printf 'Bearer %%s' \"$h.$p.$s\"",
             (long long)now + 60, SECRET);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    cr_assert_not_null(fgets(tok, sizeof tok, p));
    cr_assert_eq(pclose(p), 0);
    verify_ok(tok);
    cr_assert_str_eq(c.tenant, "t1");
}

Test(auth_hs256, verify_refuses_missing_header)
{
    verify_refused(NULL, "missing bearer token");
    verify_refused("", "missing bearer token");
    verify_refused("Bearer", "missing bearer token");
    verify_refused("Bearer    ", "missing bearer token");
}

Test(auth_hs256, verify_refuses_other_schemes)
{
    char *h = bearer_hs256(claims_exp(""));
    char alt[4096];
    snprintf(alt, sizeof alt, "Basic %s", h + strlen("Bearer "));
    verify_refused(alt, "missing bearer token");
    snprintf(alt, sizeof alt, "Bearer%s", h + strlen("Bearer "));
    verify_refused(alt, "missing bearer token");
    snprintf(alt, sizeof alt, "Bearer\t%s", h + strlen("Bearer "));
    verify_refused(alt, "missing bearer token");
    verify_refused(h + strlen("Bearer "), "missing bearer token");
    free(h);
}

Test(auth_hs256, verify_refuses_token_without_three_parts)
{
    char *h = bearer_hs256(claims_exp(""));
    char two[4096];
    snprintf(two, sizeof two, "%s", h);
    *strrchr(two, '.') = '\0';
    verify_refused(two, "malformed token");
    char four[4096];
    snprintf(four, sizeof four, "%s.AAAA", h);
    verify_refused(four, "malformed token");
    verify_refused("Bearer ..", "malformed token");
    free(h);
}

Test(auth_hs256, verify_refuses_bad_base64)
{
    char *h = bearer_hs256(claims_exp(""));
    char bad[4096];
    /* '+' and '=' belong to plain base64, not base64url. */
    snprintf(bad, sizeof bad, "%s", h);
    strchr(bad, '.')[1] = '+';
    verify_refused(bad, "malformed token");
    snprintf(bad, sizeof bad, "%s==", h);
    verify_refused(bad, "malformed token");
    /* A signature segment of 4n+1 characters is no base64 at all. */
    snprintf(bad, sizeof bad, "%s", h);
    strcpy(strrchr(bad, '.') + 1, "AAAAA");
    verify_refused(bad, "malformed token");
    /* Spare bits must be zero: "AB" would be read as the same byte as "AA". */
    snprintf(bad, sizeof bad, "%s", h);
    strcpy(strrchr(bad, '.') + 1, "AB");
    verify_refused(bad, "malformed token");
    free(h);
}

Test(auth_hs256, verify_refuses_segments_that_are_not_json)
{
    verify_refused(bearer_raw("{\"alg\":\"HS256\"", claims_exp(""), SECRET), "malformed token");
    verify_refused(bearer_raw(hs_header, "{\"exp\":", SECRET), "malformed token");
    verify_refused(bearer_raw(hs_header, "", SECRET), "malformed token");
    verify_refused(bearer_raw("{\"typ\":\"JWT\"}", claims_exp(""), SECRET), "malformed token");
}

Test(auth_hs256, verify_refuses_payload_that_is_not_an_object)
{
    verify_refused(bearer_raw(hs_header, "[1,2]", SECRET), "malformed token");
    verify_refused(bearer_raw(hs_header, "\"text\"", SECRET), "malformed token");
    verify_refused(bearer_raw(hs_header, "42", SECRET), "malformed token");
}

Test(auth_hs256, verify_refuses_duplicate_claims)
{
    char payload[256];
    snprintf(payload, sizeof payload, "{\"exp\":%lld,\"tenant_id\":\"a\",\"tenant_id\":\"b\"}",
             (long long)now + 60);
    verify_refused(bearer_raw(hs_header, payload, SECRET), "malformed token");
}

Test(auth_hs256, verify_accepts_hand_built_token_so_raw_builder_is_sound)
{
    verify_ok(bearer_raw(hs_header, claims_exp("\"tenant_id\":\"t9\""), SECRET));
    cr_assert_str_eq(c.tenant, "t9");
}

Test(auth_hs256, verify_refuses_tampered_payload)
{
    char *h = bearer_hs256(claims_exp("\"tenant_id\":\"mine\""));
    char *other = bearer_hs256(claims_exp("\"tenant_id\":\"yours\""));
    /* Keep h's header and signature, take other's payload. */
    char forged[4096];
    const char *h_dot1 = strchr(h, '.'), *h_dot2 = strrchr(h, '.');
    const char *o_dot1 = strchr(other, '.'), *o_dot2 = strrchr(other, '.');
    snprintf(forged, sizeof forged, "%.*s%.*s%s", (int)(h_dot1 - h), h, (int)(o_dot2 - o_dot1),
             o_dot1, h_dot2);
    verify_refused(forged, "bad signature");
    free(h);
    free(other);
}

Test(auth_hs256, verify_refuses_token_signed_with_another_secret)
{
    const char *other = "another-secret-of-32-bytes-long!";
    char *h =
        bearer_jwt(JWT_ALG_HS256, (const unsigned char *)other, strlen(other), claims_exp(""));
    verify_refused(h, "bad signature");
    free(h);
}

Test(auth_hs256, verify_refuses_empty_signature)
{
    char *h = bearer_hs256(claims_exp(""));
    strrchr(h, '.')[1] = '\0';
    verify_refused(h, "bad signature");
    free(h);
}

Test(auth_hs256, verify_refuses_alg_none)
{
    char payload[128], tok[512];
    snprintf(payload, sizeof payload, "{\"exp\":%lld,\"role\":\"service_role\"}",
             (long long)now + 3600);
    char p64[256];
    b64url((const unsigned char *)payload, strlen(payload), p64);
    snprintf(tok, sizeof tok, "Bearer eyJhbGciOiJub25lIn0.%s.", p64);
    verify_refused(tok, "unexpected algorithm none");
    /* With a dummy signature too. */
    snprintf(tok, sizeof tok, "Bearer eyJhbGciOiJub25lIn0.%s.AAAA", p64);
    verify_refused(tok, "unexpected algorithm none");
}

Test(auth_hs256, verify_refuses_hs512_when_hs256_configured)
{
    char *h =
        bearer_jwt(JWT_ALG_HS512, (const unsigned char *)SECRET, strlen(SECRET), claims_exp(""));
    verify_refused(h, "unexpected algorithm HS512");
    free(h);
    h = bearer_jwt(JWT_ALG_HS384, (const unsigned char *)SECRET, strlen(SECRET), claims_exp(""));
    verify_refused(h, "unexpected algorithm HS384");
    free(h);
}

Test(auth_hs256, verify_names_only_known_algorithms)
{
    verify_refused(bearer_raw("{\"alg\":\"<script>\"}", claims_exp(""), SECRET),
                   "unexpected algorithm");
    verify_refused(bearer_raw("{\"alg\":\"hs256\"}", claims_exp(""), SECRET),
                   "unexpected algorithm");
}

Test(auth_hs256, verify_refuses_critical_header_extensions)
{
    verify_refused(
        bearer_raw("{\"alg\":\"HS256\",\"crit\":[\"b64\"],\"b64\":false}", claims_exp(""), SECRET),
        "unsupported critical header");
}

Test(auth_hs256, verify_refuses_expired_token_beyond_skew)
{
    char claims[128];
    snprintf(claims, sizeof claims, "{\"exp\":%lld}", (long long)now - AUTH_CLOCK_SKEW_S);
    char *h = bearer_hs256(claims);
    verify_refused(h, "token expired");
    free(h);
    snprintf(claims, sizeof claims, "{\"exp\":%lld}", (long long)now - 3600);
    h = bearer_hs256(claims);
    verify_refused(h, "token expired");
    free(h);
}

Test(auth_hs256, verify_accepts_recently_expired_token_within_skew)
{
    char claims[128];
    snprintf(claims, sizeof claims, "{\"exp\":%lld}", (long long)now - AUTH_CLOCK_SKEW_S + 1);
    char *h = bearer_hs256(claims);
    verify_ok(h);
    free(h);
}

Test(auth_hs256, verify_accepts_real_valued_exp)
{
    char claims[128];
    snprintf(claims, sizeof claims, "{\"exp\":%lld.5}", (long long)now + 10);
    verify_ok(bearer_raw(hs_header, claims, SECRET));
}

Test(auth_hs256, verify_refuses_token_not_yet_valid)
{
    char extra[64];
    snprintf(extra, sizeof extra, "\"nbf\":%lld", (long long)now + AUTH_CLOCK_SKEW_S + 1);
    char *h = bearer_hs256(claims_exp(extra));
    verify_refused(h, "token not yet valid");
    free(h);
}

Test(auth_hs256, verify_accepts_nbf_within_skew_or_past)
{
    char extra[64];
    snprintf(extra, sizeof extra, "\"nbf\":%lld", (long long)now + AUTH_CLOCK_SKEW_S);
    char *h = bearer_hs256(claims_exp(extra));
    verify_ok(h);
    free(h);
    auth_claims_free(&c);
    snprintf(extra, sizeof extra, "\"nbf\":%lld,\"iat\":%lld", (long long)now - 100,
             (long long)now - 100);
    h = bearer_hs256(claims_exp(extra));
    verify_ok(h);
    free(h);
}

Test(auth_hs256, verify_refuses_token_issued_in_the_future)
{
    char extra[64];
    snprintf(extra, sizeof extra, "\"iat\":%lld", (long long)now + AUTH_CLOCK_SKEW_S + 1);
    char *h = bearer_hs256(claims_exp(extra));
    verify_refused(h, "token issued in the future");
    free(h);
}

Test(auth_hs256, verify_accepts_iat_within_skew_or_null)
{
    char extra[64];
    snprintf(extra, sizeof extra, "\"iat\":%lld.5", (long long)now + AUTH_CLOCK_SKEW_S - 1);
    char *h = bearer_hs256(claims_exp(extra));
    verify_ok(h);
    free(h);
    auth_claims_free(&c);
    verify_ok(bearer_raw(hs_header, claims_exp("\"iat\":null"), SECRET));
}

Test(auth_hs256, verify_refuses_token_without_exp)
{
    char *h = bearer_hs256("{\"sub\":\"u\",\"tenant_id\":\"t1\"}");
    verify_refused(h, "missing exp claim");
    free(h);
}

Test(auth_hs256, verify_refuses_non_numeric_times)
{
    verify_refused(bearer_raw(hs_header, "{\"exp\":\"9999999999\"}", SECRET), "invalid exp claim");
    verify_refused(bearer_raw(hs_header, claims_exp("\"nbf\":true"), SECRET), "invalid nbf claim");
    verify_refused(bearer_raw(hs_header, claims_exp("\"iat\":\"yesterday\""), SECRET),
                   "invalid iat claim");
}

Test(auth_hs256, verify_refuses_overlong_token)
{
    char *big = malloc(AUTH_MAX_TOKEN_LEN + 64);
    strcpy(big, "Bearer ");
    memset(big + 7, 'A', AUTH_MAX_TOKEN_LEN + 1);
    big[7 + AUTH_MAX_TOKEN_LEN + 1] = '\0';
    verify_refused(big, "token too long");
    free(big);
}

Test(auth_hs256, verify_accepts_large_token_up_to_the_limit)
{
    /* A token just under 8 KiB, the size of a Supabase token with rich metadata. */
    char extra[6000];
    memset(extra, 0, sizeof extra);
    strcpy(extra, "\"pad\":\"");
    memset(extra + strlen(extra), 'x', 5500);
    strcat(extra, "\"");
    char *h = bearer_hs256(claims_exp(extra));
    cr_assert_leq(strlen(h) - 7, AUTH_MAX_TOKEN_LEN);
    verify_ok(h);
    free(h);
}

Test(auth_hs256, reasons_never_contain_the_token)
{
    char *h = bearer_hs256(claims_exp("\"tenant_id\":\"t1\""));
    const char *payload = strchr(h, '.') + 1;
    char bad[4096];
    snprintf(bad, sizeof bad, "%s", h);
    strrchr(bad, '.')[2] ^= 1; /* flip a signature character */
    cr_assert_eq(auth_verify(&a, bad, now, &c, why, sizeof why), -EACCES);
    cr_assert_null(strstr(why, "eyJ"));
    cr_assert_eq(auth_verify(&a, h, now + 7200, &c, why, sizeof why), -EACCES);
    cr_assert_null(strstr(why, "eyJ"));
    cr_assert(strncmp(why, payload, 8) != 0);
    free(h);
}

/* ---- claims and tenants ---- */

Test(auth_hs256, tenant_id_names_one_tenant)
{
    char *h = bearer_hs256(claims_exp("\"tenant_id\":\"acme\""));
    verify_ok(h);
    cr_assert_eq(c.tenant_count, 1);
    cr_assert_str_eq(c.tenant, "acme");
    free(h);
}

Test(auth_hs256, tenant_ids_with_one_element_names_one_tenant)
{
    char *h = bearer_hs256(claims_exp("\"tenant_ids\":[\"acme\"]"));
    verify_ok(h);
    cr_assert_eq(c.tenant_count, 1);
    cr_assert_str_eq(c.tenant, "acme");
    free(h);
}

Test(auth_hs256, tenant_ids_with_several_elements_names_no_single_tenant)
{
    char *h = bearer_hs256(claims_exp("\"tenant_ids\":[\"a\",\"b\",\"c\"]"));
    verify_ok(h);
    cr_assert_eq(c.tenant_count, 3);
    cr_assert_str_eq(c.tenant, "");
    free(h);
}

Test(auth_hs256, tenants_are_counted_once_across_claims)
{
    char *h = bearer_hs256(claims_exp("\"tenant_id\":\"a\",\"tenant_ids\":[\"a\",\"a\"],"
                                      "\"app_metadata\":{\"tenant_id\":\"a\"}"));
    verify_ok(h);
    cr_assert_eq(c.tenant_count, 1);
    cr_assert_str_eq(c.tenant, "a");
    free(h);
}

Test(auth_hs256, app_metadata_tenant_id_names_one_tenant)
{
    char *h =
        bearer_hs256(claims_exp("\"role\":\"authenticated\","
                                "\"app_metadata\":{\"provider\":\"email\",\"tenant_id\":\"t7\"}"));
    verify_ok(h);
    cr_assert_eq(c.tenant_count, 1);
    cr_assert_str_eq(c.tenant, "t7");
    cr_assert_not(c.all_tenants);
    free(h);
}

Test(auth_hs256, app_metadata_tenant_ids_are_counted)
{
    char *h = bearer_hs256(claims_exp("\"app_metadata\":{\"tenant_ids\":[\"t7\"]}"));
    verify_ok(h);
    cr_assert_eq(c.tenant_count, 1);
    cr_assert_str_eq(c.tenant, "t7");
    free(h);
    auth_claims_free(&c);
    h = bearer_hs256(
        claims_exp("\"tenant_id\":\"t1\",\"app_metadata\":{\"tenant_ids\":[\"t7\",\"t8\"]}"));
    verify_ok(h);
    cr_assert_eq(c.tenant_count, 3);
    cr_assert_str_eq(c.tenant, "");
    free(h);
}

Test(auth_hs256, app_metadata_that_is_not_an_object_is_ignored)
{
    char *h = bearer_hs256(claims_exp("\"app_metadata\":\"t7\",\"tenant_ids\":[]"));
    verify_ok(h);
    cr_assert_eq(c.tenant_count, 0);
    free(h);
}

Test(auth_hs256, service_role_allows_all_tenants)
{
    char *h = bearer_hs256(claims_exp("\"role\":\"service_role\""));
    verify_ok(h);
    cr_assert(c.all_tenants);
    cr_assert_eq(c.tenant_count, 0);
    free(h);
    auth_claims_free(&c);
    h = bearer_hs256(claims_exp("\"app_metadata\":{\"role\":\"service_role\"}"));
    verify_ok(h);
    cr_assert_not(c.all_tenants, "only the top-level role counts, as in SQL");
    free(h);
}

Test(auth_hs256, null_tenant_claims_count_as_absent)
{
    char *h = bearer_hs256(claims_exp("\"tenant_id\":null,\"app_metadata\":{\"tenant_ids\":null}"));
    verify_ok(h);
    cr_assert_eq(c.tenant_count, 0);
    free(h);
}

Test(auth_hs256, verify_refuses_ill_typed_or_oversized_tenants)
{
    char long_tenant[128];
    memset(long_tenant, 0, sizeof long_tenant);
    strcpy(long_tenant, "\"tenant_id\":\"");
    memset(long_tenant + strlen(long_tenant), 't', AUTH_MAX_TENANT_LEN + 1);
    strcat(long_tenant, "\"");
    const char *bad[] = {"\"tenant_id\":42",
                         "\"tenant_id\":\"\"",
                         "\"tenant_ids\":\"a\"",
                         "\"tenant_ids\":[\"a\",7]",
                         "\"app_metadata\":{\"tenant_id\":[\"a\"]}",
                         long_tenant};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *h = bearer_hs256(claims_exp(bad[i]));
        verify_refused(h, "invalid tenant claim");
        free(h);
    }
}

Test(auth_hs256, tenant_of_exactly_64_bytes_is_kept)
{
    char extra[128] = "\"tenant_id\":\"";
    memset(extra + strlen(extra), 'q', AUTH_MAX_TENANT_LEN);
    strcat(extra, "\"");
    char *h = bearer_hs256(claims_exp(extra));
    verify_ok(h);
    cr_assert_eq(strlen(c.tenant), AUTH_MAX_TENANT_LEN);
    free(h);
}

Test(auth_hs256, subject_is_sanitised_for_logs)
{
    char *h = bearer_hs256(claims_exp("\"sub\":\"a\\nb\\u001bc\""));
    verify_ok(h);
    cr_assert_str_eq(c.subject, "a?b?c");
    free(h);
    auth_claims_free(&c);
    h = bearer_hs256(claims_exp("\"sub\":12"));
    verify_ok(h);
    cr_assert_str_eq(c.subject, "");
    free(h);
}

/* ---- RS256 ---- */

TestSuite(auth_rs256, .init = setup_rsa, .fini = teardown);

Test(auth_rs256, verify_accepts_valid_token)
{
    size_t n;
    const unsigned char *priv = slurp("rsa.pem", &n);
    char *h = bearer_jwt(JWT_ALG_RS256, priv, n, claims_exp("\"tenant_id\":\"r1\",\"sub\":\"s\""));
    verify_ok(h);
    cr_assert_str_eq(c.tenant, "r1");
    cr_assert_str_eq(c.subject, "s");
    free(h);
}

Test(auth_rs256, verify_accepts_pkcs1_public_key_file)
{
    auth_free(&a);
    setup_key("rsa_pkcs1.pub");
    cr_assert_eq(a.alg, AUTH_RS256);
    size_t n;
    const unsigned char *priv = slurp("rsa.pem", &n);
    char *h = bearer_jwt(JWT_ALG_RS256, priv, n, claims_exp(""));
    verify_ok(h);
    free(h);
}

Test(auth_rs256, verify_refuses_tampered_payload)
{
    size_t n;
    const unsigned char *priv = slurp("rsa.pem", &n);
    char *h = bearer_jwt(JWT_ALG_RS256, priv, n, claims_exp("\"tenant_id\":\"mine\""));
    char *other = bearer_jwt(JWT_ALG_RS256, priv, n, claims_exp("\"role\":\"service_role\""));
    char forged[4096];
    const char *h_dot1 = strchr(h, '.'), *h_dot2 = strrchr(h, '.');
    const char *o_dot1 = strchr(other, '.'), *o_dot2 = strrchr(other, '.');
    snprintf(forged, sizeof forged, "%.*s%.*s%s", (int)(h_dot1 - h), h, (int)(o_dot2 - o_dot1),
             o_dot1, h_dot2);
    verify_refused(forged, "bad signature");
    free(h);
    free(other);
}

Test(auth_rs256, verify_refuses_hs256_token_signed_with_the_public_key_pem)
{
    /* The algorithm-confusion attack: the attacker knows the public key and uses its
     * PEM text as an HMAC secret. Try the file as given and as auth keeps it. */
    size_t n;
    const unsigned char *pub = slurp("rsa.pub", &n);
    char *h = bearer_jwt(JWT_ALG_HS256, pub, n, claims_exp("\"role\":\"service_role\""));
    verify_refused(h, "unexpected algorithm HS256");
    free(h);
    h = bearer_jwt(JWT_ALG_HS256, a.key, a.key_len, claims_exp("\"role\":\"service_role\""));
    verify_refused(h, "unexpected algorithm HS256");
    free(h);
}

Test(auth_rs256, verify_refuses_es256_token)
{
    size_t n;
    const unsigned char *priv = slurp("ec.pem", &n);
    char *h = bearer_jwt(JWT_ALG_ES256, priv, n, claims_exp(""));
    verify_refused(h, "unexpected algorithm ES256");
    free(h);
}

Test(auth_rs256, verify_refuses_expired_token)
{
    size_t n;
    const unsigned char *priv = slurp("rsa.pem", &n);
    char claims[64];
    snprintf(claims, sizeof claims, "{\"exp\":%lld}", (long long)now - 3600);
    char *h = bearer_jwt(JWT_ALG_RS256, priv, n, claims);
    verify_refused(h, "token expired");
    free(h);
}

/* ---- ES256 ---- */

TestSuite(auth_es256, .init = setup_ec, .fini = teardown);

Test(auth_es256, verify_accepts_valid_token)
{
    size_t n;
    const unsigned char *priv = slurp("ec.pem", &n);
    char *h = bearer_jwt(JWT_ALG_ES256, priv, n,
                         claims_exp("\"app_metadata\":{\"tenant_ids\":[\"e1\"]}"));
    /* JWS wants the raw 64-byte R||S signature (86 base64url characters), not DER. */
    cr_assert_eq(strlen(strrchr(h, '.') + 1), 86);
    verify_ok(h);
    cr_assert_str_eq(c.tenant, "e1");
    free(h);
}

Test(auth_es256, verify_refuses_token_signed_by_another_key)
{
    size_t n;
    const unsigned char *priv = slurp("ec2.pem", &n);
    char *h = bearer_jwt(JWT_ALG_ES256, priv, n, claims_exp(""));
    verify_refused(h, "bad signature");
    free(h);
}

Test(auth_es256, verify_refuses_rs256_token)
{
    size_t n;
    const unsigned char *priv = slurp("rsa.pem", &n);
    char *h = bearer_jwt(JWT_ALG_RS256, priv, n, claims_exp(""));
    verify_refused(h, "unexpected algorithm RS256");
    free(h);
}

Test(auth_es256, verify_refuses_hs256_token_signed_with_the_public_key_pem)
{
    size_t n;
    const unsigned char *pub = slurp("ec.pub", &n);
    char *h = bearer_jwt(JWT_ALG_HS256, pub, n, claims_exp(""));
    verify_refused(h, "unexpected algorithm HS256");
    free(h);
}

/* ---- start-up ---- */

static void setup_init(void)
{
    memset(&a, 0, sizeof a);
    why[0] = '\0';
}

TestSuite(auth_init, .init = setup_init, .fini = teardown);

static void init_fails(const char *secret, const char *file, const char *expect_in_reason)
{
    int rc = auth_init(&a, secret, file, why, sizeof why);
    cr_assert_eq(rc, -EINVAL, "rc %d", rc);
    cr_assert_not_null(strstr(why, expect_in_reason), "reason \"%s\" lacks \"%s\"", why,
                       expect_in_reason);
    cr_assert_null(a.key);
}

Test(auth_init, refuses_both_secret_and_key_file)
{
    init_fails(SECRET, key_path("rsa.pub"), "EXECTIME_JWT_SECRET and EXECTIME_JWT_PUBLIC_KEY_FILE");
}

Test(auth_init, refuses_neither_secret_nor_key_file)
{
    init_fails(NULL, NULL, "EXECTIME_JWT_SECRET");
    cr_assert_not_null(strstr(why, "EXECTIME_JWT_PUBLIC_KEY_FILE"));
    init_fails("", "", "EXECTIME_JWT_SECRET");
}

Test(auth_init, refuses_short_secret_and_accepts_16_bytes)
{
    init_fails("0123456789abcde", NULL, "EXECTIME_JWT_SECRET");
    cr_assert_not_null(strstr(why, "15 bytes"));
    cr_assert_eq(auth_init(&a, "0123456789abcdef", NULL, why, sizeof why), 0);
    cr_assert_eq(a.alg, AUTH_HS256);
    cr_assert_eq(a.key_len, 16);
}

Test(auth_init, empty_secret_counts_as_unset_beside_a_key_file)
{
    cr_assert_eq(auth_init(&a, "", key_path("ec.pub"), why, sizeof why), 0, "%s", why);
    cr_assert_eq(a.alg, AUTH_ES256);
}

Test(auth_init, refuses_unreadable_key_file)
{
    init_fails(NULL, key_path("does-not-exist.pem"), "EXECTIME_JWT_PUBLIC_KEY_FILE");
    cr_assert_not_null(strstr(why, "does-not-exist.pem"));
}

Test(auth_init, refuses_files_that_are_not_public_keys)
{
    init_fails(NULL, key_path("cert.pem"), "EXECTIME_JWT_PUBLIC_KEY_FILE");
    init_fails(NULL, key_path("junk.txt"), "not a PEM public key");
    init_fails(NULL, key_path("bad.pub"), "not a PEM public key");
}

Test(auth_init, refuses_private_key_file)
{
    init_fails(NULL, key_path("rsa.pem"), "private key");
}

Test(auth_init, refuses_unsupported_key_types)
{
    init_fails(NULL, key_path("ec384.pub"), "P-256");
    init_fails(NULL, key_path("ed.pub"), "want RSA or EC P-256");
    init_fails(NULL, key_path("rsa1024.pub"), "1024 bits");
}

Test(auth_init, detects_algorithm_from_the_key)
{
    cr_assert_eq(auth_init(&a, NULL, key_path("rsa.pub"), why, sizeof why), 0, "%s", why);
    cr_assert_eq(a.alg, AUTH_RS256);
    cr_assert_str_eq(auth_alg_name(a.alg), "RS256");
    cr_assert_not_null(strstr((const char *)a.key, "BEGIN PUBLIC KEY"));
    auth_free(&a);
    cr_assert_eq(auth_init(&a, NULL, key_path("ec.pub"), why, sizeof why), 0, "%s", why);
    cr_assert_eq(a.alg, AUTH_ES256);
}

Test(auth_init, free_is_safe_twice)
{
    cr_assert_eq(auth_init(&a, SECRET, NULL, why, sizeof why), 0);
    auth_free(&a);
    auth_free(&a);
    cr_assert_null(a.key);
}
