/* jws.h - JWKs and RFC 7638 thumbprints, ES256/ES384/RS256 JWS signing for ACME (RFC 8555), HS256 for EAB. */
#ifndef CF_JWS_H
#define CF_JWS_H

#include <openssl/evp.h>
#include <stddef.h>

#include "cf.h"


/*
 * The public JWK of a key as canonical JSON (RFC 7638 3.2): only the required members, in
 * lexicographic order, no white space.
 *   EC P-256: {"crv":"P-256","kty":"EC","x":"...","y":"..."} (x and y padded to 32 octets each)
 *   EC P-384: the same with "P-384", x and y padded to 48 octets (a certificate key, for keyCompromise)
 *   RSA:      {"e":"...","kty":"RSA","n":"..."} (big-endian unsigned, minimal octets)
 * Other key types and curves are refused. Returns a malloc'd string, or NULL with err set.
 */
char *jwk_json(EVP_PKEY *key, cf_err *err) CF_MUST;

/* RFC 7638 thumbprint: base64url(SHA-256(jwk_json)), 43 characters plus NUL written to out. */
int jwk_thumbprint(EVP_PKEY *key, char out[44], cf_err *err) CF_MUST;

/*
 * A flattened JWS JSON serialization (RFC 7515 7.2.2) as ACME wants it: protected header
 * {"alg":...,"nonce":...,"url":...} plus "kid" when kid != NULL, else plus "jwk".
 * alg is "ES256" for an EC P-256 key, "ES384" for P-384, "RS256" (RSASSA-PKCS1-v1_5 with
 * SHA-256) for an RSA key; other keys are refused. nonce and url must be non-empty, kid non-empty when given.
 * payload NULL means POST-as-GET (empty payload ""); otherwise the JSON text to sign.
 * An ES256 (ES384) signature is the 64-octet (96-octet) r||s form (RFC 7518 3.4), not DER.
 * Returns a malloc'd string, or NULL with err set.
 */
char *jws_sign(EVP_PKEY *key, const char *kid, const char *nonce, const char *url,
    const char *payload, cf_err *err) CF_MUST;

/*
 * The inner JWS of an account key change (RFC 8555 7.3.5): signed by key, protected header
 * {"alg":...,"jwk":{...},"url":...} with no nonce; payload the JSON text. malloc'd, or NULL.
 */
char *jws_sign_nonceless(EVP_PKEY *key, const char *url, const char *payload, cf_err *err) CF_MUST;

/*
 * An External Account Binding (RFC 8555 7.3.4): a flattened JWS MAC'd with HS256 under mac_key
 * (mac_len octets, as the CA handed it out once base64url-decoded), protected header
 * {"alg":"HS256","kid":...,"url":...} and no nonce; payload the account's JWK (jwk_json).
 * malloc'd, or NULL with err set (which never holds the key).
 */
char *jws_sign_hs256(const unsigned char *mac_key, size_t mac_len, const char *kid, const char *url,
    const char *payload, cf_err *err) CF_MUST;

/*
 * A signer prepared once for many JWS with one key: the algorithm, the JWK, and OpenSSL's
 * signature context are set up when it is made, so each signature pays for the signing alone.
 * jws_signer_sign gives exactly what jws_sign gives (jws_sign is a signer used once). The signer
 * holds a reference to key. One signer per thread: it is not locked, and reuses its buffers.
 */
struct jws_signer;
struct jws_signer *jws_signer_new(EVP_PKEY *key, cf_err *err) CF_MUST;
void jws_signer_free(struct jws_signer *s);
char *jws_signer_sign(struct jws_signer *s, const char *kid, const char *nonce, const char *url,
    const char *payload, cf_err *err) CF_MUST;

#endif
