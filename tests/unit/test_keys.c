/* test_keys.c - unit tests of workers/keys.c: keys, PEM, CSRs, certificate chains and parsing. */
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "check.h"
#include "jws.h"
#include "keys.h"

#define T_LEAF_NOT_BEFORE 1700000000                     /* 2023-11-14T22:13:20Z (UTCTime) */
#define T_LEAF_NOT_AFTER (T_LEAF_NOT_BEFORE + 90 * 86400) /* 2024-02-12T22:13:20Z */
#define T_CA_NOT_BEFORE 1600000000                       /* 2020-09-13T12:26:40Z */
#define T_CA_NOT_AFTER 2840140800                        /* 2060-01-01T00:00:00Z, GeneralizedTime */

static const char leaf_serial_hex[] = "0123456789ABCDEF00"; /* a first octet below 0x10 */
static const char ca_serial_hex[] = "7F";
/* RFC 2253: the most significant RDN last, ',' in a value escaped. */
static const char ca_dn_rfc2253[] = "CN=certfleet test CA,O=Example\\, Inc.,C=XX";

/* A 65-octet and a 64-octet name: only the second fits in a CN. */
static const char name65[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example.com";
static const char name64[] = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.example.com";

/* The PEM of a certificate, malloc'd. */
static char *
cert_pem(X509 *x)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data = NULL, *s = NULL;
	long n;

	if (bio != NULL && PEM_write_bio_X509(bio, x) && (n = BIO_get_mem_data(bio, &data)) > 0 &&
	    (s = malloc((size_t)n + 1)) != NULL) {
		memcpy(s, data, (size_t)n);
		s[n] = '\0';
	}
	BIO_free(bio);
	return s;
}

/*
 * A certificate for key's public key, signed by issuer_key; issuer NULL makes it self-signed.
 * The subject is C=XX, O=Example, Inc., CN=cn.
 */
static X509 *
make_cert(EVP_PKEY *key, const char *cn, const char *serial_hex, time_t not_before,
    time_t not_after, X509 *issuer, EVP_PKEY *issuer_key)
{
	X509 *x = NULL, *res = NULL;
	BIGNUM *serial = NULL;
	X509_NAME *subj;

	if ((x = X509_new()) == NULL || !X509_set_version(x, X509_VERSION_3) ||
	    !BN_hex2bn(&serial, serial_hex) ||
	    BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) == NULL ||
	    ASN1_TIME_set(X509_getm_notBefore(x), not_before) == NULL ||
	    ASN1_TIME_set(X509_getm_notAfter(x), not_after) == NULL || !X509_set_pubkey(x, key))
		goto out;
	subj = X509_get_subject_name(x);
	if (!X509_NAME_add_entry_by_txt(subj, "C", MBSTRING_ASC, (const unsigned char *)"XX", -1,
	    -1, 0) ||
	    !X509_NAME_add_entry_by_txt(subj, "O", MBSTRING_ASC,
	    (const unsigned char *)"Example, Inc.", -1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1,
	    -1, 0))
		goto out;
	if (!X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : subj) ||
	    X509_sign(x, issuer_key, EVP_sha256()) <= 0)
		goto out;
	res = x;
	x = NULL;
out:
	X509_free(x);
	BN_free(serial);
	return res;
}

/* A CA and a leaf signed by it, as PEM, with the leaf's and the CA's keys. */
struct chain {
	EVP_PKEY *ca_key, *leaf_key;
	char *ca_pem, *leaf_pem;
};

