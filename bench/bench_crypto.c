/*
 * bench_crypto.c - wall-clock cost of the per-certificate crypto of the order engine, OpenSSL's
 * paths next to the fast ones: key generation, key_to_pem, csr_b64url, cert_issued_parse, JWS.
 *
 *   bench_crypto [N]      N iterations per measurement (default 2000)
 *
 * Each figure is the best of 7 rounds of N/7 calls, in nanoseconds per call, on one thread (the
 * best round is the one least disturbed by other work on the machine). Not a unit test: the
 * numbers depend on the machine; compare the columns, not the runs. For counts that do not vary,
 * run it under valgrind --tool=callgrind and read the inclusive cost of each op_* function.
 */
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base64.h"
#include "jws.h"
#include "keys.h"

#define ROUNDS 7
#define JWS_PER_CERT 9 /* JWS the engine signs per certificate with the account key */

static const char *const names[] = { "example.com", "www.example.com", "*.apps.example.com" };
static const char kid[] = "https://acme.example/acme/acct/1234567890";
static const char url[] = "https://acme.example/acme/order/1234567890/finalize";
static const char nonce[] = "oFvnlFP1wIhRlYS2jTaXbA";

static double
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The state one measured operation needs. */
struct bench {
	EVP_PKEY *acct_key;          /* signs every JWS */
	EVP_PKEY **cert_keys;        /* n of them, for key_to_pem and csr_b64url */
	size_t n;
	EVP_PKEY *leaf_key;          /* the key of chain's leaf */
	char *chain;                 /* leaf and issuer PEM, as ACME serves it */
	char *known_chain;           /* the engine's cache of the last chain checked */
	struct key_generator *gen;
	struct jws_signer *signer;
	EVP_MD_CTX *tmpl, *work, *md; /* for the signing-method comparison */
	EVP_PKEY_CTX *pkctx;
	EVP_MD *sha256;
};

typedef void (*op_fn)(struct bench *b, size_t i);

static void
die(const char *what, const cf_err *err)
{
	fprintf(stderr, "bench_crypto: %s%s%s\n", what, err ? ": " : "", err ? err->msg : "");
	exit(1);
}

static void
op_keygen_once(struct bench *b, size_t i)
{
	cf_err err;
	EVP_PKEY *k = key_generate(KEY_EC_P256, &err);

	(void)b;
	(void)i;
	if (k == NULL)
		die("key_generate", &err);
	EVP_PKEY_free(k);
}

static void
op_keygen_gen(struct bench *b, size_t i)
{
	cf_err err;
	EVP_PKEY *k = key_generator_generate(b->gen, KEY_EC_P256, &err);

	(void)i;
	if (k == NULL)
		die("key_generator_generate", &err);
	EVP_PKEY_free(k);
}

static void
op_pem_ossl(struct bench *b, size_t i)
{
	cf_err err;
	char *pem = key_to_pem_ossl(b->cert_keys[i % b->n], &err);

	if (pem == NULL)
		die("key_to_pem_ossl", &err);
	free(pem);
}

static void
op_pem(struct bench *b, size_t i)
{
	cf_err err;
	char *pem = key_to_pem(b->cert_keys[i % b->n], &err);

	if (pem == NULL)
		die("key_to_pem", &err);
	free(pem);
}

static void
op_csr_ossl(struct bench *b, size_t i)
{
	cf_err err;
	char *csr = csr_b64url_ossl(b->cert_keys[i % b->n], names, 3, &err);

	if (csr == NULL)
		die("csr_b64url_ossl", &err);
	free(csr);
}

static void
op_csr(struct bench *b, size_t i)
{
	cf_err err;
	char *csr = csr_b64url(b->cert_keys[i % b->n], names, 3, &err);

	if (csr == NULL)
		die("csr_b64url", &err);
	free(csr);
}

