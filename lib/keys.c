/* keys.c - key generation, PKCS#8 PEM, CSRs, and parsing of issued certificates (OpenSSL 3). */
#include "keys.h"

#include <ctype.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "der.h"
#include "base64.h"
#include "osslerr.h"

#define CN_MAX 64 /* ub-common-name (RFC 5280 appendix A.1) */
#define P256_POINT_LEN 65  /* an uncompressed P-256 point: 0x04 || x || y */
#define P256_SCALAR_LEN 32

/* AlgorithmIdentifier { id-ecPublicKey, prime256v1 } (RFC 5480 2.1.1), as a whole element. */
static const unsigned char p256_algid[] = {
	0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
	0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
};

static const char pem_cert_begin[] = "-----BEGIN CERTIFICATE-----";
static const char pem_cert_end[] = "-----END CERTIFICATE-----";

/* The counters of keys_stats_get, shared by every thread (relaxed: they order nothing). */
static atomic_ulong n_pem_fast, n_pem_ossl, n_csr_fast, n_csr_ossl, n_leaf_fast, n_leaf_ossl;
#define COUNT(c) atomic_fetch_add_explicit(&(c), 1, memory_order_relaxed)

void
keys_stats_get(struct keys_stats *out)
{
	out->pem_fast = atomic_load_explicit(&n_pem_fast, memory_order_relaxed);
	out->pem_ossl = atomic_load_explicit(&n_pem_ossl, memory_order_relaxed);
	out->csr_fast = atomic_load_explicit(&n_csr_fast, memory_order_relaxed);
	out->csr_ossl = atomic_load_explicit(&n_csr_ossl, memory_order_relaxed);
	out->leaf_fast = atomic_load_explicit(&n_leaf_fast, memory_order_relaxed);
	out->leaf_ossl = atomic_load_explicit(&n_leaf_ossl, memory_order_relaxed);
}

/* The contents of a memory BIO as a malloc'd NUL-terminated string, or NULL. */
static char *
bio_strdup(BIO *bio)
{
	char *data = NULL, *s;
	long n;

	if ((n = BIO_get_mem_data(bio, &data)) < 0 || (n > 0 && data == NULL))
		return NULL;
	if ((s = malloc((size_t)n + 1)) == NULL)
		return NULL;
	if (n > 0)
		memcpy(s, data, (size_t)n);
	s[n] = '\0';
	return s;
}

/* One certificate from the start of a PEM text, or NULL with err set (what names the object). */
static X509 *
cert_from_pem(const char *pem, const char *what, cf_err *err)
{
	BIO *bio = NULL;
	X509 *x = NULL;

	if (pem == NULL || *pem == '\0') {
		cf_errf(err, "%s: no PEM", what);
		goto out;
	}
	if ((bio = BIO_new_mem_buf(pem, -1)) == NULL) {
		ossl_errf(err, "%s: BIO_new_mem_buf", what);
		goto out;
	}
	if ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL)
		ossl_errf(err, "%s: PEM_read_bio_X509 (no readable certificate)", what);
out:
	BIO_free(bio);
	return x;
}

/* What each key type is made of. */
static const struct key_spec {
	const char *name;  /* key_type_name */
	const char *alg;   /* OpenSSL key type */
	const char *group; /* EC group, or NULL */
	unsigned bits;     /* RSA modulus bits */
} key_specs[] = {
	[KEY_EC_P256] = { "ec-p256", "EC", "P-256", 0 },
	[KEY_EC_P384] = { "ec-p384", "EC", "P-384", 0 },
	[KEY_RSA2048] = { "rsa-2048", "RSA", NULL, 2048 },
	[KEY_RSA3072] = { "rsa-3072", "RSA", NULL, 3072 },
};
#define KEY_TYPES (sizeof(key_specs) / sizeof(key_specs[0]))

int
key_type_parse(const char *s, enum key_type *out)
{
	static const struct {
		const char *alias;
		enum key_type type;
	} aliases[] = {
		{ "p256", KEY_EC_P256 },
		{ "ecdsa", KEY_EC_P256 },
		{ "p384", KEY_EC_P384 },
	};
	size_t i;

	if (s == NULL || out == NULL)
		return -1;
	for (i = 0; i < KEY_TYPES; i++) {
		if (strcasecmp(s, key_specs[i].name) == 0) {
			*out = (enum key_type)i;
			return 0;
		}
	}
	for (i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++) {
		if (strcasecmp(s, aliases[i].alias) == 0) {
			*out = aliases[i].type;
			return 0;
		}
	}
	return -1;
}

const char *
key_type_name(enum key_type t)
{
	if ((unsigned)t < KEY_TYPES)
		return key_specs[t].name;
	return "unknown";
}

