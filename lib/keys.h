/* keys.h - private keys, PEM, CSRs and parsing of issued certificates (OpenSSL 3). */
#ifndef CF_KEYS_H
#define CF_KEYS_H

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#include "cf.h"

enum key_type {
	KEY_EC_P256 = 0, /* the default, and the only type ACME account keys use here */
	KEY_EC_P384 = 1, /* CSRs signed with ecdsa-with-SHA384 */
	KEY_RSA2048 = 2, /* CSRs signed with sha256WithRSAEncryption; 50-200 ms to generate */
	KEY_RSA3072 = 3,
};

/*
 * Parses "ec-p256" (also "p256", "ecdsa"), "ec-p384" (also "p384"), "rsa-2048" and "rsa-3072",
 * in any case; returns 0 and sets *out, or -1.
 */
int key_type_parse(const char *s, enum key_type *out) CF_MUST;
const char *key_type_name(enum key_type t);

/* A new key of type; sets up OpenSSL's key generation each time (see key_generator for many). */
EVP_PKEY *key_generate(enum key_type type, cf_err *err) CF_MUST;

/*
 * Generates many keys: keeps one prepared OpenSSL context per key type, which halves the cost of
 * an EC key. One generator per thread (it is not locked).
 */
struct key_generator;
struct key_generator *key_generator_new(cf_err *err) CF_MUST;
void key_generator_free(struct key_generator *g);
EVP_PKEY *key_generator_generate(struct key_generator *g, enum key_type type, cf_err *err) CF_MUST;

/*
 * Unencrypted PKCS#8 PEM of the private key; malloc'd. An EC P-256 key (named curve, uncompressed
 * point) is encoded here, byte for byte as OpenSSL 3 encodes it: an ECPrivateKey with the public
 * key and without the parameters. Other keys go through OpenSSL's encoder. The one difference: a
 * P-256 key that was read from a PEM without its public key gets it written here (RFC 5915
 * recommends it), where OpenSSL would leave it out again.
 */
char *key_to_pem(EVP_PKEY *key, cf_err *err) CF_MUST;
EVP_PKEY *key_from_pem(const char *pem, cf_err *err) CF_MUST;

/*
 * A DER CSR for names (already normalized; "*.x" allowed) signed with key, with every name in
 * subjectAltName as dNSName and the first name of 64 octets or fewer as the subject CN (UTF8String;
 * with no CN the subject is empty and the subjectAltName critical). Signed with SHA-384 for an EC
 * P-384 key, SHA-512 for P-521, else SHA-256. Returns the base64url of the DER, malloc'd (as
 * ACME's finalize wants it). An EC P-256 key's CSR is encoded here, other keys' by OpenSSL; both
 * give the same octets but for the signature (ECDSA's is randomized).
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
 * For an EC P-256 key the leaf is read without decoding its public key: its DER is walked here and
 * the key compared as octets; only the issuer Name goes through OpenSSL (for the RFC 2253 text).
 * The results are those of cert_info_parse and cert_matches_key.
 */
int cert_issued_parse(const char *pem, EVP_PKEY *key, char **known_chain, struct cert_issued *out,
    cf_err *err) CF_MUST;
void cert_issued_clear(struct cert_issued *c);

/*
 * The issuer Common Name (UTF-8) of the topmost certificate of a PEM chain (the last one, the
 * closest to a root), which is what a preferred chain is matched on (as certbot and lego do).
 * -1 with err when the chain holds no certificate or that issuer has no Common Name.
 */
int cert_chain_top_issuer_cn(const char *pem, char *out, size_t outlen, cf_err *err) CF_MUST;

/*
 * How often each path ran in this process: the fast paths above, and OpenSSL's (for other keys,
 * or a leaf in a form the fast walk does not take). For tests, benchmarks and debug logs: a CA
 * whose leaves all go to OpenSSL costs about 1.5 M instructions more per certificate.
 */
struct keys_stats {
	unsigned long pem_fast, pem_ossl;   /* key_to_pem */
	unsigned long csr_fast, csr_ossl;   /* csr_b64url */
	unsigned long leaf_fast, leaf_ossl; /* cert_issued_parse */
};
void keys_stats_get(struct keys_stats *out);

/*
 * The OpenSSL-only implementations: what key_to_pem, csr_b64url and cert_issued_parse do for keys
 * other than EC P-256, and for a leaf their own DER walk does not take (an unusual but valid
 * encoding). The reference that tests and benchmarks compare the fast paths with.
 */
char *key_to_pem_ossl(EVP_PKEY *key, cf_err *err) CF_MUST;
char *csr_b64url_ossl(EVP_PKEY *key, const char *const *names, size_t nnames, cf_err *err) CF_MUST;
int cert_issued_parse_ossl(const char *pem, EVP_PKEY *key, char **known_chain,
    struct cert_issued *out, cf_err *err) CF_MUST;

#endif
