/*
 * auth — bearer token verification for the statistics API; see auth.h for the contract.
 *
 * Debian 12's libjwt (1.10) verifies a signature but nothing else that matters here: it
 * takes any HMAC size for a secret, checks neither exp nor nbf, and would HMAC an HS256
 * token with a public key's PEM text. So this module parses the token itself first
 * (strict base64url, JSON objects, the header's alg against the configured one), hands
 * the very same bytes to jwt_decode only for the signature, and then checks the times
 * and reads the claims from its own parse of the payload the signature covered.
 */
#include "auth.h"

#include <errno.h>
#include <jansson.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define KEY_FILE_MAX (64 * 1024) /* a PEM public key is a few KiB; refuse anything huge */

/* The variables named in start-up errors, as the operator types them. */
#define SECRET_VAR "EXECTIME_JWT_SECRET"
#define KEY_FILE_VAR "EXECTIME_JWT_PUBLIC_KEY_FILE"

const char *auth_alg_name(auth_alg_t alg)
{
    switch (alg) {
    case AUTH_HS256: return "HS256";
    case AUTH_RS256: return "RS256";
    case AUTH_ES256: return "ES256";
    }
    return "?";
}

static jwt_alg_t to_jwt_alg(auth_alg_t alg)
{
    switch (alg) {
    case AUTH_HS256: return JWT_ALG_HS256;
    case AUTH_RS256: return JWT_ALG_RS256;
    case AUTH_ES256: return JWT_ALG_ES256;
    }
    return JWT_ALG_INVAL;
}

static bool is_set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

/* Reads at most KEY_FILE_MAX bytes of path into a NUL-terminated malloc'd buffer. */
static int read_key_file(const char *path, char **out, size_t *out_len, char *err, size_t err_cap)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, err_cap, KEY_FILE_VAR ": cannot open %s: %s", path, strerror(errno));
        return -EINVAL;
    }
    char *buf = malloc(KEY_FILE_MAX + 1);
    if (buf == NULL) {
        fclose(f);
        snprintf(err, err_cap, KEY_FILE_VAR ": out of memory");
        return -ENOMEM;
    }
    size_t n = fread(buf, 1, KEY_FILE_MAX + 1, f);
    int read_failed = ferror(f);
    int saved_errno = errno;
    fclose(f);
    if (read_failed) {
        snprintf(err, err_cap, KEY_FILE_VAR ": cannot read %s: %s", path, strerror(saved_errno));
        free(buf);
        return -EINVAL;
    }
    if (n > KEY_FILE_MAX) {
        snprintf(err, err_cap, KEY_FILE_VAR ": %s is larger than %d bytes, not a public key", path,
                 KEY_FILE_MAX);
        free(buf);
        return -EINVAL;
    }
    buf[n] = '\0';
    *out = buf;
    *out_len = n;
    return 0;
}

/*
 * Picks the algorithm from the key's type and keeps the key re-encoded as SPKI PEM, so
 * that libjwt later reads exactly the key checked here (not, say, a second PEM block of
 * the same file) whatever PEM flavour the operator gave.
 */