static int
chain_make(struct chain *c)
{
	X509 *ca = NULL, *leaf = NULL;
	int rc = -1;

	memset(c, 0, sizeof(*c));
	if ((c->ca_key = key_generate(KEY_EC_P256, NULL)) == NULL ||
	    (c->leaf_key = key_generate(KEY_EC_P256, NULL)) == NULL)
		goto out;
	if ((ca = make_cert(c->ca_key, "certfleet test CA", ca_serial_hex, T_CA_NOT_BEFORE,
	    T_CA_NOT_AFTER, NULL, c->ca_key)) == NULL ||
	    (leaf = make_cert(c->leaf_key, "www.example.com", leaf_serial_hex, T_LEAF_NOT_BEFORE,
	    T_LEAF_NOT_AFTER, ca, c->ca_key)) == NULL)
		goto out;
	if ((c->ca_pem = cert_pem(ca)) == NULL || (c->leaf_pem = cert_pem(leaf)) == NULL)
		goto out;
	rc = 0;
out:
	X509_free(ca);
	X509_free(leaf);
	return rc;
}

static void
chain_free(struct chain *c)
{
	EVP_PKEY_free(c->ca_key);
	EVP_PKEY_free(c->leaf_key);
	free(c->ca_pem);
	free(c->leaf_pem);
}

/* Decodes a base64url CSR. */
static X509_REQ *
csr_decode(const char *b64)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	X509_REQ *req = NULL;
	size_t len = 0;

	if (b64url_decode(b64, &der, &len) == 0) {
		p = der;
		req = d2i_X509_REQ(NULL, &p, (long)len);
		if (req != NULL && p != der + len) {
			X509_REQ_free(req);
			req = NULL;
		}
	}
	free(der);
	return req;
}

/* Checks that req's subjectAltName holds exactly names, as dNSName, in order. */
static void
check_san(X509_REQ *req, const char *const *names, size_t nnames, int want_critical)
{
	STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
	GENERAL_NAMES *gens = NULL;
	int crit = -1, i;

	CHECK(exts != NULL);
	if (exts == NULL)
		return;
	gens = X509V3_get_d2i(exts, NID_subject_alt_name, &crit, NULL);
	CHECK(gens != NULL);
	CHECK(crit == want_critical);
	CHECK(gens != NULL && (size_t)sk_GENERAL_NAME_num(gens) == nnames);
	for (i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens) && (size_t)i < nnames; i++) {
		GENERAL_NAME *gen = sk_GENERAL_NAME_value(gens, i);
		int type;
		ASN1_IA5STRING *ia5 = GENERAL_NAME_get0_value(gen, &type);

		CHECK(type == GEN_DNS);
		CHECK(ia5 != NULL && (size_t)ASN1_STRING_length(ia5) == strlen(names[i]) &&
		    memcmp(ASN1_STRING_get0_data(ia5), names[i], strlen(names[i])) == 0);
	}
	GENERAL_NAMES_free(gens);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
}

/* The CN of req's subject ("" when there is none). */
static const char *
csr_cn(X509_REQ *req, char *buf, int len)
{
	buf[0] = '\0';
	if (X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(req), NID_commonName, buf, len) < 0)
		buf[0] = '\0';
	return buf;
}

static void
test_key_type(void)
{
	enum key_type t = (enum key_type)99;

	CHECK(key_type_parse(NULL, &t) == -1);
	CHECK(key_type_parse("ec-p256", NULL) == -1);
	CHECK(key_type_parse("", &t) == -1);
	CHECK(key_type_parse("rsa", &t) == -1);
	CHECK(key_type_parse("ec-p384", &t) == -1);
	CHECK(key_type_parse("ec-p256 ", &t) == -1);
	CHECK(t == (enum key_type)99);
	CHECK(key_type_parse("ec-p256", &t) == 0 && t == KEY_EC_P256);
	t = (enum key_type)99;
	CHECK(key_type_parse("p256", &t) == 0 && t == KEY_EC_P256);
	t = (enum key_type)99;
	CHECK(key_type_parse("ecdsa", &t) == 0 && t == KEY_EC_P256);
	CHECK_STR(key_type_name(KEY_EC_P256), "ec-p256");
	CHECK_STR(key_type_name((enum key_type)99), "unknown");
}

