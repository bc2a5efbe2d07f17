/* test_keys.c - unit tests of lib/keys.c: keys, PEM, CSRs, certificate chains and parsing. */
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <openssl/param_build.h>
#include <openssl/rand.h>

#include "check.h"
#include "der.h"
#include "base64.h"
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
	static const struct {
		const char *s;
		enum key_type t;
	} ok[] = {
		{ "ec-p256", KEY_EC_P256 }, { "p256", KEY_EC_P256 }, { "ecdsa", KEY_EC_P256 },
		{ "EC-P256", KEY_EC_P256 }, { "ec-p384", KEY_EC_P384 }, { "p384", KEY_EC_P384 },
		{ "rsa-2048", KEY_RSA2048 }, { "RSA-2048", KEY_RSA2048 }, { "rsa-3072", KEY_RSA3072 },
	};
	static const char *const bad[] = { "", "rsa", "rsa-4096", "rsa-1024", "ec-p521",
		"ec-p256 ", "rsa2048", "ec" };
	enum key_type t = (enum key_type)99;
	size_t i;

	CHECK(key_type_parse(NULL, &t) == -1);
	CHECK(key_type_parse("ec-p256", NULL) == -1);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (key_type_parse(bad[i], &t) != -1) {
			fprintf(stderr, "  key_type_parse accepted \"%s\"\n", bad[i]);
			check_failures++;
		}
	}
	CHECK(t == (enum key_type)99);
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		t = (enum key_type)99;
		CHECK(key_type_parse(ok[i].s, &t) == 0 && t == ok[i].t);
	}
	CHECK_STR(key_type_name(KEY_EC_P256), "ec-p256");
	CHECK_STR(key_type_name(KEY_EC_P384), "ec-p384");
	CHECK_STR(key_type_name(KEY_RSA2048), "rsa-2048");
	CHECK_STR(key_type_name(KEY_RSA3072), "rsa-3072");
	CHECK_STR(key_type_name((enum key_type)99), "unknown");
	CHECK_STR(key_type_name((enum key_type)-1), "unknown");
	/* every name parses back to its type */
	for (i = 0; i < 4; i++) {
		CHECK(key_type_parse(key_type_name((enum key_type)i), &t) == 0 && t == (enum key_type)i);
	}
}

/*
 * One key of each type for the tests that need one, made once (RSA is slow), from a generator:
 * P-256, P-384, RSA-2048, RSA-3072.
 */
static struct key_generator *test_gen; /* made and freed by main */
static EVP_PKEY *type_keys[4];

static EVP_PKEY *
type_key(enum key_type t)
{
	if (type_keys[t] == NULL)
		type_keys[t] = key_generator_generate(test_gen, t, NULL);
	return type_keys[t];
}

/* Asserts that key is of type t. */
static void
check_key_type(EVP_PKEY *key, enum key_type t)
{
	char group[64];

	CHECK(key != NULL);
	if (key == NULL)
		return;
	switch (t) {
	case KEY_EC_P256:
	case KEY_EC_P384:
		CHECK(EVP_PKEY_is_a(key, "EC"));
		CHECK(EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group,
		    sizeof(group), NULL));
		CHECK_STR(group, t == KEY_EC_P256 ? "prime256v1" : "secp384r1");
		break;
	case KEY_RSA2048:
	case KEY_RSA3072:
		CHECK(EVP_PKEY_is_a(key, "RSA"));
		CHECK(EVP_PKEY_get_bits(key) == (t == KEY_RSA2048 ? 2048 : 3072));
		break;
	}
}

