/* der.h - a minimal DER writer and reader (X.690), PEM armor, and an X.509 certificate's fields. */
#ifndef CF_DER_H
#define CF_DER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cf.h"

/* The universal and context tags that keys.c writes and reads (low-tag-number form only). */
enum {
	DER_BOOLEAN = 0x01,
	DER_INTEGER = 0x02,
	DER_BIT_STRING = 0x03,
	DER_OCTET_STRING = 0x04,
	DER_NULL = 0x05,
	DER_OID = 0x06,
	DER_UTF8STRING = 0x0c,
	DER_PRINTABLESTRING = 0x13,
	DER_IA5STRING = 0x16,
	DER_UTCTIME = 0x17,
	DER_GENERALIZEDTIME = 0x18,
	DER_SEQUENCE = 0x30,
	DER_SET = 0x31,
	DER_CONTEXT = 0x80,     /* | n: [n] IMPLICIT, primitive */
	DER_CONSTRUCTED = 0x20, /* | DER_CONTEXT | n: [n], constructed */
};

/*
 * The writer builds an encoding back to front at the end of its buffer, so that every length is
 * known when its header goes in: write the last element first, and wrap what was written since a
 * mark in a tag and length. An allocation failure sets err, and every later call does nothing.
 * The buffer may hold secrets: it is wiped when it grows and when it is freed.
 *
 *	size_t m = w.len;
 *	der_put_tlv(&w, DER_INTEGER, "\x01", 1);   (the second element)
 *	der_put_tlv(&w, DER_INTEGER, "\x00", 1);   (the first)
 *	der_wrap(&w, DER_SEQUENCE, m);             (SEQUENCE { 0, 1 })
 */
struct der_w {
	unsigned char *buf;
	size_t cap;
	size_t len; /* the encoding is buf[cap - len .. cap) */
	int err;
};

void der_w_init(struct der_w *w, size_t hint);
void der_w_free(struct der_w *w);
static inline const unsigned char *
der_w_data(const struct der_w *w)
{
	return w->buf + w->cap - w->len;
}
/* Prepends n raw octets (an encoding made elsewhere, or contents). */
void der_put(struct der_w *w, const void *p, size_t n);
/* Prepends the tag and the length of the w->len - mark octets written since mark. */
void der_wrap(struct der_w *w, unsigned char tag, size_t mark);
/* Prepends tag, length and the n octets of p. */
void der_put_tlv(struct der_w *w, unsigned char tag, const void *p, size_t n);

/* A span of octets inside a buffer being read. */
struct der_span {
	const unsigned char *p;
	size_t len;
};

/*
 * Reads one element from the front of *in: tag (low-tag-number form) and a definite length in
 * its minimal encoding, which must fit in what is left. Sets *contents (may be NULL) and *tlv (the
 * whole element; may be NULL), advances *in past it, and returns its tag; -1 when there is no
 * well-formed element (then *in is unchanged).
 */
int der_next(struct der_span *in, struct der_span *contents, struct der_span *tlv);

/* Reads an element that must have tag want; 0, or -1 (nothing advanced). */
int der_expect(struct der_span *in, unsigned char want, struct der_span *contents,
    struct der_span *tlv);

/* 0 when an OBJECT IDENTIFIER's contents are well-formed (non-empty, minimal sub-identifiers). */
int der_oid_ok(struct der_span oid);

/* 0 when an INTEGER's contents are well-formed (non-empty and minimal). */
int der_int_ok(struct der_span in);

/*
 * An INTEGER's contents as BN_bn2hex writes its value, lowercased: whole octets without leading
 * zero octets ("0123" for 0x0123), "0" for zero, "-" and the magnitude for a negative value.
 * Returns 0, or -1 when out (outlen octets) is too small or the INTEGER is malformed.
 */
int der_int_hex(struct der_span in, char *out, size_t outlen);

/*
 * An RFC 5280 4.1.2.5 Time as unix seconds: UTCTime "YYMMDDHHMMSSZ" (YY >= 50 is 19YY) or
 * GeneralizedTime "YYYYMMDDHHMMSSZ", each field in range (day within its month). Any other form
 * (offsets, fractions, no seconds) returns -1.
 */
int der_time_unix(int tag, struct der_span in, int64_t *out);

/*
 * PEM of der (RFC 7468): "-----BEGIN label-----\n", base64 in lines of 64 characters,
 * "-----END label-----\n", as OpenSSL's PEM writer formats it. malloc'd, or NULL.
 */
char *pem_encode(const char *label, const unsigned char *der, size_t len) CF_MUST;

/*
 * The DER of the first PEM block of pem with label in its strict form: the BEGIN line, lines of
 * 1 to 64 base64 characters each ended by "\n" or "\r\n", padding only at the end, zero pad bits,
 * the END line and its line end. *der is malloc'd. Anything else returns -1: a caller that must accept the lax forms
 * OpenSSL reads goes to OpenSSL then.
 */
int pem_decode_strict(const char *pem, const char *label, unsigned char **der, size_t *len) CF_MUST;

/* What cert_issued_parse needs from a certificate, as spans of its DER. */
struct der_cert {
	struct der_span serial;     /* the serialNumber INTEGER's contents */
	struct der_span issuer;     /* the issuer Name, whole element */
	int not_before_tag;         /* DER_UTCTIME or DER_GENERALIZEDTIME */
	struct der_span not_before; /* contents */
	int not_after_tag;
	struct der_span not_after;
	struct der_span spki_alg;   /* subjectPublicKeyInfo's AlgorithmIdentifier, whole element */
	struct der_span spki_key;   /* subjectPublicKey BIT STRING contents, unused-bits octet first */
	struct der_span aki;        /* authorityKeyIdentifier's extnValue contents (p NULL: none) */
	int aki_count;              /* authorityKeyIdentifier extensions seen (RFC 5280: at most 1) */
};

/*
 * Walks a DER X.509 Certificate (RFC 5280 4.1) of exactly len octets, checking its structure down
 * to the elements a certificate parser decodes: the TBSCertificate's fields in order (optional
 * version, issuerUniqueID, subjectUniqueID and extensions), well-formed INTEGERs, OIDs, BIT
 * STRINGs and Names, each extension { OID, critical BOOLEAN?, OCTET STRING }. Contents are not
 * interpreted (no time, key or extension is decoded; the authorityKeyIdentifier's value is only
 * located). Returns 0 and fills *out, or -1.
 */
int der_cert_parse(const unsigned char *der, size_t len, struct der_cert *out) CF_MUST;


#endif