/* A key generation context for type, ready for EVP_PKEY_generate; or NULL with err set. */
static EVP_PKEY_CTX *
keygen_ctx(enum key_type type, cf_err *err)
{
	const struct key_spec *spec;
	EVP_PKEY_CTX *ctx = NULL;

	if ((unsigned)type >= KEY_TYPES) {
		cf_errf(err, "key_generate: unknown key type %d", (int)type);
		return NULL;
	}
	spec = &key_specs[type];
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, spec->alg, NULL)) == NULL ||
	    EVP_PKEY_keygen_init(ctx) != 1 ||
	    (spec->group != NULL ? EVP_PKEY_CTX_set_group_name(ctx, spec->group) :
	    EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, (int)spec->bits)) != 1) {
		ossl_errf(err, "key_generate(%s): EVP_PKEY_CTX setup", spec->name);
		EVP_PKEY_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* One key from a prepared context, or NULL with err set. */
static EVP_PKEY *
keygen_run(EVP_PKEY_CTX *ctx, enum key_type type, cf_err *err)
{
	EVP_PKEY *key = NULL;

	if (EVP_PKEY_generate(ctx, &key) != 1) {
		ossl_errf(err, "key_generate(%s): EVP_PKEY_generate", key_type_name(type));
		EVP_PKEY_free(key);
		key = NULL;
	}
	return key;
}

EVP_PKEY *
key_generate(enum key_type type, cf_err *err)
{
	EVP_PKEY_CTX *ctx;
	EVP_PKEY *key;

	if ((ctx = keygen_ctx(type, err)) == NULL)
		return NULL;
	key = keygen_run(ctx, type, err);
	EVP_PKEY_CTX_free(ctx);
	return key;
}

struct key_generator {
	EVP_PKEY_CTX *ctx[KEY_TYPES]; /* prepared on first use; the EC group is set up once */
};

struct key_generator *
key_generator_new(cf_err *err)
{
	struct key_generator *g;

	if ((g = calloc(1, sizeof(*g))) == NULL)
		cf_errf(err, "key_generator_new: out of memory");
	return g;
}

void
key_generator_free(struct key_generator *g)
{
	size_t i;

	if (g == NULL)
		return;
	for (i = 0; i < KEY_TYPES; i++)
		EVP_PKEY_CTX_free(g->ctx[i]);
	free(g);
}

EVP_PKEY *
key_generator_generate(struct key_generator *g, enum key_type type, cf_err *err)
{
	if (g == NULL) {
		cf_errf(err, "key_generator_generate: no generator");
		return NULL;
	}
	if ((unsigned)type >= KEY_TYPES) {
		cf_errf(err, "key_generate: unknown key type %d", (int)type);
		return NULL;
	}
	if (g->ctx[type] == NULL && (g->ctx[type] = keygen_ctx(type, err)) == NULL)
		return NULL;
	return keygen_run(g->ctx[type], type, err);
}

/*
 * 1 when key is an EC key on P-256 whose public point is encoded uncompressed with a named curve,
 * which is the form every fast path here writes and compares (and what key_generate makes); then
 * pub holds the point. 0 for any other key or form, which then goes to OpenSSL. Costs one provider
 * call, most of it in turning the point into octets (a field inversion).
 */
static int
p256_point(EVP_PKEY *key, unsigned char pub[P256_POINT_LEN])
{
	char group[32], enc[32];
	OSSL_PARAM params[4];
	int rc = 0;

	if (key == NULL || EVP_PKEY_get_base_id(key) != EVP_PKEY_EC)
		return 0;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group,
	    sizeof(group));
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, enc, sizeof(enc));
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pub, P256_POINT_LEN);
	params[3] = OSSL_PARAM_construct_end();
	ERR_set_mark();
	if (EVP_PKEY_get_params(key, params) == 1 && OSSL_PARAM_modified(&params[0]) &&
	    OSSL_PARAM_modified(&params[1]) && OSSL_PARAM_modified(&params[2]) &&
	    strcmp(group, "prime256v1") == 0 && strcmp(enc, OSSL_PKEY_EC_ENCODING_GROUP) == 0 &&
	    params[2].return_size == P256_POINT_LEN && pub[0] == 0x04)
		rc = 1;
	ERR_pop_to_mark();
	return rc;
}

/*
 * The PKCS#8 PrivateKeyInfo (RFC 5208) of a P-256 key as OpenSSL 3 writes it: the 36 octets
 * before the private scalar, then the scalar, then the 5 octets before the public point.
 *   PrivateKeyInfo { version 0, AlgorithmIdentifier { id-ecPublicKey, prime256v1 },
 *     OCTET STRING { ECPrivateKey { version 1, privateKey OCTET STRING (32),
 *       [1] publicKey BIT STRING (65) } } }
 * (no [0] parameters inside the ECPrivateKey: the AlgorithmIdentifier carries them).
 */
static const unsigned char p256_pkcs8_head[] = {
	0x30, 0x81, 0x87, 0x02, 0x01, 0x00,
	0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
	0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
	0x04, 0x6d, 0x30, 0x6b, 0x02, 0x01, 0x01, 0x04, 0x20,
};
static const unsigned char p256_pkcs8_mid[] = { 0xa1, 0x44, 0x03, 0x42, 0x00 };
#define P256_PKCS8_LEN \
	(sizeof(p256_pkcs8_head) + P256_SCALAR_LEN + sizeof(p256_pkcs8_mid) + P256_POINT_LEN)

/*
 * key_to_pem for a P-256 key. Returns the PEM, or NULL when the key cannot go this way (no
 * private scalar reachable): then OpenSSL's encoder decides. Secret buffers are wiped.
 */