static void
test_key_generate(void)
{
	struct key_generator *g;
	cf_err err = { { 0 } };
	EVP_PKEY *a, *b;
	int i;

	CHECK(key_generate((enum key_type)99, &err) == NULL);
	CHECK(strstr(err.msg, "key_generate") != NULL);

	a = key_generate(KEY_EC_P256, &err);
	b = key_generate(KEY_EC_P256, &err);
	check_key_type(a, KEY_EC_P256);
	check_key_type(b, KEY_EC_P256);
	CHECK(a != NULL && b != NULL && EVP_PKEY_eq(a, b) == 0);
	EVP_PKEY_free(a);
	EVP_PKEY_free(b);
	a = key_generate(KEY_EC_P384, &err);
	check_key_type(a, KEY_EC_P384);
	EVP_PKEY_free(a);
	check_key_type(type_key(KEY_RSA2048), KEY_RSA2048);

	/* a generator: keys of every type from one context each, all different */
	CHECK((g = key_generator_new(&err)) != NULL);
	CHECK(key_generator_generate(g, (enum key_type)99, &err) == NULL);
	CHECK(strstr(err.msg, "unknown key type") != NULL);
	CHECK(key_generator_generate(NULL, KEY_EC_P256, &err) == NULL);
	a = key_generator_generate(g, KEY_EC_P256, &err);
	check_key_type(a, KEY_EC_P256);
	for (i = 0; i < 20 && a != NULL; i++) {
		b = key_generator_generate(g, KEY_EC_P256, &err);
		check_key_type(b, KEY_EC_P256);
		CHECK(b != NULL && EVP_PKEY_eq(a, b) == 0);
		EVP_PKEY_free(a);
		a = b;
	}
	EVP_PKEY_free(a);
	a = key_generator_generate(g, KEY_EC_P384, &err);
	b = key_generator_generate(g, KEY_EC_P384, &err);
	check_key_type(a, KEY_EC_P384);
	CHECK(a != NULL && b != NULL && EVP_PKEY_eq(a, b) == 0);
	EVP_PKEY_free(a);
	EVP_PKEY_free(b);
	key_generator_free(g);
	key_generator_free(NULL);
	check_key_type(type_key(KEY_RSA3072), KEY_RSA3072);
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

/* The contents of a memory BIO as a string, malloc'd; frees the BIO. */
static char *
bio_take(BIO *bio)
{
	char *data = NULL, *s = NULL;
	long n;

	if (bio != NULL && (n = BIO_get_mem_data(bio, &data)) > 0 && (s = malloc((size_t)n + 1)) != NULL) {
		memcpy(s, data, (size_t)n);
		s[n] = '\0';
	}
	BIO_free(bio);
	return s;
}

/* What PEM_write_bio_PrivateKey writes for key (unencrypted PKCS#8), malloc'd or NULL. */
static char *
ossl_key_pem(EVP_PKEY *key)
{
	BIO *bio = BIO_new(BIO_s_mem());

	if (bio == NULL || !PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)) {
		BIO_free(bio);
		ERR_clear_error();
		return NULL;
	}
	return bio_take(bio);
}

/*
 * A P-256 key from its private scalar (hex), built with EVP_PKEY_fromdata from the scalar and the
 * public point (which OpenSSL derives from a key read without one), so that OpenSSL writes both.
 */
static EVP_PKEY *
p256_from_d(const char *d_hex)
{
	/* RFC 5915 ECPrivateKey { version 1, privateKey d, [0] prime256v1 }, no public key */
	static const unsigned char head[] = { 0x30, 0x31, 0x02, 0x01, 0x01, 0x04, 0x20 };
	static const unsigned char tail[] = { 0xa0, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
		0x3d, 0x03, 0x01, 0x07 };
	unsigned char der[sizeof(head) + 32 + sizeof(tail)], pub[65];
	const unsigned char *p = der;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *nopub = NULL, *key = NULL;
	BIGNUM *d = NULL;
	size_t publen = 0;

	if (!BN_hex2bn(&d, d_hex) || BN_bn2binpad(d, der + sizeof(head), 32) != 32)
		goto out;
	memcpy(der, head, sizeof(head));
	memcpy(der + sizeof(head) + 32, tail, sizeof(tail));
	if ((nopub = d2i_PrivateKey(EVP_PKEY_EC, NULL, &p, (long)sizeof(der))) == NULL ||
	    !EVP_PKEY_get_octet_string_param(nopub, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub), &publen) ||
	    publen != sizeof(pub))
		goto out;
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub)) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d) ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL)
		goto out;
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) != 1 || EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_KEYPAIR, params) != 1)
		key = NULL;
out:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_free(nopub);
	BN_clear_free(d);
	OPENSSL_cleanse(der, sizeof(der));
	return key;
}

/* Asserts that key_to_pem(key) is what OpenSSL writes, and that it reads back as key. */
static void
check_pem_same(EVP_PKEY *key)
{
	char *ours, *ref, *ossl;
	EVP_PKEY *back;
	cf_err err = { { 0 } };

	ours = key_to_pem(key, &err);
	ref = key_to_pem_ossl(key, &err);
	ossl = ossl_key_pem(key);
	CHECK(ours != NULL && ref != NULL && ossl != NULL);
	CHECK_STR(ours, ossl);
	CHECK_STR(ref, ossl);
	back = ours ? key_from_pem(ours, &err) : NULL;
	CHECK(back != NULL && EVP_PKEY_eq(back, key) == 1);
	EVP_PKEY_free(back);
	free(ours);
	free(ref);
	free(ossl);
}

