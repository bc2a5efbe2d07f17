/* certid.c - the ARI CertID (RFC 9773 4.1) of a PEM certificate: AKI keyIdentifier and serial. */
#include "certid.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "der.h"

/* The counters of certid_stats_get, shared by every thread (relaxed: they order nothing). */
static atomic_ulong n_fast, n_ossl;

void
certid_stats_get(struct certid_stats *out)
{
	out->fast = atomic_load_explicit(&n_fast, memory_order_relaxed);
	out->ossl = atomic_load_explicit(&n_ossl, memory_order_relaxed);
}

/* The CertID from the keyIdentifier and serial contents, NUL-terminated in out. */
static void
certid_put(const unsigned char *kid, size_t kidlen, const unsigned char *ser, size_t serlen,
    char out[CERTID_MAX])
{
	size_t k = b64url_put(out, kid, kidlen);

	out[k++] = '.';
	k += b64url_put(out + k, ser, serlen);
	out[k] = '\0';
}

/*
 * The CertID without OpenSSL's certificate parser, which decodes the whole certificate and its
 * public key (most of the writer's CPU for an issued certificate): the PEM decoded and the DER
 * walked by der.c, the authority key identifier read where it lies. 0; or -1 when the certificate
 * is not in the forms taken here (a lax PEM, an authority key identifier repeated or holding more
 * than a keyIdentifier, sizes out of range), and then OpenSSL decides and names the error.
 */
static int
certid_fast(const char *leaf_pem, char out[CERTID_MAX])
{
	unsigned char *der = NULL;
	struct der_cert dc;
	struct der_span aki, seq, kid;
	size_t len;
	int rc = -1;

	if (leaf_pem == NULL || pem_decode_strict(leaf_pem, "CERTIFICATE", &der, &len) != 0 ||
	    der_cert_parse(der, len, &dc) != 0 || dc.aki_count != 1)
		goto out;
	/* AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING, ... } */
	aki = dc.aki;
	if (der_expect(&aki, DER_SEQUENCE, &seq, NULL) != 0 || aki.len != 0 ||
	    der_expect(&seq, DER_CONTEXT | 0, &kid, NULL) != 0 || seq.len != 0 || kid.len < 1 ||
	    kid.len > 64 || dc.serial.len < 1 || dc.serial.len > 48)
		goto out;
	certid_put(kid.p, kid.len, dc.serial.p, dc.serial.len, out);
	rc = 0;
out:
	free(der);
	return rc;
}

int
certid_from_pem(const char *leaf_pem, char out[CERTID_MAX], cf_err *err)
{
	out[0] = '\0';
	if (certid_fast(leaf_pem, out) == 0) {
		atomic_fetch_add_explicit(&n_fast, 1, memory_order_relaxed);
		return 0;
	}
	atomic_fetch_add_explicit(&n_ossl, 1, memory_order_relaxed);
	return certid_from_pem_ossl(leaf_pem, out, err);
}

int
certid_from_pem_ossl(const char *leaf_pem, char out[CERTID_MAX], cf_err *err)
{
	BIO *bio = NULL;
	X509 *x = NULL;
	const ASN1_OCTET_STRING *kid;
	unsigned char *ser = NULL;
	struct der_span in, contents;
	int rc = -1, n;

	out[0] = '\0';
	if (leaf_pem == NULL || (bio = BIO_new_mem_buf(leaf_pem, -1)) == NULL ||
	    (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL) {
		cf_errf(err, "CertID: no PEM certificate");
		goto out;
	}
	if ((kid = X509_get0_authority_key_id(x)) == NULL) {
		/* also NULL when the extension is absent or holds only issuer and serial */
		cf_errf(err, "CertID: the certificate has no authority key identifier (keyIdentifier)");
		goto out;
	}
	if (ASN1_STRING_length(kid) < 1 || ASN1_STRING_length(kid) > 64) {
		cf_errf(err, "CertID: authority keyIdentifier of %d octets", ASN1_STRING_length(kid));
		goto out;
	}
	/* the serial's DER as the certificate carries it; its contents keep a leading zero octet */
	if ((n = i2d_ASN1_INTEGER(X509_get0_serialNumber(x), &ser)) <= 0) {
		cf_errf(err, "CertID: unreadable serial number");
		goto out;
	}
	in.p = ser;
	in.len = (size_t)n;
	if (der_expect(&in, DER_INTEGER, &contents, NULL) != 0 || contents.len < 1 || contents.len > 48) {
		cf_errf(err, "CertID: serial number of %d octets", n);
		goto out;
	}
	certid_put(ASN1_STRING_get0_data(kid), (size_t)ASN1_STRING_length(kid), contents.p,
	    contents.len, out);
	rc = 0;
out:
	if (rc != 0)
		ERR_clear_error();
	OPENSSL_free(ser);
	X509_free(x);
	BIO_free(bio);
	return rc;
}