static char *
key_to_pem_p256(EVP_PKEY *key, const unsigned char pub[P256_POINT_LEN])
{
	unsigned char der[P256_PKCS8_LEN], *p = der;
	BIGNUM *d = NULL;
	char *pem = NULL;

	ERR_set_mark();
	if (!EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, &d) || BN_is_negative(d) ||
	    BN_num_bytes(d) > P256_SCALAR_LEN)
		goto out;
	memcpy(p, p256_pkcs8_head, sizeof(p256_pkcs8_head));
	p += sizeof(p256_pkcs8_head);
	if (BN_bn2binpad(d, p, P256_SCALAR_LEN) != P256_SCALAR_LEN)
		goto out;
	p += P256_SCALAR_LEN;
	memcpy(p, p256_pkcs8_mid, sizeof(p256_pkcs8_mid));
	p += sizeof(p256_pkcs8_mid);
	memcpy(p, pub, P256_POINT_LEN);
	pem = pem_encode("PRIVATE KEY", der, sizeof(der));
out:
	ERR_pop_to_mark();
	OPENSSL_cleanse(der, sizeof(der));
	BN_clear_free(d);
	return pem;
}

char *
key_to_pem(EVP_PKEY *key, cf_err *err)
{
	unsigned char pub[P256_POINT_LEN];
	char *pem;

	if (p256_point(key, pub) == 1 && (pem = key_to_pem_p256(key, pub)) != NULL) {
		COUNT(n_pem_fast);
		return pem;
	}
	COUNT(n_pem_ossl);
	return key_to_pem_ossl(key, err);
}

char *
key_to_pem_ossl(EVP_PKEY *key, cf_err *err)
{
	BIO *bio = NULL;
	char *pem = NULL;

	if (key == NULL) {
		cf_errf(err, "key_to_pem: no key");
		goto out;
	}
	if ((bio = BIO_new(BIO_s_mem())) == NULL) {
		ossl_errf(err, "key_to_pem: BIO_new");
		goto out;
	}
	/* No cipher: an unencrypted PKCS #8 PrivateKeyInfo ("BEGIN PRIVATE KEY"). */
	if (!PEM_write_bio_PKCS8PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)) {
		ossl_errf(err, "key_to_pem: PEM_write_bio_PKCS8PrivateKey");
		goto out;
	}
	if ((pem = bio_strdup(bio)) == NULL)
		cf_errf(err, "key_to_pem: out of memory");
out:
	BIO_free(bio); /* a memory BIO clears its buffer when freed */
	return pem;
}

/*
 * Refuses to supply a passphrase: without this callback OpenSSL would prompt on the terminal for
 * an encrypted key, which must never happen inside a worker.
 */
static int
no_passphrase_cb(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

EVP_PKEY *
key_from_pem(const char *pem, cf_err *err)
{
	EVP_PKEY *key = NULL;
	BIO *bio = NULL;

	if (pem == NULL || *pem == '\0') {
		cf_errf(err, "key_from_pem: no PEM");
		goto out;
	}
	if ((bio = BIO_new_mem_buf(pem, -1)) == NULL) {
		ossl_errf(err, "key_from_pem: BIO_new_mem_buf");
		goto out;
	}
	/* Reads PKCS #8 and traditional forms ("BEGIN EC PRIVATE KEY"), not encrypted ones. */
	if ((key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase_cb, NULL)) == NULL)
		ossl_errf(err, "key_from_pem: PEM_read_bio_PrivateKey (no unencrypted key)");
out:
	BIO_free(bio);
	return key;
}

/* 0 when name can go into a dNSName (non-empty printable ASCII, no space), else -1 with err set. */
static int
csr_check_name(const char *name, size_t i, cf_err *err)
{
	const unsigned char *p;

	if (name == NULL || *name == '\0') {
		cf_errf(err, "csr_b64url: name %zu is empty", i);
		return -1;
	}
	for (p = (const unsigned char *)name; *p != '\0'; p++) {
		if (*p <= 0x20 || *p >= 0x7f) {
			cf_errf(err, "csr_b64url: name \"%.*s\" has a character that is not "
			    "printable ASCII (names must be normalized A-labels)", 253, name);
			return -1;
		}
	}
	return 0;
}

/* The subjectAltName of names as dNSName entries, or NULL with err set. */
static GENERAL_NAMES *
csr_san(const char *const *names, size_t nnames, cf_err *err)
{
	GENERAL_NAMES *gens = NULL, *res = NULL;
	GENERAL_NAME *gen = NULL;
	ASN1_IA5STRING *ia5 = NULL;
	size_t i;

	if ((gens = GENERAL_NAMES_new()) == NULL) {
		ossl_errf(err, "csr_b64url: GENERAL_NAMES_new");
		goto out;
	}
	for (i = 0; i < nnames; i++) {
		if ((gen = GENERAL_NAME_new()) == NULL || (ia5 = ASN1_IA5STRING_new()) == NULL ||
		    !ASN1_STRING_set(ia5, names[i], (int)strlen(names[i]))) {
			ossl_errf(err, "csr_b64url: dNSName %s", names[i]);
			goto out;
		}
		GENERAL_NAME_set0_value(gen, GEN_DNS, ia5);
		ia5 = NULL;
		if (!sk_GENERAL_NAME_push(gens, gen)) {
			ossl_errf(err, "csr_b64url: sk_GENERAL_NAME_push(%s)", names[i]);
			goto out;
		}
		gen = NULL;
	}
	res = gens;
	gens = NULL;
out:
	ASN1_IA5STRING_free(ia5);
	GENERAL_NAME_free(gen);
	GENERAL_NAMES_free(gens);
	return res;
}

