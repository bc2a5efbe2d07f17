/* test_certid.c - unit tests of lib/certid.c: the RFC 9773 example, serials with and without a leading zero, bad input, the DER walk against OpenSSL's parser. */
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "base64.h"
#include "certid.h"
#include "check.h"

static EVP_PKEY *key;

/* octets of hex into buf; the count */
static size_t
unhex(const char *hex, unsigned char *buf)
{
	size_t n = 0;
	for (; hex[0] && hex[1]; hex += 2)
		buf[n++] = (unsigned char)(hex_digit((unsigned char)hex[0]) << 4 | hex_digit((unsigned char)hex[1]));
	return n;
}

/* What make_cert_ex adds to the authority key identifier. */
enum {
	AKI_ISSUER_SERIAL = 1, /* authorityCertSerialNumber beside the keyIdentifier */
	AKI_TWICE = 2,         /* the extension a second time */
};

/*
 * A signed certificate with serial serial_hex and, unless aki_hex is NULL, an authority key
 * identifier: keyIdentifier aki_hex ("" for one with the issuer and serial alone), with what
 * flags add. PEM, malloc'd.
 */
static char *
make_cert_ex(const char *serial_hex, const char *aki_hex, int flags)
{
	X509 *x = X509_new();
	BIGNUM *bn = NULL;
	ASN1_INTEGER *serial = NULL;
	X509_NAME *name = X509_NAME_new();
	BIO *bio = BIO_new(BIO_s_mem());
	char *pem = NULL, *data;
	long n;

	BN_hex2bn(&bn, serial_hex);
	serial = BN_to_ASN1_INTEGER(bn, NULL);
	X509_set_version(x, 2);
	X509_set_serialNumber(x, serial);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"certid test", -1, -1, 0);
	X509_set_subject_name(x, name);
	X509_set_issuer_name(x, name);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	if (aki_hex != NULL) {
		AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
		if (aki_hex[0] != '\0') {
			unsigned char buf[64];
			size_t len = unhex(aki_hex, buf);
			akid->keyid = ASN1_OCTET_STRING_new();
			ASN1_OCTET_STRING_set(akid->keyid, buf, (int)len);
		}
		if (aki_hex[0] == '\0' || (flags & AKI_ISSUER_SERIAL)) {
			akid->serial = ASN1_INTEGER_new();
			ASN1_INTEGER_set(akid->serial, 7);
		}
		X509_add1_ext_i2d(x, NID_authority_key_identifier, akid, 0, 0);
		if (flags & AKI_TWICE)
			X509_add1_ext_i2d(x, NID_authority_key_identifier, akid, 0, X509V3_ADD_APPEND);
		AUTHORITY_KEYID_free(akid);
	}
	if (X509_sign(x, key, EVP_sha256()) > 0 && PEM_write_bio_X509(bio, x) == 1 &&
	    (n = BIO_get_mem_data(bio, &data)) > 0)
		pem = strndup(data, (size_t)n);
	BIO_free(bio);
	X509_NAME_free(name);
	ASN1_INTEGER_free(serial);
	BN_free(bn);
	X509_free(x);
	return pem;
}

static char *
make_cert(const char *serial_hex, const char *aki_hex)
{
	return make_cert_ex(serial_hex, aki_hex, 0);
}

/* The CertID of a certificate made with serial_hex and aki_hex; "" when certid_from_pem failed. */
static void
certid_of(const char *serial_hex, const char *aki_hex, char out[CERTID_MAX], cf_err *err)
{
	char *pem = make_cert(serial_hex, aki_hex);
	CHECK(pem != NULL);
	if (certid_from_pem(pem, out, err) != 0)
		out[0] = '\0';
	free(pem);
}

/* ---- bad input first ---- */

static void
test_bad_input(void)
{
	char out[CERTID_MAX];
	cf_err err;
	char *pem;

	CHECK(certid_from_pem(NULL, out, &err) == -1);
	CHECK(check_says(err.msg, "no PEM certificate"));
	CHECK(certid_from_pem("", out, &err) == -1);
	CHECK(certid_from_pem("garbage\n", out, &err) == -1);
	CHECK(check_says(err.msg, "no PEM certificate"));
	CHECK(certid_from_pem("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", out, &err) == -1);
	CHECK(check_says(err.msg, "no PEM certificate"));
	/* a certificate cut in half */
	pem = make_cert("0102", "0a0b");
	CHECK(pem != NULL);
	pem[strlen(pem) / 2] = '\0';
	CHECK(certid_from_pem(pem, out, &err) == -1);
	free(pem);
	CHECK(out[0] == '\0');
}

static void
test_no_aki(void)
{
	char out[CERTID_MAX];
	cf_err err;

	certid_of("0102", NULL, out, &err);
	CHECK_STR(out, "");
	CHECK(check_says(err.msg, "no authority key identifier"));
	/* an AKI that names the issuer's serial but no keyIdentifier */
	certid_of("0102", "", out, &err);
	CHECK_STR(out, "");
	CHECK(check_says(err.msg, "no authority key identifier"));
}

/* ---- RFC 9773 section 4.1's example ---- */

