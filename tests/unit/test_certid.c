/* test_certid.c - unit tests of lib/certid.c: the RFC 9773 example, serials with and without a leading zero, bad input. */
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

/*
 * A signed certificate with serial serial_hex and, unless aki_hex is NULL, an authority key
 * identifier: keyIdentifier aki_hex ("" for one with the issuer and serial alone). PEM, malloc'd.
 */
static char *
make_cert(const char *serial_hex, const char *aki_hex)
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
		} else {
			akid->serial = ASN1_INTEGER_new();
			ASN1_INTEGER_set(akid->serial, 7);
		}
		X509_add1_ext_i2d(x, NID_authority_key_identifier, akid, 0, 0);
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
	EVP_PKEY_free(key);
	return CHECK_DONE();
}