static void
op_parse_ossl(struct bench *b, size_t i)
{
	struct cert_issued ci;
	cf_err err;

	(void)i;
	if (cert_issued_parse_ossl(b->chain, b->leaf_key, &b->known_chain, &ci, &err) != 0)
		die("cert_issued_parse_ossl", &err);
	cert_issued_clear(&ci);
}

static void
op_parse(struct bench *b, size_t i)
{
	struct cert_issued ci;
	cf_err err;

	(void)i;
	if (cert_issued_parse(b->chain, b->leaf_key, &b->known_chain, &ci, &err) != 0)
		die("cert_issued_parse", &err);
	cert_issued_clear(&ci);
}

static void
op_jws_once(struct bench *b, size_t i)
{
	cf_err err;
	char *jws = jws_sign(b->acct_key, kid, nonce, url, i % 2 ? NULL : "{\"csr\":\"MIIB\"}", &err);

	if (jws == NULL)
		die("jws_sign", &err);
	free(jws);
}

static void
op_jws_signer(struct bench *b, size_t i)
{
	cf_err err;
	char *jws = jws_signer_sign(b->signer, kid, nonce, url, i % 2 ? NULL : "{\"csr\":\"MIIB\"}", &err);

	if (jws == NULL)
		die("jws_signer_sign", &err);
	free(jws);
}

/* The signing methods a prepared signer could use, for 200 octets (a typical signing input). */
static const unsigned char msg[200] = { 'x' };

static void
op_sign_init(struct bench *b, size_t i)
{
	unsigned char sig[80];
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	(void)i;
	if (ctx == NULL || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, b->acct_key) != 1 ||
	    EVP_DigestSign(ctx, sig, &siglen, msg, sizeof(msg)) != 1)
		die("EVP_DigestSignInit + EVP_DigestSign", NULL);
	EVP_MD_CTX_free(ctx);
}

static void
op_sign_copy(struct bench *b, size_t i)
{
	unsigned char sig[80];
	size_t siglen = sizeof(sig);

	(void)i;
	if (!EVP_MD_CTX_copy_ex(b->work, b->tmpl) ||
	    EVP_DigestSign(b->work, sig, &siglen, msg, sizeof(msg)) != 1)
		die("EVP_MD_CTX_copy_ex + EVP_DigestSign", NULL);
}

static void
op_sign_prepared(struct bench *b, size_t i)
{
	unsigned char sig[80], md[32];
	size_t siglen = sizeof(sig);
	unsigned int mdlen;

	(void)i;
	if (EVP_DigestInit_ex2(b->md, b->sha256, NULL) != 1 ||
	    EVP_DigestUpdate(b->md, msg, sizeof(msg)) != 1 ||
	    EVP_DigestFinal_ex(b->md, md, &mdlen) != 1 ||
	    EVP_PKEY_sign(b->pkctx, sig, &siglen, md, sizeof(md)) != 1)
		die("EVP_Digest + prepared EVP_PKEY_sign", NULL);
}

/* The best ns per call of op over n calls, in ROUNDS rounds, after a warm-up. */
static double
measure(struct bench *b, op_fn op, size_t n)
{
	double t[ROUNDS];
	size_t per = n / ROUNDS ? n / ROUNDS : 1, r, i;

	for (i = 0; i < per / 10 + 1; i++)
		op(b, i);
	for (r = 0; r < ROUNDS; r++) {
		double t0 = now_ns();

		for (i = 0; i < per; i++)
			op(b, i);
		t[r] = (now_ns() - t0) / (double)per;
	}
	qsort(t, ROUNDS, sizeof(t[0]), cmp_double);
	return t[0];
}

static void
row(const char *what, double old_ns, double new_ns)
{
	printf("%-26s %12.0f %12.0f %8.2fx\n", what, old_ns, new_ns, old_ns / new_ns);
}

