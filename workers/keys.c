/* keys.c - key generation, PKCS#8 PEM, CSRs, and parsing of issued certificates (OpenSSL 3). */
#include "keys.h"

#include <ctype.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "jws.h"

#define CN_MAX 64 /* ub-common-name (RFC 5280 appendix A.1) */

static const char pem_cert_begin[] = "-----BEGIN CERTIFICATE-----";
static const char pem_cert_end[] = "-----END CERTIFICATE-----";

/*
 * Leaves "<what>: <last OpenSSL error>" in err and empties this thread's OpenSSL error queue, so
 * that a stale error never shows up in the message of a later, unrelated failure.
 */
void
ossl_errf(cf_err *err, const char *fmt, ...)
{
	char what[256], reason[256];
	unsigned long code;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	code = ERR_peek_last_error();
	if (code != 0)
		ERR_error_string_n(code, reason, sizeof(reason));
	else
		snprintf(reason, sizeof(reason), "no OpenSSL error reported");
	cf_errf(err, "%s: %s", what, reason);
	ERR_clear_error();
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

int
key_type_parse(const char *s, enum key_type *out)
{
	if (s == NULL || out == NULL)
		return -1;
	if (strcasecmp(s, "ec-p256") == 0 || strcasecmp(s, "p256") == 0 ||
	    strcasecmp(s, "ecdsa") == 0) {
		*out = KEY_EC_P256;
		return 0;
	}
	return -1;
}

const char *
key_type_name(enum key_type t)
{
	switch (t) {
	case KEY_EC_P256:
		return "ec-p256";
	}
	return "unknown";
}

EVP_PKEY *
key_generate(enum key_type type, cf_err *err)
{
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *key = NULL;

	if (type != KEY_EC_P256) {
		cf_errf(err, "key_generate: unknown key type %d", (int)type);
		goto out;
	}
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
	    EVP_PKEY_keygen_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_group_name(ctx, "P-256") != 1) {
		ossl_errf(err, "key_generate(%s): EVP_PKEY_CTX setup", key_type_name(type));
		goto out;
	}
	if (EVP_PKEY_generate(ctx, &key) != 1)
		ossl_errf(err, "key_generate(%s): EVP_PKEY_generate", key_type_name(type));
out:
	EVP_PKEY_CTX_free(ctx);
	return key;
}

char *
key_to_pem(EVP_PKEY *key, cf_err *err)
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

char *
csr_b64url(EVP_PKEY *key, const char *const *names, size_t nnames, cf_err *err)
{
	STACK_OF(X509_EXTENSION) *exts = NULL;
	GENERAL_NAMES *san = NULL;
	X509_REQ *req = NULL;
	X509_NAME *subj;
	unsigned char *der = NULL;
	const char *cn = NULL;
	char *res = NULL;
	size_t i;
	int derlen;

	if (key == NULL) {
		cf_errf(err, "csr_b64url: no key");
		goto out;
	}
	if (names == NULL || nnames == 0) {
		cf_errf(err, "csr_b64url: no names");
		goto out;
	}
	for (i = 0; i < nnames; i++) {
		if (csr_check_name(names[i], i, err) != 0)
			goto out;
		if (cn == NULL && strlen(names[i]) <= CN_MAX)
			cn = names[i];
	}

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
	if (X509_REQ_sign(req, key, EVP_sha256()) <= 0) {
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
static int
info_from_x509(X509 *x, struct cert_info *out, cf_err *err)
{
	BIGNUM *bn = NULL;
	char *hex = NULL, *issuer = NULL;
	BIO *bio = NULL;
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

	if ((bio = BIO_new(BIO_s_mem())) == NULL ||
	    X509_NAME_print_ex(bio, X509_get_issuer_name(x), 0, XN_FLAG_RFC2253) < 0 ||
	    (issuer = bio_strdup(bio)) == NULL) {
		ossl_errf(err, "cert_info_parse: X509_NAME_print_ex(issuer)");
		goto out;
	}
	snprintf(out->issuer, sizeof(out->issuer), "%s", issuer);
	rc = 0;
out:
	BN_free(bn);
	OPENSSL_free(hex);
	free(issuer);
	BIO_free(bio);
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

int
cert_issued_parse(const char *pem, EVP_PKEY *key, char **known_chain, struct cert_issued *out, cf_err *err)
{
	X509 *x = NULL;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (chain_split(pem, &out->leaf_pem, &out->chain_pem, known_chain ? *known_chain : NULL, err) != 0)
		goto out;
	if ((x = cert_from_pem(out->leaf_pem, "issued certificate", err)) == NULL ||
	    info_from_x509(x, &out->info, err) != 0)
		goto out;
	switch (x509_matches_key(x, key, err)) {
	case 1:
		break;
	case 0:
		cf_errf(err, "issued certificate does not carry the key of our CSR");
		goto out;
	default:
		goto out;
	}
	if (known_chain && (*known_chain == NULL || strcmp(*known_chain, out->chain_pem) != 0)) {
		free(*known_chain);
		*known_chain = strdup(out->chain_pem);
	}
	rc = 0;
out:
	X509_free(x);
	if (rc != 0)
		cert_issued_clear(out);
	return rc;
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