/*
 * The checks every CSR starts with: a key, names, each one fit for a dNSName. Sets *cn to the
 * first name that fits in a CN, or NULL. 0, or -1 with err set.
 */
static int
csr_check(EVP_PKEY *key, const char *const *names, size_t nnames, const char **cn, cf_err *err)
{
	size_t i;

	*cn = NULL;
	if (key == NULL) {
		cf_errf(err, "csr_b64url: no key");
		return -1;
	}
	if (names == NULL || nnames == 0) {
		cf_errf(err, "csr_b64url: no names");
		return -1;
	}
	for (i = 0; i < nnames; i++) {
		if (csr_check_name(names[i], i, err) != 0)
			return -1;
		if (*cn == NULL && strlen(names[i]) <= CN_MAX)
			*cn = names[i];
	}
	return 0;
}

/*
 * The digest a CSR is signed with: SHA-384 for P-384 and SHA-512 for P-521 (the pairs CAs expect:
 * ecdsa-with-SHA384/512), else SHA-256 (ecdsa-with-SHA256, sha256WithRSAEncryption).
 */
static const EVP_MD *
csr_md(EVP_PKEY *key)
{
	char group[32];

	if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC &&
	    EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
	    NULL)) {
		if (strcmp(group, "secp384r1") == 0)
			return EVP_sha384();
		if (strcmp(group, "secp521r1") == 0)
			return EVP_sha512();
	}
	ERR_clear_error();
	return EVP_sha256();
}

char *
csr_b64url_ossl(EVP_PKEY *key, const char *const *names, size_t nnames, cf_err *err)
{
	STACK_OF(X509_EXTENSION) *exts = NULL;
	GENERAL_NAMES *san = NULL;
	X509_REQ *req = NULL;
	X509_NAME *subj;
	unsigned char *der = NULL;
	const char *cn = NULL;
	char *res = NULL;
	int derlen;

	if (csr_check(key, names, nnames, &cn, err) != 0)
		goto out;

	if ((req = X509_REQ_new()) == NULL || !X509_REQ_set_version(req, X509_REQ_VERSION_1)) {
		ossl_errf(err, "csr_b64url(%s): X509_REQ_new", names[0]);
		goto out;
	}
	subj = X509_REQ_get_subject_name(req);
	if (cn != NULL && !X509_NAME_add_entry_by_NID(subj, NID_commonName, MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0)) {
		ossl_errf(err, "csr_b64url(%s): X509_NAME_add_entry_by_NID(CN)", cn);
		goto out;
	}
	if ((san = csr_san(names, nnames, err)) == NULL)
		goto out;
	/* RFC 5280 4.2.1.6: with an empty subject (no name fits in a CN), the SAN is critical. */
	if (X509V3_add1_i2d(&exts, NID_subject_alt_name, san, cn == NULL ? 1 : 0,
	    X509V3_ADD_DEFAULT) != 1 || !X509_REQ_add_extensions(req, exts)) {
		ossl_errf(err, "csr_b64url(%s): adding subjectAltName", names[0]);
		goto out;
	}
	if (!X509_REQ_set_pubkey(req, key)) {
		ossl_errf(err, "csr_b64url(%s): X509_REQ_set_pubkey", names[0]);
		goto out;
	}
	if (X509_REQ_sign(req, key, csr_md(key)) <= 0) {
		ossl_errf(err, "csr_b64url(%s): X509_REQ_sign", names[0]);
		goto out;
	}
	if ((derlen = i2d_X509_REQ(req, &der)) <= 0) {
		ossl_errf(err, "csr_b64url(%s): i2d_X509_REQ", names[0]);
		der = NULL;
		goto out;
	}
	if ((res = b64url_encode(der, (size_t)derlen)) == NULL)
		cf_errf(err, "csr_b64url(%s): b64url_encode failed", names[0]);
out:
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	GENERAL_NAMES_free(san);
	X509_REQ_free(req);
	OPENSSL_free(der);
	return res;
}

/* The constant parts of a P-256 CSR (OIDs as their DER contents). */
static const unsigned char oid_cn[] = { 0x55, 0x04, 0x03 };             /* 2.5.4.3 */
static const unsigned char oid_san[] = { 0x55, 0x1d, 0x11 };            /* 2.5.29.17 */
static const unsigned char oid_ext_req[] = {                            /* 1.2.840.113549.1.9.14 */
	0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x0e,
};
static const unsigned char der_true[] = { 0x01, 0x01, 0xff };           /* BOOLEAN TRUE */
static const unsigned char der_int0[] = { 0x02, 0x01, 0x00 };           /* INTEGER 0 */
static const unsigned char der_empty_seq[] = { 0x30, 0x00 };            /* the empty Name */
static const unsigned char ecdsa_sha256_algid[] = {                     /* 1.2.840.10045.4.3.2 */
	0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
};