/* A certificate for key, signed by issuer_key (self-signed when issuer is NULL), as PEM. */
static char *
cert_pem(EVP_PKEY *key, const char *cn, const char *serial_hex, X509 *issuer, EVP_PKEY *issuer_key,
    X509 **out)
{
	X509 *x = X509_new();
	BIGNUM *serial = NULL;
	X509_NAME *subj;
	X509V3_CTX v3;
	X509_EXTENSION *ext = NULL;
	BIO *bio = BIO_new(BIO_s_mem());
	char *data = NULL, *pem = NULL;
	long len;

	subj = x ? X509_get_subject_name(x) : NULL;
	if (x == NULL || bio == NULL || !X509_set_version(x, X509_VERSION_3) ||
	    !BN_hex2bn(&serial, serial_hex) || BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) == NULL ||
	    ASN1_TIME_set(X509_getm_notBefore(x), 1700000000) == NULL ||
	    ASN1_TIME_set(X509_getm_notAfter(x), 1700000000 + 90 * 86400) == NULL ||
	    !X509_set_pubkey(x, key) ||
	    !X509_NAME_add_entry_by_txt(subj, "C", MBSTRING_ASC, (const unsigned char *)"US", -1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(subj, "O", MBSTRING_ASC, (const unsigned char *)"Example CA", -1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0) ||
	    !X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : subj))
		die("building a certificate", NULL);
	X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name,
	    "DNS:example.com,DNS:www.example.com,DNS:*.apps.example.com")) == NULL ||
	    !X509_add_ext(x, ext, -1) || X509_sign(x, issuer_key, EVP_sha256()) <= 0 ||
	    !PEM_write_bio_X509(bio, x) || (len = BIO_get_mem_data(bio, &data)) <= 0 ||
	    (pem = malloc((size_t)len + 1)) == NULL)
		die("signing a certificate", NULL);
	memcpy(pem, data, (size_t)len);
	pem[len] = '\0';
	X509_EXTENSION_free(ext);
	BIO_free(bio);
	BN_free(serial);
	if (out != NULL)
		*out = x;
	else
		X509_free(x);
	return pem;
}