static void
test_key_generate(void)
{
	cf_err err = { { 0 } };
	EVP_PKEY *a, *b;
	char group[64];
	size_t glen;

	CHECK(key_generate((enum key_type)99, &err) == NULL);
	CHECK(strstr(err.msg, "key_generate") != NULL);

	a = key_generate(KEY_EC_P256, &err);
	b = key_generate(KEY_EC_P256, &err);
	CHECK(a != NULL && b != NULL);
	CHECK(a != NULL && EVP_PKEY_is_a(a, "EC"));
	CHECK(a != NULL && EVP_PKEY_get_utf8_string_param(a, OSSL_PKEY_PARAM_GROUP_NAME, group,
	    sizeof(group), &glen) && strcmp(group, "prime256v1") == 0);
	CHECK(a != NULL && b != NULL && EVP_PKEY_eq(a, b) == 0);
	EVP_PKEY_free(a);
	EVP_PKEY_free(b);
}

static void
test_key_pem_errors(void)
{
	static const char truncated[] =
	    "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqG\n-----END PRIVATE KEY-----\n";
	EVP_PKEY *key = key_generate(KEY_EC_P256, NULL);
	cf_err err = { { 0 } };
	BIO *bio = BIO_new(BIO_s_mem());
	char *enc = NULL, *data = NULL;
	struct chain c;
	long n;

	CHECK(key_to_pem(NULL, &err) == NULL);
	CHECK(err.msg[0] != '\0');
	CHECK(key_from_pem(NULL, &err) == NULL);
	CHECK(key_from_pem("", &err) == NULL);
	CHECK(key_from_pem("not a key", &err) == NULL);
	err.msg[0] = '\0';
	CHECK(key_from_pem(truncated, &err) == NULL);
	CHECK(strstr(err.msg, "key_from_pem") != NULL);

	/* A certificate is not a private key. */
	CHECK(chain_make(&c) == 0);
	CHECK(key_from_pem(c.leaf_pem, &err) == NULL);
	chain_free(&c);

	/* An encrypted key is refused, without asking for a passphrase. */
	CHECK(key != NULL && bio != NULL);
	CHECK(PEM_write_bio_PKCS8PrivateKey(bio, key, EVP_aes_256_cbc(), "secret", 6, NULL, NULL));
	n = BIO_get_mem_data(bio, &data);
	CHECK(n > 0 && (enc = strndup(data, (size_t)n)) != NULL);
	CHECK(enc != NULL && strstr(enc, "ENCRYPTED") != NULL);
	CHECK(key_from_pem(enc, &err) == NULL);
	free(enc);
	BIO_free(bio);
	EVP_PKEY_free(key);
	ERR_clear_error();
}

static void
test_key_pem_roundtrip(void)
{
	EVP_PKEY *key = key_generate(KEY_EC_P256, NULL), *back = NULL, *trad_back = NULL;
	BIGNUM *d1 = NULL, *d2 = NULL;
	cf_err err = { { 0 } };
	BIO *bio = BIO_new(BIO_s_mem());
	char *pem, *trad = NULL, *data = NULL;
	long n;

	CHECK(key != NULL);
	pem = key_to_pem(key, &err);
	CHECK(pem != NULL);
	CHECK(pem != NULL && strncmp(pem, "-----BEGIN PRIVATE KEY-----\n", 28) == 0);
	CHECK(pem != NULL && strstr(pem, "-----END PRIVATE KEY-----\n") != NULL);
	back = key_from_pem(pem, &err);
	CHECK(back != NULL);
	CHECK(back != NULL && EVP_PKEY_eq(key, back) == 1);
	CHECK(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, &d1));
	CHECK(back != NULL && EVP_PKEY_get_bn_param(back, OSSL_PKEY_PARAM_PRIV_KEY, &d2));
	CHECK(d1 != NULL && d2 != NULL && BN_cmp(d1, d2) == 0);

	/* The traditional "EC PRIVATE KEY" form is read too. */
	CHECK(bio != NULL && PEM_write_bio_PrivateKey_traditional(bio, key, NULL, NULL, 0, NULL,
	    NULL));
	n = BIO_get_mem_data(bio, &data);
	CHECK(n > 0 && (trad = strndup(data, (size_t)n)) != NULL);
	CHECK(trad != NULL && strstr(trad, "BEGIN EC PRIVATE KEY") != NULL);
	trad_back = key_from_pem(trad, &err);
	CHECK(trad_back != NULL && EVP_PKEY_eq(key, trad_back) == 1);

	BN_clear_free(d1);
	BN_clear_free(d2);
	BIO_free(bio);
	free(trad);
	free(pem);
	EVP_PKEY_free(key);
	EVP_PKEY_free(back);
	EVP_PKEY_free(trad_back);
}