static int load_public_key(auth_t *a, const char *path, char *err, size_t err_cap)
{
    char *pem = NULL;
    size_t pem_len = 0;
    int rc = read_key_file(path, &pem, &pem_len, err, err_cap);
    if (rc < 0)
        return rc;

    /* A private key would decode too (it holds the public one); the verifier has no
     * business holding it, so say so rather than accept it silently. */
    if (strstr(pem, "PRIVATE KEY-----") != NULL) {
        snprintf(err, err_cap, KEY_FILE_VAR ": %s holds a private key; give the public key", path);
        free(pem);
        return -EINVAL;
    }

    EVP_PKEY *pkey = NULL;
    OSSL_DECODER_CTX *dctx =
        OSSL_DECODER_CTX_new_for_pkey(&pkey, "PEM", NULL, NULL, EVP_PKEY_PUBLIC_KEY, NULL, NULL);
    const unsigned char *p = (const unsigned char *)pem;
    size_t left = pem_len;
    int ok = dctx != NULL && OSSL_DECODER_from_data(dctx, &p, &left) == 1 && pkey != NULL;
    OSSL_DECODER_CTX_free(dctx);
    free(pem);
    if (!ok) {
        snprintf(err, err_cap, KEY_FILE_VAR ": %s is not a PEM public key", path);
        rc = -EINVAL;
        goto out;
    }

    if (EVP_PKEY_is_a(pkey, "RSA")) {
        int bits = EVP_PKEY_get_bits(pkey);
        if (bits < AUTH_MIN_RSA_BITS) {
            snprintf(err, err_cap, KEY_FILE_VAR ": %s: RSA key of %d bits, want at least %d", path,
                     bits, AUTH_MIN_RSA_BITS);
            rc = -EINVAL;
            goto out;
        }
        a->alg = AUTH_RS256;
    } else if (EVP_PKEY_is_a(pkey, "EC")) {
        char group[64] = "";
        size_t group_len = 0;
        if (EVP_PKEY_get_group_name(pkey, group, sizeof group, &group_len) != 1 ||
            strcmp(group, "prime256v1") != 0) {
            snprintf(err, err_cap, KEY_FILE_VAR ": %s: EC key on curve %s, want P-256 (ES256)",
                     path, group[0] ? group : "?");
            rc = -EINVAL;
            goto out;
        }
        a->alg = AUTH_ES256;
    } else {
        snprintf(err, err_cap, KEY_FILE_VAR ": %s: unsupported %s key, want RSA or EC P-256", path,
                 EVP_PKEY_get0_type_name(pkey) ? EVP_PKEY_get0_type_name(pkey) : "");
        rc = -EINVAL;
        goto out;
    }

    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    long len = 0;
    if (bio == NULL || PEM_write_bio_PUBKEY(bio, pkey) != 1 ||
        (len = BIO_get_mem_data(bio, &data)) <= 0 || (a->key = malloc((size_t)len + 1)) == NULL) {
        BIO_free(bio);
        snprintf(err, err_cap, KEY_FILE_VAR ": out of memory re-encoding %s", path);
        rc = -ENOMEM;
        goto out;
    }
    memcpy(a->key, data, (size_t)len);
    a->key[len] = '\0';
    a->key_len = (size_t)len;
    BIO_free(bio);
    rc = 0;
out:
    EVP_PKEY_free(pkey);
    /* OpenSSL's error queue is per thread and shared with libpq's TLS: leave it empty. */
    ERR_clear_error();
    return rc;
}

int auth_init(auth_t *a, const char *secret, const char *public_key_file, char *err, size_t err_cap)
{
    memset(a, 0, sizeof *a);
    if (err_cap > 0)
        err[0] = '\0';
    if (is_set(secret) && is_set(public_key_file)) {
        snprintf(err, err_cap, SECRET_VAR " and " KEY_FILE_VAR " are both set; set only one");
        return -EINVAL;
    }
    if (is_set(public_key_file))
        return load_public_key(a, public_key_file, err, err_cap);
    if (!is_set(secret)) {
        snprintf(err, err_cap,
                 "set " SECRET_VAR " (HS256) or " KEY_FILE_VAR " (RS256/ES256) to verify tokens");
        return -EINVAL;
    }
    size_t len = strlen(secret);
    if (len < AUTH_MIN_SECRET_LEN) {
        snprintf(err, err_cap, SECRET_VAR " is %zu bytes; an HS256 secret needs at least %d", len,
                 AUTH_MIN_SECRET_LEN);
        return -EINVAL;
    }
    a->key = malloc(len + 1);
    if (a->key == NULL) {
        snprintf(err, err_cap, SECRET_VAR ": out of memory");
        return -ENOMEM;
    }
    memcpy(a->key, secret, len + 1);
    a->key_len = len;
    a->alg = AUTH_HS256;
    return 0;
}

void auth_free(auth_t *a)
{
    if (a->key != NULL) {
        /* The secret should not linger in freed heap memory. */
        volatile unsigned char *k = a->key;
        for (size_t i = 0; i < a->key_len; i++)
            k[i] = 0;
        free(a->key);
    }
    a->key = NULL;
    a->key_len = 0;
}