/*
 * The CertificationRequestInfo (RFC 2986 4.1) of a P-256 key, as OpenSSL encodes it:
 *   { version 0, subject { { CN UTF8String } } or {}, SubjectPublicKeyInfo,
 *     [0] { { extensionRequest, { { { subjectAltName, critical?, OCTET STRING {
 *       GeneralNames { [2] dNSName ... } } } } } } } }
 * Written back to front (see der.h).
 */
static void
csr_info_p256(struct der_w *w, const unsigned char pub[P256_POINT_LEN], const char *const *names,
    size_t nnames, const char *cn)
{
	size_t cri = w->len, end, i;

	/*
	 * attributes [0] { Attribute { extensionRequest, SET { Extensions { Extension {
	 * subjectAltName, critical?, OCTET STRING { GeneralNames } } } } } }: each element is the
	 * last one of the element holding it, so all of them end where the names end.
	 */
	end = w->len;
	for (i = nnames; i-- > 0;)
		der_put_tlv(w, DER_CONTEXT | 2, names[i], strlen(names[i])); /* dNSName */
	der_wrap(w, DER_SEQUENCE, end);            /* GeneralNames */
	der_wrap(w, DER_OCTET_STRING, end);        /* extnValue */
	if (cn == NULL)
		der_put(w, der_true, sizeof(der_true)); /* critical: RFC 5280 4.2.1.6 */
	der_put_tlv(w, DER_OID, oid_san, sizeof(oid_san));
	der_wrap(w, DER_SEQUENCE, end);            /* Extension */
	der_wrap(w, DER_SEQUENCE, end);            /* Extensions */
	der_wrap(w, DER_SET, end);                 /* the attribute's values */
	der_put_tlv(w, DER_OID, oid_ext_req, sizeof(oid_ext_req));
	der_wrap(w, DER_SEQUENCE, end);            /* Attribute */
	der_wrap(w, DER_CONSTRUCTED | DER_CONTEXT | 0, end);

	/* SubjectPublicKeyInfo { algorithm, subjectPublicKey BIT STRING (no unused bits) } */
	end = w->len;
	der_put(w, pub, P256_POINT_LEN);
	der_put(w, "", 1);
	der_wrap(w, DER_BIT_STRING, end);
	der_put(w, p256_algid, sizeof(p256_algid));
	der_wrap(w, DER_SEQUENCE, end);

	/* subject: RDNSequence { RelativeDistinguishedName { { id-at-commonName, UTF8String } } }
	 * or the empty RDNSequence */
	if (cn != NULL) {
		end = w->len;
		der_put_tlv(w, DER_UTF8STRING, cn, strlen(cn));
		der_put_tlv(w, DER_OID, oid_cn, sizeof(oid_cn));
		der_wrap(w, DER_SEQUENCE, end);
		der_wrap(w, DER_SET, end);
		der_wrap(w, DER_SEQUENCE, end);
	} else {
		der_put(w, der_empty_seq, sizeof(der_empty_seq));
	}
	der_put(w, der_int0, sizeof(der_int0));
	der_wrap(w, DER_SEQUENCE, cri);
}

/* csr_b64url for a P-256 key with its point, after csr_check; NULL with err set on failure. */
static char *
csr_b64url_p256(EVP_PKEY *key, const unsigned char pub[P256_POINT_LEN], const char *const *names,
    size_t nnames, const char *cn, cf_err *err)
{
	unsigned char sig[80]; /* a DER ECDSA-Sig-Value on P-256 is at most 72 octets */
	struct der_w info, req;
	EVP_MD_CTX *ctx = NULL;
	size_t siglen = sizeof(sig), i, hint = 400;
	char *res = NULL;

	for (i = 0; i < nnames; i++)
		hint += strlen(names[i]) + 4;
	der_w_init(&info, hint);
	der_w_init(&req, hint + 100);
	csr_info_p256(&info, pub, names, nnames, cn);
	if (info.err) {
		cf_errf(err, "csr_b64url(%s): out of memory", names[0]);
		goto out;
	}
	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(ctx, sig, &siglen, der_w_data(&info), info.len) != 1) {
		ossl_errf(err, "csr_b64url(%s): EVP_DigestSign(ecdsa-with-SHA256)", names[0]);
		goto out;
	}
	/* CertificationRequest { info, signatureAlgorithm, signature BIT STRING } */
	der_put(&req, sig, siglen);
	der_put(&req, "", 1);
	der_wrap(&req, DER_BIT_STRING, 0);
	der_put(&req, ecdsa_sha256_algid, sizeof(ecdsa_sha256_algid));
	der_put(&req, der_w_data(&info), info.len);
	der_wrap(&req, DER_SEQUENCE, 0);
	if (req.err) {
		cf_errf(err, "csr_b64url(%s): out of memory", names[0]);
		goto out;
	}
	if ((res = b64url_encode(der_w_data(&req), req.len)) == NULL)
		cf_errf(err, "csr_b64url(%s): b64url_encode failed", names[0]);
out:
	EVP_MD_CTX_free(ctx);
	der_w_free(&info);
	der_w_free(&req);
	return res;
}