static void
test_key_pem_p256_exact(void)
{
	/* scalars with leading zero octets (padded to 32), and the largest, n - 1 */
	static const char *const d_hex[] = { "1", "2", "17b", "ff",
		"00ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
		"0000000000000000000000000000000100000000000000000000000000000000",
		"ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632550" };
	EVP_PKEY *key;
	size_t i;

	for (i = 0; i < 300; i++) {
		key = key_generator_generate(test_gen, KEY_EC_P256, NULL);
		CHECK(key != NULL);
		if (key != NULL)
			check_pem_same(key);
		EVP_PKEY_free(key);
	}
	for (i = 0; i < sizeof(d_hex) / sizeof(d_hex[0]); i++) {
		key = p256_from_d(d_hex[i]);
		CHECK(key != NULL);
		if (key != NULL)
			check_pem_same(key);
		EVP_PKEY_free(key);
	}
}

static void
test_key_pem_other_forms(void)
{
	/* an ECPrivateKey (RFC 5915) of d = 379 without its public key */
	static const char nopub_pem[] =
	    "-----BEGIN EC PRIVATE KEY-----\n"
	    "MDECAQEEIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAF7oAoGCCqGSM49\n"
	    "AwEH\n"
	    "-----END EC PRIVATE KEY-----\n";
	EVP_PKEY *key, *back;
	cf_err err = { { 0 } };
	char *pem, *ossl;

	/* a compressed point and explicit parameters: OpenSSL's encoder, and its octets */
	key = key_generate(KEY_EC_P256, NULL);
	CHECK(key != NULL && EVP_PKEY_set_utf8_string_param(key,
	    OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_COMPRESSED));
	if (key != NULL) {
		check_pem_same(key);
		pem = key_to_pem(key, NULL);
		CHECK(pem != NULL && strlen(pem) < 230); /* 33-octet point: not the 138-octet form */
		free(pem);
	}
	EVP_PKEY_free(key);
	key = key_generate(KEY_EC_P256, NULL);
	CHECK(key != NULL && EVP_PKEY_set_utf8_string_param(key, OSSL_PKEY_PARAM_EC_ENCODING,
	    OSSL_PKEY_EC_ENCODING_EXPLICIT));
	if (key != NULL)
		check_pem_same(key);
	EVP_PKEY_free(key);

	/*
	 * A key read without its public key: OpenSSL would write it without one again; key_to_pem
	 * writes the point (RFC 5915 recommends it), and the key reads back the same.
	 */
	key = key_from_pem(nopub_pem, &err);
	CHECK(key != NULL);
	pem = key ? key_to_pem(key, &err) : NULL;
	ossl = key ? ossl_key_pem(key) : NULL;
	CHECK(pem != NULL && ossl != NULL && strlen(pem) > strlen(ossl));
	back = pem ? key_from_pem(pem, &err) : NULL;
	CHECK(back != NULL && EVP_PKEY_eq(back, key) == 1);
	free(pem);
	free(ossl);
	EVP_PKEY_free(back);
	EVP_PKEY_free(key);

	/* a public key has no PKCS#8 form */
	key = p256_from_d("17b");
	if (key != NULL) {
		unsigned char pub[65];
		size_t publen = 0;
		EVP_PKEY *pubkey = NULL;
		EVP_PKEY_CTX *ctx = NULL;
		OSSL_PARAM params[3];

		CHECK(EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub), &publen));
		params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"prime256v1", 0);
		params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pub, publen);
		params[2] = OSSL_PARAM_construct_end();
		CHECK((ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) != NULL &&
		    EVP_PKEY_fromdata_init(ctx) == 1 &&
		    EVP_PKEY_fromdata(ctx, &pubkey, EVP_PKEY_PUBLIC_KEY, params) == 1);
		err.msg[0] = '\0';
		CHECK(pubkey != NULL && key_to_pem(pubkey, &err) == NULL);
		CHECK(strstr(err.msg, "key_to_pem") != NULL);
		EVP_PKEY_free(pubkey);
		EVP_PKEY_CTX_free(ctx);
	}
	EVP_PKEY_free(key);
	ERR_clear_error();
}

static void
test_key_pem_key_types(void)
{
	check_pem_same(type_key(KEY_EC_P384));
	check_pem_same(type_key(KEY_RSA2048));
}

