/* dnsname.h - validation and normalization of DNS identifiers for certificates (IDNA via libidn2). */
#ifndef CF_DNSNAME_H
#define CF_DNSNAME_H

#include <stdbool.h>

#include "cf.h"

#define DNSNAME_MAX 254 /* 253 octets plus NUL */

/*
 * Normalizes a name as typed by an operator (ASCII or UTF-8, any case, optional trailing dot) to
 * the form certfleet stores and sends: lowercase A-labels, no trailing dot. A wildcard is allowed
 * only as the whole leftmost label ("*.example.com") and needs at least two labels after it.
 * Rejects: empty input, empty labels, labels over 63 octets, names over 253 octets, spaces,
 * control characters, characters outside letters/digits/hyphen, labels that begin or end with a
 * hyphen, an all-numeric top label (IP addresses are not DNS identifiers), invalid IDNs.
 * Returns 0, or -1 with err naming the input and the reason.
 */
int dnsname_normalize(const char *in, char out[DNSNAME_MAX], cf_err *err) CF_MUST;

bool dnsname_is_wildcard(const char *name);

/* The name without a leading "*." (a pointer into name). */
const char *dnsname_base(const char *name);

#endif