char *
csr_b64url(EVP_PKEY *key, const char *const *names, size_t nnames, cf_err *err)
{
	unsigned char pub[P256_POINT_LEN];
	const char *cn;

	if (csr_check(key, names, nnames, &cn, err) != 0)
		return NULL;
	if (p256_point(key, pub) == 1) {
		COUNT(n_csr_fast);
		return csr_b64url_p256(key, pub, names, nnames, cn, err);
	}
	COUNT(n_csr_ossl);
	return csr_b64url_ossl(key, names, nnames, err);
}

/*
 * Finds the next "-----BEGIN CERTIFICATE-----" ... "-----END CERTIFICATE-----" block at or after
 * p. Returns 1 and sets *start and *end (just past the END line's dashes), 0 when there is none,
 * -1 when a block is not terminated.
 */
static int
pem_next_cert(const char *p, const char **start, const char **end)
{
	const char *b, *e;

	if ((b = strstr(p, pem_cert_begin)) == NULL)
		return 0;
	if ((e = strstr(b + sizeof(pem_cert_begin) - 1, pem_cert_end)) == NULL)
		return -1;
	*start = b;
	*end = e + sizeof(pem_cert_end) - 1;
	return 1;
}

/*
 * Keeps only the certificate blocks: explanatory text between them (RFC 7468 5.2) is dropped and
 * each block ends with "\n". Every block after the first must hold a certificate OpenSSL can
 * parse, unless the chain is byte for byte known_chain (already checked); the first block, the
 * leaf, is left to the caller to parse.
 */
static int
chain_split(const char *pem, char **leaf_pem, char **chain_pem, const char *known_chain, cf_err *err)
{
	cf_buf leaf = { 0 }, chain = { 0 };
	const char *p, *start, *end;
	char what[64];
	X509 *x = NULL;
	size_t n = 0;
	int r, rc = -1;

	if (leaf_pem != NULL)
		*leaf_pem = NULL;
	if (chain_pem != NULL)
		*chain_pem = NULL;
	if (leaf_pem == NULL || chain_pem == NULL) {
		cf_errf(err, "cert_chain_split: no output pointers");
		goto out;
	}
	if (pem == NULL || *pem == '\0') {
		cf_errf(err, "cert_chain_split: empty certificate chain");
		goto out;
	}
	for (p = pem; (r = pem_next_cert(p, &start, &end)) == 1; p = end, n++) {
		cf_buf *dst = n == 0 ? &leaf : &chain;

		if (cf_buf_append(dst, start, (size_t)(end - start)) != 0 ||
		    cf_buf_append(dst, "\n", 1) != 0) {
			cf_errf(err, "cert_chain_split: out of memory");
			goto out;
		}
	}
	if (r < 0) {
		cf_errf(err, "cert_chain_split: certificate %zu has no \"%s\" line", n + 1,
		    pem_cert_end);
		goto out;
	}
	if (n == 0) {
		cf_errf(err, "cert_chain_split: no \"%s\" block in the chain", pem_cert_begin);
		goto out;
	}
	if (chain.data == NULL && cf_buf_append(&chain, "", 0) != 0) {
		cf_errf(err, "cert_chain_split: out of memory");
		goto out;
	}
	if (known_chain == NULL || strcmp(known_chain, chain.data) != 0) {
		size_t i = 2;
		for (p = chain.data; pem_next_cert(p, &start, &end) == 1; p = end, i++) {
			snprintf(what, sizeof(what), "cert_chain_split: certificate %zu", i);
			if ((x = cert_from_pem(start, what, err)) == NULL)
				goto out;
			X509_free(x);
			x = NULL;
		}
	}
	*leaf_pem = leaf.data;
	*chain_pem = chain.data;
	leaf.data = chain.data = NULL;
	rc = 0;
out:
	X509_free(x);
	cf_buf_free(&leaf);
	cf_buf_free(&chain);
	return rc;
}

int
cert_chain_split(const char *pem, char **leaf_pem, char **chain_pem, cf_err *err)
{
	X509 *x;

	if (chain_split(pem, leaf_pem, chain_pem, NULL, err) != 0)
		return -1;
	if ((x = cert_from_pem(*leaf_pem, "cert_chain_split: certificate 1", err)) == NULL) {
		free(*leaf_pem);
		free(*chain_pem);
		*leaf_pem = *chain_pem = NULL;
		return -1;
	}
	X509_free(x);
	return 0;
}

/* An ASN1_TIME as unix seconds; 0 or -1 with err set. */
static int
asn1_time_unix(const ASN1_TIME *t, int64_t *out, const char *what, cf_err *err)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (t == NULL || !ASN1_TIME_to_tm(t, &tm)) {
		ossl_errf(err, "cert_info_parse: ASN1_TIME_to_tm(%s)", what);
		return -1;
	}
	*out = (int64_t)timegm(&tm);
	return 0;
}

/*
 * serial: BN_bn2hex lowercased, so whole octets ("0123..." when the first octet is below 0x10).
 * issuer: RFC 2253 with non-ASCII escaped, so ASCII; cut at sizeof(out->issuer) - 1 octets when
 * longer (an informational field; a valid certificate is never refused for it).
 */