/*
 * Splits the DER of a base64url CSR: the CertificationRequestInfo and the signatureAlgorithm as
 * whole elements, the signature BIT STRING's contents. *der is malloc'd. 0 or -1.
 */
static int
csr_split(const char *b64, unsigned char **der, struct der_span *info, struct der_span *alg,
    struct der_span *sig)
{
	struct der_span in, req;
	size_t len = 0;

	*der = NULL;
	if (b64 == NULL || b64url_decode(b64, der, &len) != 0)
		return -1;
	in.p = *der;
	in.len = len;
	if (der_expect(&in, DER_SEQUENCE, &req, NULL) != 0 || in.len != 0 ||
	    der_expect(&req, DER_SEQUENCE, NULL, info) != 0 ||
	    der_expect(&req, DER_SEQUENCE, NULL, alg) != 0 ||
	    der_expect(&req, DER_BIT_STRING, sig, NULL) != 0 || req.len != 0)
		return -1;
	return 0;
}

/*
 * Asserts that csr_b64url's CSR equals csr_b64url_ossl's but for the signature (ECDSA signatures
 * are randomized), that OpenSSL parses and verifies it, and that it names names.
 */
static void
check_csr_same(EVP_PKEY *key, const char *const *names, size_t nnames)
{
	struct der_span info, alg, sig, rinfo, ralg, rsig;
	unsigned char *der = NULL, *rder = NULL;
	cf_err err = { { 0 } };
	char *ours, *ref;
	X509_REQ *req;

	ours = csr_b64url(key, names, nnames, &err);
	ref = csr_b64url_ossl(key, names, nnames, &err);
	CHECK(ours != NULL && ref != NULL);
	CHECK(csr_split(ours, &der, &info, &alg, &sig) == 0);
	CHECK(csr_split(ref, &rder, &rinfo, &ralg, &rsig) == 0);
	if (der != NULL && rder != NULL) {
		CHECK(info.len == rinfo.len && memcmp(info.p, rinfo.p, info.len) == 0);
		CHECK(alg.len == ralg.len && memcmp(alg.p, ralg.p, alg.len) == 0);
		CHECK(sig.len > 1 && sig.p[0] == 0);
	}
	req = ours ? csr_decode(ours) : NULL;
	CHECK(req != NULL && X509_REQ_verify(req, key) == 1);
	if (req != NULL)
		check_san(req, names, nnames, X509_NAME_entry_count(X509_REQ_get_subject_name(req)) == 0);
	X509_REQ_free(req);
	free(der);
	free(rder);
	free(ours);
	free(ref);
	ERR_clear_error();
}

/* names[i] of length len, made of a label prefix and "x"s under ".example"; count of them. */
static char **
names_make(size_t count, size_t len)
{
	char **names = calloc(count, sizeof(*names));
	size_t i;

	for (i = 0; names != NULL && i < count; i++) {
		size_t n = len < 12 ? 12 : len;

		if ((names[i] = malloc(n + 1)) == NULL)
			continue;
		memset(names[i], 'x', n);
		snprintf(names[i], 6, "n%04zu", i % 10000);
		names[i][5] = 'x';
		memcpy(names[i] + n - 8, ".example", 8);
		names[i][n] = '\0';
	}
	return names;
}

static void
names_free(char **names, size_t count)
{
	for (size_t i = 0; names != NULL && i < count; i++)
		free(names[i]);
	free(names);
}

static void
test_csr_same_as_openssl(void)
{
	static const char *const one[] = { "example.com" };
	static const char *const three[] = { "example.com", "*.example.com", "www.example.com" };
	static const char *const long_first[] = { name65, name64, "c.example.com" };
	static const char *const only_long[] = { name65 };
	static const char *const only64[] = { name64 };
	EVP_PKEY *key = key_generate(KEY_EC_P256, NULL);
	size_t n;
	char **names;

	CHECK(key != NULL);
	if (key == NULL)
		return;
	check_csr_same(key, one, 1);
	check_csr_same(key, three, 3);
	check_csr_same(key, long_first, 3);
	check_csr_same(key, only_long, 1); /* empty subject, critical SAN */
	check_csr_same(key, only64, 1);
	/* one name of every length, across the one- and two-octet DER lengths */
	for (n = 12; n <= 253; n += (n < 140 ? 1 : 7)) {
		names = names_make(1, n);
		check_csr_same(key, (const char *const *)names, 1);
		names_free(names, 1);
	}
	/* growing SANs, up to ACME's usual 100 names of 253 octets (three-octet lengths) */
	for (n = 2; n <= 100; n += (n < 20 ? 1 : 49)) {
		names = names_make(n, 253);
		check_csr_same(key, (const char *const *)names, n);
		names_free(names, n);
	}
	names = names_make(300, 253); /* over 64 KiB of names */
	check_csr_same(key, (const char *const *)names, 300);
	names_free(names, 300);
	EVP_PKEY_free(key);
}