static void
test_rfc9773_example(void)
{
	char out[CERTID_MAX];
	cf_err err;

	/* keyIdentifier 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4, serial 0x87654321:
	 * its DER contents carry the leading zero, 00 87 65 43 21 */
	certid_of("87654321", "69885B6B87464041E1B37B847BA0AE2CDE01C8D4", out, &err);
	CHECK_STR(out, "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
}

/* The CertID computed apart: base64url of the key id and of the serial's magnitude, with a zero
 * octet first when its top bit is set (what BN_bn2bin leaves out). */
static void
expect_certid(const char *serial_hex, const char *aki_hex)
{
	unsigned char kid[64], ser[64];
	size_t nk = unhex(aki_hex, kid), ns = 0;
	unsigned char mag[64];
	size_t nm = unhex(serial_hex, mag);
	char want[CERTID_MAX], out[CERTID_MAX];
	cf_err err;

	if (mag[0] & 0x80)
		ser[ns++] = 0;
	memcpy(ser + ns, mag, nm);
	ns += nm;
	size_t k = b64url_put(want, kid, nk);
	want[k++] = '.';
	want[k + b64url_put(want + k, ser, ns)] = '\0';
	certid_of(serial_hex, aki_hex, out, &err);
	CHECK_STR(out, want);
}

static void
test_serials(void)
{
	/* top bit clear: no zero octet; set: one; a 20-octet serial as CAs draw them; a 1-octet one */
	expect_certid("7F00FF", "0102030405060708090A0B0C0D0E0F1011121314");
	expect_certid("FF00FF", "0102030405060708090A0B0C0D0E0F1011121314");
	expect_certid("05A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3", "AB");
	expect_certid("7A55E0F1C2D3B4A5968778695A4B3C2D1E0F1A2B", "CDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCD");
	expect_certid("01", "00");
}

/* ---- the DER walk and OpenSSL's parser give the same ---- */

/* certid_from_pem and certid_from_pem_ossl on pem agree; which way it took goes to *fast. */
static void
expect_same(const char *pem, const char *want, int *fast)
{
	char a[CERTID_MAX], b[CERTID_MAX];
	struct certid_stats s0, s1;
	cf_err ea, eb;
	int ra, rb;

	certid_stats_get(&s0);
	ra = certid_from_pem(pem, a, &ea);
	certid_stats_get(&s1);
	rb = certid_from_pem_ossl(pem, b, &eb);
	CHECK(ra == rb);
	CHECK_STR(a, b);
	if (want != NULL)
		CHECK_STR(a, want);
	if (ra != 0)
		CHECK_STR(ea.msg, eb.msg);
	CHECK(s1.fast + s1.ossl == s0.fast + s0.ossl + 1);
	*fast = s1.fast == s0.fast + 1;
}

static void
test_fast_path(void)
{
	static const char *const serials[] = { "01", "7F", "80", "FF00FF", "0100", "7A55E0F1C2D3B4A5968778695A4B3C2D1E0F1A2B",
		"87654321", "05A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3" };
	char *pem;
	int fast;

	/* a CA's usual certificate: a keyIdentifier alone; the walk takes it and agrees */
	for (size_t i = 0; i < sizeof(serials) / sizeof(serials[0]); i++) {
		pem = make_cert(serials[i], "69885B6B87464041E1B37B847BA0AE2CDE01C8D4");
		CHECK(pem != NULL);
		expect_same(pem, NULL, &fast);
		CHECK(fast);
		free(pem);
	}
	pem = make_cert("87654321", "69885B6B87464041E1B37B847BA0AE2CDE01C8D4");
	expect_same(pem, "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE", &fast);
	CHECK(fast);

	/* the same with CRLF line ends (RFC 7468 allows them): the walk takes it too */
	cf_buf crlf = { 0 };
	for (const char *p = pem; *p; p++)
		CHECK((*p != '\n' || cf_buf_append(&crlf, "\r", 1) == 0) && cf_buf_append(&crlf, p, 1) == 0);
	expect_same(crlf.data, "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE", &fast);
	CHECK(fast);
	free(pem);
	cf_buf_free(&crlf);

	/* a PEM with no line breaks in its base64 is lax: OpenSSL reads it, with the same answer */
	pem = make_cert("0102", "0A0B");
	char flat[4096];
	size_t k = 0;
	const char *b = strchr(pem, '\n') + 1, *e = strstr(pem, "-----END");
	k += (size_t)snprintf(flat, sizeof(flat), "-----BEGIN CERTIFICATE-----\n");
	for (const char *p = b; p < e; p++)
		if (*p != '\n')
			flat[k++] = *p;
	k += (size_t)snprintf(flat + k, sizeof(flat) - k, "\n-----END CERTIFICATE-----\n");
	expect_same(flat, "Cgs.AQI", &fast);
	CHECK(!fast);
	free(pem);

	/* a keyIdentifier beside the issuer's serial: OpenSSL reads it, with the keyIdentifier */
	pem = make_cert_ex("0102", "0A0B", AKI_ISSUER_SERIAL);
	expect_same(pem, "Cgs.AQI", &fast);
	CHECK(!fast);
	free(pem);

	/* the extension twice: no CertID either way, with OpenSSL's reason */
	pem = make_cert_ex("0102", "0A0B", AKI_TWICE);
	expect_same(pem, "", &fast);
	CHECK(!fast);
	free(pem);

	/* no extension, one without a keyIdentifier: the same error either way */
	pem = make_cert("0102", NULL);
	expect_same(pem, "", &fast);
	free(pem);
	pem = make_cert("0102", "");
	expect_same(pem, "", &fast);
	free(pem);
}

int
main(void)
{
	EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, NULL);
	if (kc == NULL || EVP_PKEY_keygen_init(kc) <= 0 ||
	    EVP_PKEY_CTX_set_ec_paramgen_curve_nid(kc, NID_X9_62_prime256v1) <= 0 || EVP_PKEY_keygen(kc, &key) <= 0) {
		fprintf(stderr, "no test key\n");
		return 1;
	}
	EVP_PKEY_CTX_free(kc);
	RUN(test_bad_input);
	RUN(test_no_aki);
	RUN(test_rfc9773_example);
	RUN(test_serials);
	RUN(test_fast_path);
	EVP_PKEY_free(key);
	return CHECK_DONE();
}