/*
 * The RFC 2253 text of a Name (non-ASCII escaped, so ASCII) in out, cut at outlen - 1 octets when
 * longer (an informational field; a valid certificate is never refused for it). 0 or -1.
 */
static int
name_rfc2253(const X509_NAME *name, char *out, size_t outlen)
{
	char *text = NULL;
	BIO *bio;
	int rc = -1;

	if ((bio = BIO_new(BIO_s_mem())) != NULL &&
	    X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) >= 0 &&
	    (text = bio_strdup(bio)) != NULL) {
		snprintf(out, outlen, "%s", text);
		rc = 0;
	}
	free(text);
	BIO_free(bio);
	return rc;
}

static int
info_from_x509(X509 *x, struct cert_info *out, cf_err *err)
{
	BIGNUM *bn = NULL;
	char *hex = NULL;
	size_t i, n;
	int rc = -1;

	memset(out, 0, sizeof(*out));

	if ((bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL)) == NULL ||
	    (hex = BN_bn2hex(bn)) == NULL) {
		ossl_errf(err, "cert_info_parse: serial number");
		goto out;
	}
	if ((n = strlen(hex)) >= sizeof(out->serial)) {
		cf_errf(err, "cert_info_parse: serial number of %zu hex digits is too long", n);
		goto out;
	}
	for (i = 0; i <= n; i++)
		out->serial[i] = (char)tolower((unsigned char)hex[i]);

	if (asn1_time_unix(X509_get0_notBefore(x), &out->not_before, "notBefore", err) != 0 ||
	    asn1_time_unix(X509_get0_notAfter(x), &out->not_after, "notAfter", err) != 0)
		goto out;

	if (name_rfc2253(X509_get_issuer_name(x), out->issuer, sizeof(out->issuer)) != 0) {
		ossl_errf(err, "cert_info_parse: X509_NAME_print_ex(issuer)");
		goto out;
	}
	rc = 0;
out:
	BN_free(bn);
	OPENSSL_free(hex);
	return rc;
}

int
cert_info_parse(const char *leaf_pem, struct cert_info *out, cf_err *err)
{
	X509 *x;
	int rc;

	if (out == NULL) {
		cf_errf(err, "cert_info_parse: no output");
		return -1;
	}
	memset(out, 0, sizeof(*out));
	if ((x = cert_from_pem(leaf_pem, "cert_info_parse", err)) == NULL)
		return -1;
	rc = info_from_x509(x, out, err);
	X509_free(x);
	return rc;
}

static int
x509_matches_key(X509 *x, EVP_PKEY *key, cf_err *err)
{
	EVP_PKEY *pub;
	int rc = -1;

	if (key == NULL) {
		cf_errf(err, "cert_matches_key: no key");
		goto out;
	}
	if ((pub = X509_get0_pubkey(x)) == NULL) {
		ossl_errf(err, "cert_matches_key: X509_get0_pubkey");
		goto out;
	}
	/* 1 equal, 0 different, -1 different key types: all answers. -2 means it cannot compare. */
	switch (EVP_PKEY_eq(pub, key)) {
	case 1:
		rc = 1;
		break;
	case 0:
	case -1:
		ERR_clear_error();
		rc = 0;
		break;
	default:
		ossl_errf(err, "cert_matches_key: EVP_PKEY_eq cannot compare %s with %s keys",
		    EVP_PKEY_get0_type_name(pub) ? EVP_PKEY_get0_type_name(pub) : "?",
		    EVP_PKEY_get0_type_name(key) ? EVP_PKEY_get0_type_name(key) : "?");
		break;
	}
out:
	return rc;
}

int
cert_matches_key(const char *leaf_pem, EVP_PKEY *key, cf_err *err)
{
	X509 *x;
	int rc;

	if (key == NULL) {
		cf_errf(err, "cert_matches_key: no key");
		return -1;
	}
	if ((x = cert_from_pem(leaf_pem, "cert_matches_key", err)) == NULL)
		return -1;
	rc = x509_matches_key(x, key, err);
	X509_free(x);
	return rc;
}

/*
 * What cert_info_parse and cert_matches_key tell of a leaf, read without OpenSSL's certificate
 * parser: the PEM decoded and the DER walked here, the issuer Name alone given to d2i_X509_NAME
 * (for its RFC 2253 text), and the subjectPublicKeyInfo compared as octets with pub, our key's
 * P-256 point. Returns 1 (the leaf carries the key) or 0 (it does not) with *info filled, or -1
 * when the leaf is not in the forms taken here (then OpenSSL decides, and reports the errors):
 * a lax PEM or DER encoding, another key algorithm or point form, a time not in RFC 5280's form,
 * a serial too long for info->serial.
 */
