/* jws.h - base64url, JWK and RFC 7638 thumbprints, and ES256 JWS signing for ACME (RFC 8555 6.2). */
#ifndef CF_JWS_H
#define CF_JWS_H

#include <openssl/evp.h>
#include <stddef.h>

#include "cf.h"

/* Unpadded base64url (RFC 4648 section 5). Returns a malloc'd NUL-terminated string, or NULL. */
char *b64url_encode(const unsigned char *in, size_t len) CF_MUST;

/* Decodes unpadded (or padded) base64url; rejects any other character. *out is malloc'd. */
int b64url_decode(const char *in, unsigned char **out, size_t *outlen) CF_MUST;

/*
 * The public JWK of an EC P-256 key as canonical JSON with members in lexicographic order and no
 * white space: {"crv":"P-256","kty":"EC","x":"...","y":"..."} (x and y are 32 octets each).
 * Returns a malloc'd string, or NULL with err set.
 */
char *jwk_json(EVP_PKEY *key, cf_err *err) CF_MUST;

/* RFC 7638 thumbprint: base64url(SHA-256(jwk_json)), 43 characters plus NUL written to out. */
int jwk_thumbprint(EVP_PKEY *key, char out[44], cf_err *err) CF_MUST;

/*
 * A flattened JWS JSON serialization (RFC 7515 7.2.2) as ACME wants it: protected header
 * {"alg":"ES256","nonce":...,"url":...} plus "kid" when kid != NULL, else plus "jwk".
 * payload NULL means POST-as-GET (empty payload ""); otherwise the JSON text to sign.
 * The signature is the 64-octet r||s form (RFC 7518 3.4), not DER.
 * Returns a malloc'd string, or NULL with err set.
 */
char *jws_sign(EVP_PKEY *key, const char *kid, const char *nonce, const char *url,
    const char *payload, cf_err *err) CF_MUST;

#endif
