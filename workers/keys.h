/* keys.h - private keys, PEM, CSRs and parsing of issued certificates (OpenSSL 3). */
#ifndef CF_KEYS_H
#define CF_KEYS_H

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#include "cf.h"

enum key_type {
	KEY_EC_P256 = 0, /* the default, and the only type ACME account keys use here */
};

/* Parses "ec-p256" (also "p256", "ecdsa"); returns 0 and sets *out, or -1. */
int key_type_parse(const char *s, enum key_type *out) CF_MUST;
const char *key_type_name(enum key_type t);

EVP_PKEY *key_generate(enum key_type type, cf_err *err) CF_MUST;

/* Unencrypted PKCS#8 PEM of the private key; malloc'd. */
char *key_to_pem(EVP_PKEY *key, cf_err *err) CF_MUST;
EVP_PKEY *key_from_pem(const char *pem, cf_err *err) CF_MUST;

/*
 * A DER CSR for names (already normalized; "*.x" allowed) signed with key (SHA-256), with every
 * name in subjectAltName as dNSName and the first name of 64 octets or fewer as the subject CN.
 * Returns the base64url of the DER, malloc'd (as ACME's finalize wants it).
 */
char *csr_b64url(EVP_PKEY *key, const char *const *names, size_t nnames, cf_err *err) CF_MUST;

/* Splits a PEM chain (leaf first, as ACME serves it) into the leaf and the rest. Both malloc'd. */
int cert_chain_split(const char *pem, char **leaf_pem, char **chain_pem, cf_err *err) CF_MUST;

struct cert_info {
	char serial[96];     /* lowercase hex, no separators */
	int64_t not_before;  /* unix seconds */
	int64_t not_after;   /* unix seconds */
	char issuer[512];    /* RFC 2253 string of the issuer DN */
};

int cert_info_parse(const char *leaf_pem, struct cert_info *out, cf_err *err) CF_MUST;

/* 1 when the certificate's public key is key's, 0 when not, -1 on error. */
int cert_matches_key(const char *leaf_pem, EVP_PKEY *key, cf_err *err) CF_MUST;

/* An issued chain, split and checked. */
struct cert_issued {
	char *leaf_pem;
	char *chain_pem;      /* "" when the CA sent the leaf alone */
	struct cert_info info;
};

/*
 * What the order engine does with a downloaded chain, parsing the leaf once: splits it, reads the
 * leaf's serial, dates and issuer, and checks that the leaf carries key (the CSR's). The chain
 * blocks are parsed too, unless the chain is byte for byte *known_chain, which keeps the last chain
 * checked (pass NULL to always parse; *known_chain is malloc'd and owned by the caller).
 */
int cert_issued_parse(const char *pem, EVP_PKEY *key, char **known_chain, struct cert_issued *out,
    cf_err *err) CF_MUST;
void cert_issued_clear(struct cert_issued *c);

/*
 * Leaves "<what>: <last OpenSSL error>" in err and empties this thread's OpenSSL error queue, so
 * that a stale error never shows up in the message of a later, unrelated failure.
 */
void ossl_errf(cf_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