static int
leaf_fast(const char *leaf_pem, const unsigned char pub[P256_POINT_LEN], struct cert_info *info)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	struct der_cert dc;
	X509_NAME *issuer = NULL;
	size_t len;
	int rc = -1;

	memset(info, 0, sizeof(*info));
	ERR_set_mark();
	if (pem_decode_strict(leaf_pem, "CERTIFICATE", &der, &len) != 0 ||
	    der_cert_parse(der, len, &dc) != 0)
		goto out;
	if (der_int_hex(dc.serial, info->serial, sizeof(info->serial)) != 0 ||
	    der_time_unix(dc.not_before_tag, dc.not_before, &info->not_before) != 0 ||
	    der_time_unix(dc.not_after_tag, dc.not_after, &info->not_after) != 0)
		goto out;
	p = dc.issuer.p;
	if ((issuer = d2i_X509_NAME(NULL, &p, (long)dc.issuer.len)) == NULL ||
	    p != dc.issuer.p + dc.issuer.len ||
	    name_rfc2253(issuer, info->issuer, sizeof(info->issuer)) != 0)
		goto out;
	/* id-ecPublicKey on prime256v1, a BIT STRING of no unused bits, an uncompressed point */
	if (dc.spki_alg.len != sizeof(p256_algid) ||
	    memcmp(dc.spki_alg.p, p256_algid, sizeof(p256_algid)) != 0 ||
	    dc.spki_key.len != 1 + P256_POINT_LEN || dc.spki_key.p[0] != 0 ||
	    dc.spki_key.p[1] != 0x04)
		goto out;
	rc = memcmp(dc.spki_key.p + 1, pub, P256_POINT_LEN) == 0 ? 1 : 0;
out:
	ERR_pop_to_mark();
	X509_NAME_free(issuer);
	free(der);
	return rc;
}

/* The same from OpenSSL's parser: 1, 0, or -1 with err set. */
static int
leaf_ossl(const char *leaf_pem, EVP_PKEY *key, struct cert_info *info, cf_err *err)
{
	X509 *x;
	int rc = -1;

	if ((x = cert_from_pem(leaf_pem, "issued certificate", err)) != NULL &&
	    info_from_x509(x, info, err) == 0)
		rc = x509_matches_key(x, key, err);
	X509_free(x);
	return rc;
}

/* cert_issued_parse, with the fast leaf path when fast. */
static int
issued_parse(const char *pem, EVP_PKEY *key, char **known_chain, struct cert_issued *out, int fast,
    cf_err *err)
{
	unsigned char pub[P256_POINT_LEN];
	int rc = -1, match = -1;

	if (out == NULL) {
		cf_errf(err, "cert_issued_parse: no output");
		return -1;
	}
	memset(out, 0, sizeof(*out));
	if (key == NULL) {
		cf_errf(err, "cert_issued_parse: no key");
		return -1;
	}
	if (chain_split(pem, &out->leaf_pem, &out->chain_pem, known_chain ? *known_chain : NULL,
	    err) != 0)
		goto out;
	if (fast && p256_point(key, pub) == 1)
		match = leaf_fast(out->leaf_pem, pub, &out->info);
	if (match >= 0) {
		COUNT(n_leaf_fast);
	} else {
		if (fast)
			COUNT(n_leaf_ossl);
		match = leaf_ossl(out->leaf_pem, key, &out->info, err);
	}
	switch (match) {
	case 1:
		break;
	case 0:
		cf_errf(err, "issued certificate does not carry the key of our CSR");
		goto out;
	default:
		goto out;
	}
	if (known_chain && (*known_chain == NULL || strcmp(*known_chain, out->chain_pem) != 0)) {
		char *copy;

		/* without memory the older chain stays: it is only a cache */
		if ((copy = strdup(out->chain_pem)) != NULL) {
			free(*known_chain);
			*known_chain = copy;
		}
	}
	rc = 0;
out:
	if (rc != 0)
		cert_issued_clear(out);
	return rc;
}

int
cert_issued_parse(const char *pem, EVP_PKEY *key, char **known_chain, struct cert_issued *out,
    cf_err *err)
{
	return issued_parse(pem, key, known_chain, out, 1, err);
}

int
cert_issued_parse_ossl(const char *pem, EVP_PKEY *key, char **known_chain,
    struct cert_issued *out, cf_err *err)
{
	return issued_parse(pem, key, known_chain, out, 0, err);
}

void
cert_issued_clear(struct cert_issued *c)
{
	if (c == NULL)
		return;
	free(c->leaf_pem);
	free(c->chain_pem);
	c->leaf_pem = c->chain_pem = NULL;
}

int
cert_chain_top_issuer_cn(const char *pem, char *out, size_t outlen, cf_err *err)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	X509 *top = NULL, *x;
	const X509_NAME *issuer;
	unsigned char *cn = NULL;
	int idx, n, rc = -1;

	if (bio == NULL) {
		cf_errf(err, "reading a certificate chain: out of memory");
		return -1;
	}
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		X509_free(top);
		top = x;
	}
	ERR_clear_error(); /* the end of the PEM text */
	if (top == NULL) {
		cf_errf(err, "the certificate chain holds no certificate");
		goto out;
	}
	issuer = X509_get_issuer_name(top);
	if ((idx = X509_NAME_get_index_by_NID(issuer, NID_commonName, -1)) < 0 ||
	    (n = ASN1_STRING_to_UTF8(&cn, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(issuer, idx)))) < 0) {
		cf_errf(err, "the topmost certificate of the chain names no issuer Common Name");
		goto out;
	}
	snprintf(out, outlen, "%.*s", n, (const char *)cn);
	rc = 0;
out:
	OPENSSL_free(cn);
	X509_free(top);
	BIO_free(bio);
	return rc;
}