static void
test_csr_errors(void)
{
	static const char *const ok[] = { "example.com" };
	static const char *const with_null[] = { "example.com", NULL };
	static const char *const with_empty[] = { "example.com", "" };
	static const char *const with_space[] = { "a b.example.com" };
	static const char *const with_utf8[] = { "b\xc3\xbc" "cher.example" };
	static const char *const with_ctrl[] = { "example.com\n" };
	EVP_PKEY *key = key_generate(KEY_EC_P256, NULL);
	cf_err err = { { 0 } };

	CHECK(key != NULL);
	CHECK(csr_b64url(NULL, ok, 1, &err) == NULL);
	CHECK(strstr(err.msg, "no key") != NULL);
	CHECK(csr_b64url(key, NULL, 1, &err) == NULL);
	CHECK(csr_b64url(key, ok, 0, &err) == NULL);
	CHECK(strstr(err.msg, "no names") != NULL);
	CHECK(csr_b64url(key, with_null, 2, &err) == NULL);
	CHECK(csr_b64url(key, with_empty, 2, NULL) == NULL);
	CHECK(csr_b64url(key, with_space, 1, &err) == NULL);
	CHECK(strstr(err.msg, "a b.example.com") != NULL);
	CHECK(csr_b64url(key, with_utf8, 1, &err) == NULL);
	CHECK(csr_b64url(key, with_ctrl, 1, &err) == NULL);
	EVP_PKEY_free(key);
}