int
main(int argc, char **argv)
{
	struct bench b;
	size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 2000, i;
	double kg[2], pem[2], csr[2], parse[2], jws[2], per_cert[2];
	struct keys_stats st;
	EVP_PKEY *ca_key;
	X509 *ca;
	char *ca_pem, *leaf_pem;
	cf_err err;

	if (n < ROUNDS) {
		fprintf(stderr, "usage: bench_crypto [N >= %d]\n", ROUNDS);
		return 2;
	}
	memset(&b, 0, sizeof(b));
	b.n = 64;
	if ((b.gen = key_generator_new(&err)) == NULL || (b.cert_keys = calloc(b.n, sizeof(EVP_PKEY *))) == NULL)
		die("setup", &err);
	for (i = 0; i < b.n; i++) {
		if ((b.cert_keys[i] = key_generator_generate(b.gen, KEY_EC_P256, &err)) == NULL)
			die("key_generator_generate", &err);
	}
	if ((b.acct_key = key_generate(KEY_EC_P256, &err)) == NULL ||
	    (b.leaf_key = key_generate(KEY_EC_P256, &err)) == NULL ||
	    (ca_key = key_generate(KEY_EC_P256, &err)) == NULL ||
	    (b.signer = jws_signer_new(b.acct_key, &err)) == NULL)
		die("setup", &err);
	ca_pem = cert_pem(ca_key, "Example Intermediate CA R1", "7F3A", NULL, ca_key, &ca);
	leaf_pem = cert_pem(b.leaf_key, "example.com", "03A1B2C3D4E5F60718293A4B5C6D7E8F9001", ca, ca_key, NULL);
	if ((b.chain = malloc(strlen(leaf_pem) + strlen(ca_pem) + 1)) == NULL)
		die("setup", NULL);
	strcpy(b.chain, leaf_pem);
	strcat(b.chain, ca_pem);

	if ((b.sha256 = EVP_MD_fetch(NULL, "SHA2-256", NULL)) == NULL ||
	    (b.tmpl = EVP_MD_CTX_new()) == NULL || (b.work = EVP_MD_CTX_new()) == NULL ||
	    (b.md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(b.tmpl, NULL, b.sha256, NULL, b.acct_key) != 1 ||
	    (b.pkctx = EVP_PKEY_CTX_new_from_pkey(NULL, b.acct_key, NULL)) == NULL ||
	    EVP_PKEY_sign_init(b.pkctx) != 1 || EVP_PKEY_CTX_set_signature_md(b.pkctx, b.sha256) != 1)
		die("setup of the signing methods", NULL);

	printf("bench_crypto: EC P-256, %zu calls per figure, ns per call (best of %d rounds)\n\n",
	    n, ROUNDS);
	printf("%-26s %12s %12s %9s\n", "operation", "OpenSSL path", "fast path", "speed-up");
	kg[0] = measure(&b, op_keygen_once, n);
	kg[1] = measure(&b, op_keygen_gen, n);
	row("key generation", kg[0], kg[1]);
	pem[0] = measure(&b, op_pem_ossl, n);
	pem[1] = measure(&b, op_pem, n);
	row("key_to_pem", pem[0], pem[1]);
	csr[0] = measure(&b, op_csr_ossl, n);
	csr[1] = measure(&b, op_csr, n);
	row("csr_b64url (3 names)", csr[0], csr[1]);
	parse[0] = measure(&b, op_parse_ossl, n);
	parse[1] = measure(&b, op_parse, n);
	row("cert_issued_parse", parse[0], parse[1]);
	jws[0] = measure(&b, op_jws_once, n);
	jws[1] = measure(&b, op_jws_signer, n);
	row("jws_sign / jws_signer_sign", jws[0], jws[1]);
	for (i = 0; i < 2; i++)
		per_cert[i] = kg[i] + pem[i] + csr[i] + parse[i] + JWS_PER_CERT * jws[i];
	printf("\nper certificate (1 key, 1 CSR, 1 PEM, 1 chain, %d JWS):\n", JWS_PER_CERT);
	row("  total", per_cert[0], per_cert[1]);

	printf("\nECDSA P-256 signing methods for a prepared signer (200-octet input):\n");
	printf("  EVP_DigestSignInit + EVP_DigestSign each time   %8.0f\n", measure(&b, op_sign_init, n));
	printf("  EVP_MD_CTX_copy_ex of a template + DigestSign   %8.0f\n", measure(&b, op_sign_copy, n));
	printf("  SHA-256 + EVP_PKEY_sign on a prepared context   %8.0f  (jws_signer's)\n",
	    measure(&b, op_sign_prepared, n));

	keys_stats_get(&st);
	printf("\npaths taken: key_to_pem %lu fast / %lu OpenSSL, csr %lu / %lu, leaves %lu / %lu\n",
	    st.pem_fast, st.pem_ossl, st.csr_fast, st.csr_ossl, st.leaf_fast, st.leaf_ossl);

	for (i = 0; i < b.n; i++)
		EVP_PKEY_free(b.cert_keys[i]);
	free(b.cert_keys);
	EVP_PKEY_free(b.acct_key);
	EVP_PKEY_free(b.leaf_key);
	EVP_PKEY_free(ca_key);
	X509_free(ca);
	free(ca_pem);
	free(leaf_pem);
	free(b.chain);
	free(b.known_chain);
	key_generator_free(b.gen);
	jws_signer_free(b.signer);
	EVP_MD_CTX_free(b.tmpl);
	EVP_MD_CTX_free(b.work);
	EVP_MD_CTX_free(b.md);
	EVP_PKEY_CTX_free(b.pkctx);
	EVP_MD_free(b.sha256);
	return 0;
}
