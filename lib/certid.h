/* certid.h - the ARI CertID of a certificate (RFC 9773 section 4.1), as renewalInfo and newOrder's "replaces" take it. */
#ifndef CF_CERTID_H
#define CF_CERTID_H

#include <stddef.h>

#include "cf.h"

/* "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE": two base64url parts of at most 64 and 48 octets. */
#define CERTID_MAX 160

/*
 * The CertID of the first certificate of leaf_pem: base64url(the authority key identifier's
 * keyIdentifier) "." base64url(the serialNumber INTEGER's DER contents, its leading zero octet
 * kept). Writes it NUL-terminated to out (CERTID_MAX octets); 0, or -1 with err naming what is
 * missing (no PEM certificate, no authority key identifier, no keyIdentifier in it).
 */
int certid_from_pem(const char *leaf_pem, char out[CERTID_MAX], cf_err *err) CF_MUST;

/* The same through OpenSSL's certificate parser alone (certid_from_pem takes it for the forms its
 * own walk does not: tests compare the two). */
int certid_from_pem_ossl(const char *leaf_pem, char out[CERTID_MAX], cf_err *err) CF_MUST;

/* How many calls of certid_from_pem took each way, in this process. */
struct certid_stats {
	unsigned long fast; /* der.c's walk */
	unsigned long ossl; /* OpenSSL's parser */
};
void certid_stats_get(struct certid_stats *out);

#endif