static void
test_csr_key_types(void)
{
	static const char *const names[] = { "example.com", "*.example.com" };
	static const struct {
		enum key_type t;
		int sig_nid;
	} v[] = {
		{ KEY_EC_P256, NID_ecdsa_with_SHA256 },
		{ KEY_EC_P384, NID_ecdsa_with_SHA384 },
		{ KEY_RSA2048, NID_sha256WithRSAEncryption },
		{ KEY_RSA3072, NID_sha256WithRSAEncryption },
	};
	cf_err err = { { 0 } };
	char cn[128];
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		EVP_PKEY *key = type_key(v[i].t), *other = type_key(v[(i + 1) % 4].t);
		char *b64 = key ? csr_b64url(key, names, 2, &err) : NULL;
		X509_REQ *req = b64 ? csr_decode(b64) : NULL;

		CHECK(req != NULL);
		if (req != NULL) {
			CHECK(X509_REQ_verify(req, key) == 1);
			CHECK(X509_REQ_verify(req, other) <= 0);
			CHECK(EVP_PKEY_eq(X509_REQ_get0_pubkey(req), key) == 1);
			CHECK(X509_REQ_get_signature_nid(req) == v[i].sig_nid);
			CHECK_STR(csr_cn(req, cn, sizeof(cn)), "example.com");
			check_san(req, names, 2, 0);
		}
		X509_REQ_free(req);
		free(b64);
		ERR_clear_error();
	}
}

/* A certificate for tests: what differs between CAs' leaves. */
struct cert_spec {
	EVP_PKEY *key;            /* the subject's */
	const char *serial_hex;   /* for BN_hex2bn ("-" for a negative serial) */
	const char *not_before;   /* for ASN1_TIME_set_string: 13 characters UTCTime, 15 GeneralizedTime */
	const char *not_after;
	const X509_NAME *issuer;  /* NULL: the subject's */
	EVP_PKEY *issuer_key;     /* NULL: key */
};

/* The PEM of the certificate cs describes, malloc'd or NULL. */
static char *
spec_cert_pem(const struct cert_spec *cs)
{
	X509 *x = X509_new();
	BIGNUM *serial = NULL;
	X509_NAME *subj;
	X509V3_CTX v3;
	X509_EXTENSION *ext = NULL;
	char *pem = NULL;

	if (x == NULL || !X509_set_version(x, X509_VERSION_3) || !BN_hex2bn(&serial, cs->serial_hex) ||
	    BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) == NULL ||
	    !ASN1_TIME_set_string(X509_getm_notBefore(x), cs->not_before) ||
	    !ASN1_TIME_set_string(X509_getm_notAfter(x), cs->not_after) || !X509_set_pubkey(x, cs->key))
		goto out;
	subj = X509_get_subject_name(x);
	if (!X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_ASC,
	    (const unsigned char *)"www.example.com", -1, -1, 0) ||
	    !X509_set_issuer_name(x, cs->issuer ? cs->issuer : subj))
		goto out;
	X509V3_set_ctx(&v3, NULL, x, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name,
	    "DNS:www.example.com,DNS:example.com")) == NULL || !X509_add_ext(x, ext, -1) ||
	    X509_sign(x, cs->issuer_key ? cs->issuer_key : cs->key, EVP_sha256()) <= 0)
		goto out;
	pem = cert_pem(x);
out:
	X509_EXTENSION_free(ext);
	X509_free(x);
	BN_free(serial);
	ERR_clear_error();
	return pem;
}

/*
 * Asserts that cert_issued_parse and cert_issued_parse_ossl (OpenSSL's parser) give the same
 * answer for pem and key: both succeed with the same outputs, or both fail. Returns the answer.
 */
