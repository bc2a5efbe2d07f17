/*
 * fuzz_der_cert.c - fuzz target of lib/der.c's certificate walk, the parser of what the CA
 * sends: any octets as a DER certificate and as PEM text. Whatever der_cert_parse accepts,
 * OpenSSL's d2i_X509 must accept too, with the same serial, validity and issuer; pem_decode_strict
 * must decode as OpenSSL's PEM reader does. A difference aborts.
 *
 *   clang -fsanitize=fuzzer,address,undefined ... tests/fuzz/fuzz_der_cert.c lib/der.c
 *   cc -DFUZZ_REPLAY_MAIN ... (a main that runs the files named on the command line: the corpus)
 */
#include <ctype.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "der.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void __attribute__((noreturn))
fail(const char *what)
{
	fprintf(stderr, "fuzz_der_cert: %s\n", what);
	abort();
}

/* Checks what der_cert_parse made of data against OpenSSL's reading of the same octets. */
static void
check_cert(const uint8_t *data, size_t size)
{
	const unsigned char *p = data;
	struct der_cert dc;
	struct tm tm;
	BIGNUM *bn = NULL;
	X509 *x;
	X509_NAME *issuer;
	char mine[200], *hex;
	int64_t t;
	size_t i;

	if (der_cert_parse(data, size, &dc) != 0)
		return;
	if ((x = d2i_X509(NULL, &p, (long)size)) == NULL || p != data + size)
		fail("der_cert_parse accepted what d2i_X509 refuses");
	if (der_int_hex(dc.serial, mine, sizeof(mine)) == 0) {
		if ((bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL)) == NULL ||
		    (hex = BN_bn2hex(bn)) == NULL)
			fail("BN_bn2hex");
		for (i = 0; hex[i]; i++)
			hex[i] = (char)tolower((unsigned char)hex[i]);
		if (strcmp(hex, mine) != 0)
			fail("der_int_hex differs from BN_bn2hex");
		OPENSSL_free(hex);
		BN_free(bn);
	}
	memset(&tm, 0, sizeof(tm));
	if (der_time_unix(dc.not_before_tag, dc.not_before, &t) == 0 &&
	    (!ASN1_TIME_to_tm(X509_get0_notBefore(x), &tm) || (int64_t)timegm(&tm) != t))
		fail("der_time_unix differs from ASN1_TIME_to_tm (notBefore)");
	memset(&tm, 0, sizeof(tm));
	if (der_time_unix(dc.not_after_tag, dc.not_after, &t) == 0 &&
	    (!ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) || (int64_t)timegm(&tm) != t))
		fail("der_time_unix differs from ASN1_TIME_to_tm (notAfter)");
	p = dc.issuer.p;
	if ((issuer = d2i_X509_NAME(NULL, &p, (long)dc.issuer.len)) == NULL ||
	    p != dc.issuer.p + dc.issuer.len || X509_NAME_cmp(issuer, X509_get_issuer_name(x)) != 0)
		fail("the issuer span is not the certificate's issuer");
	X509_NAME_free(issuer);
	X509_free(x);
}

/* Checks pem_decode_strict on data as text against PEM_read_bio. */
static void
check_pem(const uint8_t *data, size_t size)
{
	unsigned char *der = NULL, *odata = NULL;
	char *text, *name = NULL, *header = NULL;
	size_t len = 0;
	long olen = 0;
	BIO *bio;

	if ((text = malloc(size + 1)) == NULL)
		return;
	memcpy(text, data, size);
	text[size] = '\0';
	if (pem_decode_strict(text, "CERTIFICATE", &der, &len) == 0) {
		if ((bio = BIO_new_mem_buf(text, -1)) == NULL ||
		    !PEM_read_bio(bio, &name, &header, &odata, &olen) || strcmp(name, "CERTIFICATE") != 0 ||
		    (size_t)olen != len || memcmp(odata, der, len) != 0)
			fail("pem_decode_strict differs from PEM_read_bio");
		BIO_free(bio);
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_free(odata);
		free(der);
	}
	free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_cert(data, size);
	check_pem(data, size);
	ERR_clear_error();
	return 0;
}

#define FUZZ_TARGET_NAME "fuzz_der_cert"
#include "replay.h"