static void
test_csr(void)
{
	static const char *const names[] = { "example.com", "*.example.com", "www.example.com" };
	EVP_PKEY *key = key_generate(KEY_EC_P256, NULL), *other = key_generate(KEY_EC_P256, NULL);
	cf_err err = { { 0 } };
	X509_REQ *req = NULL;
	char cn[128], *b64;

	CHECK(key != NULL && other != NULL);
	b64 = csr_b64url(key, names, 3, &err);
	CHECK(b64 != NULL);
	CHECK(b64 != NULL && strspn(b64, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789-_") == strlen(b64));
	req = b64 ? csr_decode(b64) : NULL;
	CHECK(req != NULL);
	if (req == NULL)
		goto out;
	CHECK(X509_REQ_get_version(req) == X509_REQ_VERSION_1);
	CHECK(X509_REQ_verify(req, key) == 1);
	CHECK(X509_REQ_verify(req, other) <= 0);
	CHECK(EVP_PKEY_eq(X509_REQ_get0_pubkey(req), key) == 1);
	CHECK(X509_REQ_get_signature_nid(req) == NID_ecdsa_with_SHA256);
	CHECK_STR(csr_cn(req, cn, sizeof(cn)), "example.com");
	CHECK(X509_NAME_entry_count(X509_REQ_get_subject_name(req)) == 1);
	check_san(req, names, 3, 0);
out:
	ERR_clear_error();
	X509_REQ_free(req);
	free(b64);
	EVP_PKEY_free(key);
	EVP_PKEY_free(other);
}

static void
test_csr_cn_choice(void)
{
	static const char *const long_first[] = { name65, name64, "c.example.com" };
	static const char *const wildcard_first[] = { "*.example.com", "example.com" };
	static const char *const only_long[] = { name65 };
	EVP_PKEY *key = key_generate(KEY_EC_P256, NULL);
	X509_REQ *req;
	char cn[128], *b64;

	CHECK(key != NULL);
	CHECK(strlen(name65) == 65 && strlen(name64) == 64);

	/* The first name of 64 octets or fewer is the CN; every name is in the SAN. */
	b64 = csr_b64url(key, long_first, 3, NULL);
	req = b64 ? csr_decode(b64) : NULL;
	CHECK(req != NULL);
	if (req != NULL) {
		CHECK(X509_REQ_verify(req, key) == 1);
		CHECK_STR(csr_cn(req, cn, sizeof(cn)), name64);
		check_san(req, long_first, 3, 0);
	}
	X509_REQ_free(req);
	free(b64);

	b64 = csr_b64url(key, wildcard_first, 2, NULL);
	req = b64 ? csr_decode(b64) : NULL;
	CHECK(req != NULL);
	if (req != NULL) {
		CHECK_STR(csr_cn(req, cn, sizeof(cn)), "*.example.com");
		check_san(req, wildcard_first, 2, 0);
	}
	X509_REQ_free(req);
	free(b64);

	/* No name fits: an empty subject, and then the SAN is critical (RFC 5280 4.2.1.6). */
	b64 = csr_b64url(key, only_long, 1, NULL);
	req = b64 ? csr_decode(b64) : NULL;
	CHECK(req != NULL);
	if (req != NULL) {
		CHECK(X509_REQ_verify(req, key) == 1);
		CHECK(X509_NAME_entry_count(X509_REQ_get_subject_name(req)) == 0);
		check_san(req, only_long, 1, 1);
	}
	X509_REQ_free(req);
	free(b64);
	EVP_PKEY_free(key);
	ERR_clear_error();
}

/* Asserts that cert_chain_split fails on pem and leaves both outputs NULL. */
static void
check_split_fails(const char *pem, const char *want_in_msg)
{
	char *leaf = (char *)"x", *chain = (char *)"x";
	cf_err err = { { 0 } };

	CHECK(cert_chain_split(pem, &leaf, &chain, &err) == -1);
	CHECK(leaf == NULL && chain == NULL);
	if (strstr(err.msg, want_in_msg) == NULL) {
		fprintf(stderr, "  error \"%s\" does not say \"%s\"\n", err.msg, want_in_msg);
		check_failures++;
	}
}

static void
test_chain_split_errors(void)
{
	struct chain c;
	char *leaf = NULL, *chain = NULL, *bad = NULL, *cut = NULL;
	size_t n;

	CHECK(chain_make(&c) == 0);
	CHECK(cert_chain_split(c.leaf_pem, NULL, &chain, NULL) == -1);
	CHECK(chain == NULL);
	CHECK(cert_chain_split(c.leaf_pem, &leaf, NULL, NULL) == -1);
	CHECK(leaf == NULL);

	check_split_fails(NULL, "empty");
	check_split_fails("", "empty");
	check_split_fails("<html>502 Bad Gateway</html>\n", "no \"-----BEGIN CERTIFICATE-----\"");
	check_split_fails("-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n",
	    "no \"-----BEGIN CERTIFICATE-----\"");
	check_split_fails("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
	    "certificate 1");

	/* A leaf cut short (no END line), and a chain whose second certificate is cut short. */
	n = strlen(c.leaf_pem) - strlen("-----END CERTIFICATE-----\n");
	cut = strndup(c.leaf_pem, n);
	CHECK(cut != NULL);
	check_split_fails(cut, "certificate 1 has no");
	CHECK(asprintf(&bad, "%s%s", c.leaf_pem, cut) > 0);
	check_split_fails(bad, "certificate 2 has no");
	free(bad);
	bad = NULL;

	/* A corrupted body in the second certificate. */
	CHECK(asprintf(&bad, "%s%s", c.leaf_pem, c.ca_pem) > 0);
	if (bad != NULL) {
		char *body = bad + strlen(c.leaf_pem) + strlen("-----BEGIN CERTIFICATE-----\n");

		body[10] = body[10] == 'A' ? 'B' : 'A';
		body[11] = '!';
		check_split_fails(bad, "certificate 2");
	}
	free(bad);
	free(cut);
	chain_free(&c);
	ERR_clear_error();
}

static void
test_chain_split(void)
{
	struct chain c;
	cf_err err = { { 0 } };
	char *leaf = NULL, *chain = NULL, *pem = NULL, *want = NULL;

	CHECK(chain_make(&c) == 0);

	/* As ACME serves it: leaf, then the issuer. */
	CHECK(asprintf(&pem, "%s%s", c.leaf_pem, c.ca_pem) > 0);
	CHECK(cert_chain_split(pem, &leaf, &chain, &err) == 0);
	CHECK_STR(leaf, c.leaf_pem);
	CHECK_STR(chain, c.ca_pem);
	free(pem);
	free(leaf);
	free(chain);

	/* A leaf alone: the chain is empty, not NULL. */
	leaf = chain = NULL;
	CHECK(cert_chain_split(c.leaf_pem, &leaf, &chain, &err) == 0);
	CHECK_STR(leaf, c.leaf_pem);
	CHECK_STR(chain, "");
	free(leaf);
	free(chain);

	/* Explanatory text around the blocks (RFC 7468 5.2) is dropped; three blocks keep order. */
	leaf = chain = NULL;
	CHECK(asprintf(&pem, "Leaf:\n%s\nIssuer: CA\n%sRoot:\n%s\n\n", c.leaf_pem, c.ca_pem,
	    c.ca_pem) > 0);
	CHECK(asprintf(&want, "%s%s", c.ca_pem, c.ca_pem) > 0);
	CHECK(cert_chain_split(pem, &leaf, &chain, &err) == 0);
	CHECK_STR(leaf, c.leaf_pem);
	CHECK_STR(chain, want);
	free(pem);
	free(want);
	free(leaf);
	free(chain);

	/* The leaf goes on to the other functions as it is. */
	leaf = chain = NULL;
	CHECK(asprintf(&pem, "%s%s", c.leaf_pem, c.ca_pem) > 0);
	CHECK(cert_chain_split(pem, &leaf, &chain, &err) == 0);
	CHECK(cert_matches_key(leaf, c.leaf_key, &err) == 1);
	free(pem);
	free(leaf);
	free(chain);
	chain_free(&c);
}

static void
test_cert_info_errors(void)
{
	struct cert_info ci;
	cf_err err = { { 0 } };
	struct chain c;

	CHECK(cert_info_parse(NULL, &ci, &err) == -1);
	CHECK(strstr(err.msg, "cert_info_parse") != NULL);
	CHECK(cert_info_parse("", &ci, &err) == -1);
	CHECK(cert_info_parse("garbage", &ci, &err) == -1);
	CHECK(cert_info_parse("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
	    &ci, NULL) == -1);
	CHECK(chain_make(&c) == 0);
	CHECK(cert_info_parse(c.leaf_pem, NULL, &err) == -1);
	chain_free(&c);
	ERR_clear_error();
}

static void
test_cert_info(void)
{
	struct cert_info ci;
	cf_err err = { { 0 } };
	struct chain c;

	CHECK(chain_make(&c) == 0);
	CHECK(cert_info_parse(c.leaf_pem, &ci, &err) == 0);
	CHECK_STR(ci.serial, "0123456789abcdef00");
	CHECK(ci.not_before == T_LEAF_NOT_BEFORE);
	CHECK(ci.not_after == T_LEAF_NOT_AFTER);
	CHECK_STR(ci.issuer, ca_dn_rfc2253);

	/* The self-signed CA: its own issuer, a short serial, a GeneralizedTime notAfter. */
	CHECK(cert_info_parse(c.ca_pem, &ci, &err) == 0);
	CHECK_STR(ci.serial, "7f");
	CHECK(ci.not_before == T_CA_NOT_BEFORE);
	CHECK(ci.not_after == (int64_t)T_CA_NOT_AFTER);
	CHECK_STR(ci.issuer, ca_dn_rfc2253);
	chain_free(&c);
}

static void
test_cert_matches_key(void)
{
	EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	cf_err err = { { 0 } };
	struct chain c;

	CHECK(chain_make(&c) == 0);
	CHECK(rsa != NULL);
	CHECK(cert_matches_key(c.leaf_pem, c.leaf_key, &err) == 1);
	CHECK(cert_matches_key(c.leaf_pem, c.ca_key, &err) == 0);
	CHECK(cert_matches_key(c.ca_pem, c.ca_key, &err) == 1);
	CHECK(cert_matches_key(c.leaf_pem, rsa, &err) == 0); /* another key type is not a match */
	CHECK(cert_matches_key(c.leaf_pem, NULL, &err) == -1);
	CHECK(cert_matches_key(NULL, c.leaf_key, &err) == -1);
	CHECK(cert_matches_key("garbage", c.leaf_key, &err) == -1);
	CHECK(strstr(err.msg, "cert_matches_key") != NULL);
	EVP_PKEY_free(rsa);
	chain_free(&c);
}

static void
test_cert_issued(void)
{
	struct chain c;
	struct cert_issued ci;
	cf_err err = { { 0 } };
	char *pem = NULL, *bad = NULL, *known = NULL;

	CHECK(chain_make(&c) == 0);
	CHECK(asprintf(&pem, "%s%s", c.leaf_pem, c.ca_pem) > 0);

	/* the right key: split, info, and the chain remembered */
	CHECK(cert_issued_parse(pem, c.leaf_key, &known, &ci, &err) == 0);
	CHECK_STR(ci.leaf_pem, c.leaf_pem);
	CHECK_STR(ci.chain_pem, c.ca_pem);
	CHECK_STR(ci.info.serial, "0123456789abcdef00");
	CHECK_STR(known, c.ca_pem);
	cert_issued_clear(&ci);
	CHECK(ci.leaf_pem == NULL && ci.chain_pem == NULL);

	/* another key: refused with a clear reason, nothing returned */
	CHECK(cert_issued_parse(pem, c.ca_key, &known, &ci, &err) == -1);
	CHECK(strstr(err.msg, "does not carry the key") != NULL);
	CHECK(ci.leaf_pem == NULL && ci.chain_pem == NULL);

	/* a damaged chain block is refused when it is new... */
	CHECK(asprintf(&bad, "%s-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", c.leaf_pem) > 0);
	CHECK(cert_issued_parse(bad, c.leaf_key, &known, &ci, &err) == -1);
	CHECK(strstr(err.msg, "certificate 2") != NULL);
	CHECK_STR(known, c.ca_pem); /* a refused chain is not remembered */
	/* ...and so is a damaged leaf, whatever the chain */
	free(bad);
	CHECK(asprintf(&bad, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n%s", c.ca_pem) > 0);
	CHECK(cert_issued_parse(bad, c.leaf_key, &known, &ci, &err) == -1);
	/* without a cache every block is parsed */
	CHECK(cert_issued_parse(pem, c.leaf_key, NULL, &ci, &err) == 0);
	cert_issued_clear(&ci);
	free(pem);
	free(bad);
	free(known);
	chain_free(&c);
}

int
main(void)
{
	RUN(test_key_type);
	RUN(test_key_generate);
	RUN(test_key_pem_errors);
	RUN(test_key_pem_roundtrip);
	RUN(test_csr_errors);
	RUN(test_csr);
	RUN(test_csr_cn_choice);
	RUN(test_chain_split_errors);
	RUN(test_chain_split);
	RUN(test_cert_info_errors);
	RUN(test_cert_info);
	RUN(test_cert_matches_key);
	RUN(test_cert_issued);
	return CHECK_DONE();
}