static int
check_issued_same(const char *pem, EVP_PKEY *key, const char *what)
{
	struct cert_issued a, b;
	cf_err ea = { { 0 } }, eb = { { 0 } };
	int ra, rb;

	ra = cert_issued_parse(pem, key, NULL, &a, &ea);
	rb = cert_issued_parse_ossl(pem, key, NULL, &b, &eb);
	if (ra != rb) {
		fprintf(stderr, "  %s: cert_issued_parse %d (%s), OpenSSL's %d (%s)\n", what, ra,
		    ra ? ea.msg : a.info.serial, rb, rb ? eb.msg : b.info.serial);
		check_failures++;
	} else if (ra == 0) {
		CHECK_STR(a.info.serial, b.info.serial);
		CHECK(a.info.not_before == b.info.not_before);
		CHECK(a.info.not_after == b.info.not_after);
		CHECK_STR(a.info.issuer, b.info.issuer);
		CHECK_STR(a.leaf_pem, b.leaf_pem);
		CHECK_STR(a.chain_pem, b.chain_pem);
	} else if (strstr(eb.msg, "does not carry the key") != NULL) {
		CHECK(strstr(ea.msg, "does not carry the key") != NULL);
	}
	cert_issued_clear(&a);
	cert_issued_clear(&b);
	ERR_clear_error();
	return ra;
}

/* Issuer Names of several shapes; *n of them, each to be freed with X509_NAME_free. */
static X509_NAME **
issuers_make(size_t *n)
{
	static const char *const pebble[][2] = { { "CN", "Pebble Intermediate CA 4a6f2c" } };
	static const char *const le[][2] = { { "C", "US" }, { "O", "Let's Encrypt" }, { "CN", "R11" } };
	/* specials RFC 2253 escapes, spaces at the ends, UTF-8, an e-mail (IA5String) */
	static const char *const odd[][2] = { { "C", "DE" }, { "ST", "Z\xc3\xbcrich" },
		{ "O", "A, B + C \"D\" <E>; F\\G" }, { "OU", " #lead and trail " },
		{ "emailAddress", "ca@example.com" }, { "CN", "=odd=" } };
	X509_NAME **names = calloc(5, sizeof(*names));
	size_t i;

	*n = 0;
	if (names == NULL)
		return NULL;
	for (i = 0; i < 5; i++) {
		if ((names[i] = X509_NAME_new()) == NULL)
			return names;
	}
	for (i = 0; i < 1; i++)
		CHECK(X509_NAME_add_entry_by_txt(names[0], pebble[i][0], MBSTRING_UTF8,
		    (const unsigned char *)pebble[i][1], -1, -1, 0));
	for (i = 0; i < 3; i++)
		CHECK(X509_NAME_add_entry_by_txt(names[1], le[i][0], MBSTRING_ASC,
		    (const unsigned char *)le[i][1], -1, -1, 0));
	for (i = 0; i < 6; i++)
		CHECK(X509_NAME_add_entry_by_txt(names[2], odd[i][0], MBSTRING_UTF8,
		    (const unsigned char *)odd[i][1], -1, -1, 0));
	/* a multi-valued RDN ('+') */
	CHECK(X509_NAME_add_entry_by_txt(names[2], "UID", MBSTRING_ASC, (const unsigned char *)"u1",
	    -1, -1, 1));
	/* longer than cert_info.issuer: 20 OUs of 60 characters, cut at 511 */
	for (i = 0; i < 20; i++) {
		char ou[64];

		snprintf(ou, sizeof(ou), "Organizational Unit number %02zu of a rather long issuer name", i);
		CHECK(X509_NAME_add_entry_by_txt(names[3], "OU", MBSTRING_ASC, (const unsigned char *)ou,
		    -1, -1, 0));
	}
	/* names[4] stays empty */
	*n = 5;
	return names;
}