void auth_claims_free(auth_claims_t *c)
{
    free(c->claims_json);
    memset(c, 0, sizeof *c);
}

static int refuse(char *why, size_t why_cap, const char *reason)
{
    snprintf(why, why_cap, "%s", reason);
    return -EACCES;
}

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/*
 * Decodes unpadded base64url (RFC 7515 section 2) into out, which holds at least
 * len * 3 / 4 bytes. Strict: any other byte, a length of 1 mod 4 or non-zero spare bits
 * make it fail, so one token has one reading. Returns the decoded length or -1.
 */
static long b64url_decode(const char *in, size_t len, unsigned char *out)
{
    if (len % 4 == 1)
        return -1;
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0)
        return -1;
    return (long)n;
}

/* Decodes one base64url segment and parses it as a JSON object; NULL if it is not one. */
static json_t *decode_json_segment(const char *seg, size_t len)
{
    unsigned char *buf = malloc(len * 3 / 4 + 1);
    if (buf == NULL)
        return NULL;
    long n = b64url_decode(seg, len, buf);
    json_t *j = NULL;
    if (n > 0) {
        json_error_t jerr;
        /* Duplicate keys would let this parse and PostgreSQL's jsonb (last one wins)
         * read different claims from one token; refuse them. */
        j = json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
        if (j != NULL && !json_is_object(j)) {
            json_decref(j);
            j = NULL;
        }
    }
    free(buf);
    return j;
}

/*
 * Splits "Bearer <token>" (scheme case-insensitive, one or more spaces, trailing
 * whitespace ignored). Returns 0 with the token's span, or -EACCES.
 */
static int bearer_token(const char *authorization, const char **tok, size_t *tok_len, char *why,
                        size_t why_cap)
{
    static const char scheme[] = "Bearer";
    const size_t scheme_len = sizeof scheme - 1;
    if (authorization == NULL || strncasecmp(authorization, scheme, scheme_len) != 0 ||
        authorization[scheme_len] != ' ')
        return refuse(why, why_cap, "missing bearer token");
    const char *t = authorization + scheme_len;
    while (*t == ' ')
        t++;
    size_t n = strlen(t);
    while (n > 0 && (t[n - 1] == ' ' || t[n - 1] == '\t'))
        n--;
    if (n == 0)
        return refuse(why, why_cap, "missing bearer token");
    if (n > AUTH_MAX_TOKEN_LEN)
        return refuse(why, why_cap, "token too long");
    *tok = t;
    *tok_len = n;
    return 0;
}

/* Checks the header's alg (and crit) against the configured algorithm. */
static int check_header(const auth_t *a, const json_t *header, char *why, size_t why_cap)
{
    const char *alg = json_string_value(json_object_get(header, "alg"));
    if (alg == NULL)
        return refuse(why, why_cap, "malformed token");
    if (strcmp(alg, auth_alg_name(a->alg)) != 0) {
        /* Name the algorithm only when it is a known one: the header is the client's
         * text and goes no further than a fixed vocabulary (libjwt matches names
         * case-insensitively, hence the exact comparison). */
        const char *known = jwt_alg_str(jwt_str_alg(alg));
        if (known != NULL && strcmp(alg, known) == 0)
            snprintf(why, why_cap, "unexpected algorithm %s", alg);
        else
            snprintf(why, why_cap, "unexpected algorithm");
        return -EACCES;
    }
    /* RFC 7515 4.1.11: a recipient that does not understand every crit extension must
     * refuse the token; this one understands none. */
    if (json_object_get(header, "crit") != NULL)
        return refuse(why, why_cap, "unsupported critical header");
    return 0;
}

/*
 * exp is required and nbf honoured, each with AUTH_CLOCK_SKEW_S of slack. iat, when
 * present, must be a time not in the future (with the same slack), as PostgREST checks:
 * a token "issued" later than now comes from a wrong clock or was not minted by the
 * issuer at all. No maximum lifetime is imposed: long-lived service tokens (Supabase's
 * service_role key is valid for years) are the issuer's choice; docs/security.md says so.
 */
