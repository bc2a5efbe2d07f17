/* certid.c - the ARI CertID (RFC 9773 4.1) of a PEM certificate: AKI keyIdentifier and serial. */
#include "certid.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "der.h"

int
certid_from_pem(const char *leaf_pem, char out[CERTID_MAX], cf_err *err)
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
	size_t k = b64url_put(out, ASN1_STRING_get0_data(kid), (size_t)ASN1_STRING_length(kid));
	out[k++] = '.';
	k += b64url_put(out + k, contents.p, contents.len);
	out[k] = '\0';
	rc = 0;
out:
	if (rc != 0)
		ERR_clear_error();
	OPENSSL_free(ser);
	X509_free(x);
	BIO_free(bio);
	return rc;
}