static void
test_cert_issued_same_as_openssl(void)
{
	static const char *const serials[] = { "1", "7F", "80", "FF", "0123456789ABCDEF00",
		"7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",  /* 20 octets */
		"8000000000000000000000000000000000000001",  /* 20 octets, high bit: 21 encoded */
		"00000000000000000000000000000000000000000001", "0", "-1", "-80", "-0123456789",
		/* 47 octets, the longest serial cert_info holds (94 digits); 48 are too long */
		"0A0B0C0D0E0F101112131415161718191A1B1C1D1E1F202122232425262728292A2B2C2D2E2F303132333435363738",
		"0A0B0C0D0E0F101112131415161718191A1B1C1D1E1F202122232425262728292A2B2C2D2E2F30313233343536373839",
	};
	static const char *const times[][2] = {
		{ "231114221320Z", "240212221320Z" },      /* UTCTime */
		{ "20231114221320Z", "20240212221320Z" },  /* GeneralizedTime in UTCTime's years */
		{ "491231235959Z", "20600101000000Z" },    /* 2049, then after it */
		{ "500101000000Z", "99991231235959Z" },
		{ "19491231235959Z", "240229120000Z" },    /* before 1950; a leap day */
		{ "2311142213Z", "2402122213Z" },          /* no seconds: not RFC 5280, OpenSSL's path */
	};
	EVP_PKEY *key = type_key(KEY_EC_P256), *ca_key = key_generate(KEY_EC_P256, NULL);
	X509_NAME **issuers;
	size_t nissuers = 0, i, j;
	char what[128];

	issuers = issuers_make(&nissuers);
	CHECK(key != NULL && ca_key != NULL && nissuers == 5);
	for (i = 0; key != NULL && ca_key != NULL && i < nissuers; i++) {
		for (j = 0; j < sizeof(serials) / sizeof(serials[0]); j++) {
			struct cert_spec cs = { key, serials[j], times[(i + j) % 6][0], times[(i + j) % 6][1],
				issuers[i], ca_key };
			char *pem = spec_cert_pem(&cs);
			int want = j == sizeof(serials) / sizeof(serials[0]) - 1 ? -1 : 0;

			snprintf(what, sizeof(what), "issuer %zu, serial %s, %s", i, serials[j],
			    times[(i + j) % 6][0]);
			CHECK(pem != NULL);
			if (pem == NULL)
				continue;
			if (check_issued_same(pem, key, what) != want) {
				fprintf(stderr, "  %s: not %d\n", what, want);
				check_failures++;
			}
			CHECK(check_issued_same(pem, ca_key, what) == -1); /* another key */
			free(pem);
		}
	}
	for (i = 0; issuers != NULL && i < nissuers; i++)
		X509_NAME_free(issuers[i]);
	free(issuers);
	EVP_PKEY_free(ca_key);
}

static void
test_cert_issued_key_types(void)
{
	enum key_type t[] = { KEY_EC_P256, KEY_EC_P384, KEY_RSA2048 };
	size_t i, j;

	for (i = 0; i < 3; i++) {
		struct cert_spec cs = { type_key(t[i]), "0123", "231114221320Z", "240212221320Z", NULL, NULL };
		char *pem = cs.key ? spec_cert_pem(&cs) : NULL;

		CHECK(pem != NULL);
		for (j = 0; pem != NULL && j < 3; j++)
			CHECK(check_issued_same(pem, type_key(t[j]), key_type_name(t[j])) == (i == j ? 0 : -1));
		free(pem);
	}
}

/* The PEM of der's first len octets, malloc'd. */
static char *
der_pem(const unsigned char *der, size_t len)
{
	BIO *bio = BIO_new(BIO_s_mem());

	if (bio == NULL || PEM_write_bio(bio, "CERTIFICATE", "", der, (long)len) <= 0) {
		BIO_free(bio);
		return NULL;
	}
	return bio_take(bio);
}

static void
test_cert_issued_damaged(void)
{
	EVP_PKEY *key = type_key(KEY_EC_P256), *ca_key = key_generate(KEY_EC_P256, NULL);
	struct cert_spec cs = { key, "00C0FFEE", "231114221320Z", "20600101000000Z", NULL, ca_key };
	struct keys_stats before, after;
	unsigned char *der = NULL, *buf = NULL;
	size_t len = 0, i;
	char *pem, *bad, what[64];
	BIO *bio;
	X509 *x = NULL;

	pem = key && ca_key ? spec_cert_pem(&cs) : NULL;
	CHECK(pem != NULL);
	if (pem == NULL)
		goto out;
	if ((bio = BIO_new_mem_buf(pem, -1)) != NULL)
		x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	CHECK(x != NULL && (len = (size_t)i2d_X509(x, &der)) > 0 && der != NULL);
	if (der == NULL)
		goto out;
	CHECK(check_issued_same(pem, key, "undamaged") == 0);
	keys_stats_get(&before);

	/* cut short at every length: refused (ASan: never read past the end) */
	for (i = 0; i < len; i++) {
		snprintf(what, sizeof(what), "cut at %zu", i);
		bad = der_pem(der, i);
		CHECK(i == 0 || bad != NULL);
		if (bad != NULL)
			CHECK(check_issued_same(bad, key, what) == -1);
		free(bad);
	}
	/* every byte changed, one bit (a different one at each offset), and set to 0xff */
	CHECK((buf = malloc(len)) != NULL);
	for (i = 0; buf != NULL && i < 2 * len; i++) {
		memcpy(buf, der, len);
		buf[i / 2] = i % 2 ? 0xff : (unsigned char)(der[i / 2] ^ (1u << (i / 2 % 8)));
		if (buf[i / 2] == der[i / 2])
			continue;
		snprintf(what, sizeof(what), "byte %zu set to %02x", i / 2, buf[i / 2]);
		bad = der_pem(buf, len);
		if (bad != NULL)
			(void)check_issued_same(bad, key, what);
		free(bad);
	}
	keys_stats_get(&after);
	/* many damaged leaves still walk (a changed signature, name or extension value) */
	CHECK(after.leaf_fast - before.leaf_fast > len / 4);

	/* damaged PEM text: not the strict form, OpenSSL decides */
	for (i = 28; i < strlen(pem); i += 37) {
		static const char subst[] = "! =\n-";

		bad = strdup(pem);
		CHECK(bad != NULL);
		if (bad == NULL)
			break;
		bad[i] = subst[i % 5];
		snprintf(what, sizeof(what), "PEM character %zu set to %02x", i, (unsigned)bad[i]);
		(void)check_issued_same(bad, key, what);
		free(bad);
	}
out:
	X509_free(x);
	OPENSSL_free(der);
	free(buf);
	free(pem);
	EVP_PKEY_free(ca_key);
}