static int check_times(const json_t *claims, int64_t now_s, char *why, size_t why_cap)
{
    const json_t *exp = json_object_get(claims, "exp");
    if (exp == NULL || json_is_null(exp))
        return refuse(why, why_cap, "missing exp claim");
    if (!json_is_number(exp))
        return refuse(why, why_cap, "invalid exp claim");
    /* Compare in double: exp may be a real, and a huge integer must not overflow. Every
     * realistic time is exact in a double. */
    if (json_number_value(exp) <= (double)now_s - AUTH_CLOCK_SKEW_S)
        return refuse(why, why_cap, "token expired");

    const json_t *nbf = json_object_get(claims, "nbf");
    if (nbf != NULL && !json_is_null(nbf)) {
        if (!json_is_number(nbf))
            return refuse(why, why_cap, "invalid nbf claim");
        if (json_number_value(nbf) > (double)now_s + AUTH_CLOCK_SKEW_S)
            return refuse(why, why_cap, "token not yet valid");
    }

    const json_t *iat = json_object_get(claims, "iat");
    if (iat != NULL && !json_is_null(iat)) {
        if (!json_is_number(iat))
            return refuse(why, why_cap, "invalid iat claim");
        if (json_number_value(iat) > (double)now_s + AUTH_CLOCK_SKEW_S)
            return refuse(why, why_cap, "token issued in the future");
    }
    return 0;
}

/* Adds one tenant claim value to the set; false if it is not a 1–64 byte string. */
static bool add_tenant(json_t *set, const json_t *v)
{
    if (!json_is_string(v))
        return false;
    size_t len = json_string_length(v);
    if (len < 1 || len > AUTH_MAX_TENANT_LEN)
        return false;
    /* jansson refuses \u0000 on load, so the value is a proper C string. The value is
     * reused as the set's member: no constructor, and no clash with a json_null() of
     * another module linked beside jansson. */
    return json_object_set(set, json_string_value(v), (json_t *)v) == 0;
}

/*
 * Collects tenant_id and tenant_ids from one object (the claims or app_metadata), the
 * same places exectime.allowed_tenants() reads. null counts as absent; any other
 * ill-typed value refuses the token rather than quietly narrowing or widening it.
 */
static bool collect_tenants(json_t *set, const json_t *obj)
{
    const json_t *one = json_object_get(obj, "tenant_id");
    if (one != NULL && !json_is_null(one) && !add_tenant(set, one))
        return false;
    const json_t *many = json_object_get(obj, "tenant_ids");
    if (many != NULL && !json_is_null(many)) {
        if (!json_is_array(many))
            return false;
        size_t i;
        const json_t *v;
        json_array_foreach(many, i, v)
        {
            if (!add_tenant(set, v))
                return false;
        }
    }
    return true;
}

/* Fills out's tenant fields, role and subject from the verified claims. */
static int read_claims(const json_t *claims, auth_claims_t *out, char *why, size_t why_cap)
{
    json_t *set = json_object();
    if (set == NULL)
        return -ENOMEM;
    const json_t *app = json_object_get(claims, "app_metadata");
    bool ok = collect_tenants(set, claims) && (!json_is_object(app) || collect_tenants(set, app));
    if (!ok) {
        json_decref(set);
        return refuse(why, why_cap, "invalid tenant claim");
    }
    out->tenant_count = (int)json_object_size(set);
    if (out->tenant_count == 1) {
        const char *t = json_object_iter_key(json_object_iter(set));
        snprintf(out->tenant, sizeof out->tenant, "%s", t);
    }
    json_decref(set);

    const char *role = json_string_value(json_object_get(claims, "role"));
    out->all_tenants = role != NULL && strcmp(role, "service_role") == 0;

    const json_t *sub = json_object_get(claims, "sub");
    if (json_is_string(sub) && json_string_length(sub) <= AUTH_MAX_SUBJECT_LEN) {
        /* For logs only: a newline or escape in sub must not forge a log line. */
        const char *s = json_string_value(sub);
        size_t i = 0;
        for (; s[i] != '\0'; i++)
            out->subject[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
        out->subject[i] = '\0';
    }
    return 0;
}

/*
 * The signature, by libjwt, over the exact token text already parsed above. Returns 0,
 * -EACCES or -ENOMEM.
 */
static int check_signature(const auth_t *a, const char *tok, size_t tok_len, char *why,
                           size_t why_cap)
{
    char *copy = malloc(tok_len + 1);
    if (copy == NULL)
        return -ENOMEM;
    memcpy(copy, tok, tok_len);
    copy[tok_len] = '\0';
    jwt_t *jwt = NULL;
    int rc = jwt_decode(&jwt, copy, a->key, (int)a->key_len);
    free(copy);
    if (rc == ENOMEM) {
        rc = -ENOMEM;
    } else if (rc != 0 || jwt == NULL) {
        rc = refuse(why, why_cap, "bad signature");
    } else if (jwt_get_alg(jwt) != to_jwt_alg(a->alg)) {
        /* check_header already saw alg; this guards against libjwt reading it otherwise. */
        rc = refuse(why, why_cap, "unexpected algorithm");
    } else {
        rc = 0;
    }
    jwt_free(jwt);
    /* A failed verification leaves OpenSSL errors queued on this thread; libpq's TLS on
     * the same thread must not find them. */
    ERR_clear_error();
    return rc;
}

int auth_verify(const auth_t *a, const char *authorization, int64_t now_s, auth_claims_t *out,
                char *why, size_t why_cap)
{
    memset(out, 0, sizeof *out);
    if (why_cap > 0)
        why[0] = '\0';

    const char *tok = NULL;
    size_t tok_len = 0;
    int rc = bearer_token(authorization, &tok, &tok_len, why, why_cap);
    if (rc < 0)
        return rc;

    /* header.payload.signature: exactly two dots, three non-empty segments. */
    const char *dot1 = memchr(tok, '.', tok_len);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', tok_len - (size_t)(dot1 + 1 - tok)) : NULL;
    if (dot1 == NULL || dot2 == NULL || memchr(dot2 + 1, '.', tok_len - (size_t)(dot2 + 1 - tok)))
        return refuse(why, why_cap, "malformed token");
    size_t header_len = (size_t)(dot1 - tok);
    size_t payload_len = (size_t)(dot2 - dot1 - 1);
    size_t sig_len = tok_len - (size_t)(dot2 + 1 - tok);

    json_t *header = decode_json_segment(tok, header_len);
    if (header == NULL)
        return refuse(why, why_cap, "malformed token");
    rc = check_header(a, header, why, why_cap);
    json_decref(header);
    if (rc < 0)
        return rc;

    json_t *claims = decode_json_segment(dot1 + 1, payload_len);
    if (claims == NULL)
        return refuse(why, why_cap, "malformed token");

    /* The signature segment must be proper base64url too; libjwt is more lenient. An
     * empty one is an unsigned token whatever alg claims. */
    unsigned char *sig = malloc(sig_len * 3 / 4 + 1);
    if (sig == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    long sig_n = b64url_decode(dot2 + 1, sig_len, sig);
    free(sig);
    if (sig_n <= 0) {
        rc = refuse(why, why_cap, sig_len == 0 ? "bad signature" : "malformed token");
        goto out;
    }

    rc = check_signature(a, tok, tok_len, why, why_cap);
    if (rc < 0)
        goto out;
    rc = check_times(claims, now_s, why, why_cap);
    if (rc < 0)
        goto out;
    rc = read_claims(claims, out, why, why_cap);
    if (rc < 0)
        goto out;
    out->claims_json = json_dumps(claims, JSON_COMPACT);
    if (out->claims_json == NULL)
        rc = -ENOMEM;
out:
    json_decref(claims);
    if (rc < 0)
        auth_claims_free(out);
    if (rc == -ENOMEM)
        snprintf(why, why_cap, "out of memory");
    return rc;
}