static void
test_fast_paths_taken(void)
{
	static const char *const names[] = { "example.com" };
	struct cert_spec cs = { NULL, "01", "231114221320Z", "240212221320Z", NULL, NULL };
	struct keys_stats s0, s1, s2;
	struct cert_issued ci;
	char *pem, *b64, *cert;
	cf_err err = { { 0 } };

	/* P-256: every fast path */
	cs.key = type_key(KEY_EC_P256);
	cert = cs.key ? spec_cert_pem(&cs) : NULL;
	CHECK(cert != NULL);
	keys_stats_get(&s0);
	pem = key_to_pem(cs.key, &err);
	b64 = csr_b64url(cs.key, names, 1, &err);
	CHECK(pem != NULL && b64 != NULL);
	CHECK(cert != NULL && cert_issued_parse(cert, cs.key, NULL, &ci, &err) == 0);
	cert_issued_clear(&ci);
	keys_stats_get(&s1);
	CHECK(s1.pem_fast == s0.pem_fast + 1 && s1.pem_ossl == s0.pem_ossl);
	CHECK(s1.csr_fast == s0.csr_fast + 1 && s1.csr_ossl == s0.csr_ossl);
	CHECK(s1.leaf_fast == s0.leaf_fast + 1 && s1.leaf_ossl == s0.leaf_ossl);
	free(pem);
	free(b64);
	free(cert);

	/* P-384: OpenSSL's paths */
	cs.key = type_key(KEY_EC_P384);
	cert = cs.key ? spec_cert_pem(&cs) : NULL;
	CHECK(cert != NULL);
	pem = key_to_pem(cs.key, &err);
	b64 = csr_b64url(cs.key, names, 1, &err);
	CHECK(pem != NULL && b64 != NULL);
	CHECK(cert != NULL && cert_issued_parse(cert, cs.key, NULL, &ci, &err) == 0);
	cert_issued_clear(&ci);
	keys_stats_get(&s2);
	CHECK(s2.pem_fast == s1.pem_fast && s2.pem_ossl == s1.pem_ossl + 1);
	CHECK(s2.csr_fast == s1.csr_fast && s2.csr_ossl == s1.csr_ossl + 1);
	CHECK(s2.leaf_fast == s1.leaf_fast && s2.leaf_ossl == s1.leaf_ossl + 1);
	free(pem);
	free(b64);
	free(cert);
}

int
main(void)
{
	size_t i;

	test_gen = key_generator_new(NULL);
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
	RUN(test_key_pem_p256_exact);
	RUN(test_key_pem_other_forms);
	RUN(test_key_pem_key_types);
	RUN(test_csr_same_as_openssl);
	RUN(test_csr_key_types);
	RUN(test_cert_issued_same_as_openssl);
	RUN(test_cert_issued_key_types);
	RUN(test_cert_issued_damaged);
	RUN(test_fast_paths_taken);
	for (i = 0; i < sizeof(type_keys) / sizeof(type_keys[0]); i++)
		EVP_PKEY_free(type_keys[i]);
	key_generator_free(test_gen);
	return CHECK_DONE();
}
