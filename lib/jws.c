/* jws.c - canonical JWKs, RFC 7638 thumbprints, ES256/ES384/RS256 JWS signing for ACME, HS256 for EAB. */
#include "jws.h"

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "der.h"
#include "keys.h"
#include "osslerr.h"

#define P256_COORD_LEN 32 /* octets of a P-256 coordinate, and of r and of s in ES256 */
#define P384_COORD_LEN 48 /* the same for P-384 and ES384 */

/* base64url of a BIGNUM as padlen octets (0: minimal, at least one), or NULL with err set. */
static char *
bn_b64url(const BIGNUM *bn, int padlen, const char *what, cf_err *err)
{
	unsigned char *bin = NULL;
	char *res = NULL;
	int n;

	n = padlen > 0 ? padlen : BN_num_bytes(bn);
	if (n <= 0 || BN_is_negative(bn)) {
		cf_errf(err, "jwk: %s is zero or negative", what);
		goto out;
	}
	if ((bin = malloc((size_t)n)) == NULL) {
		cf_errf(err, "jwk: malloc failed for %s", what);
		goto out;
	}
	if (BN_bn2binpad(bn, bin, n) != n) {
		ossl_errf(err, "jwk: BN_bn2binpad(%s, %d octets)", what, n);
		goto out;
	}
	if ((res = b64url_encode(bin, (size_t)n)) == NULL)
		cf_errf(err, "jwk: b64url_encode failed for %s", what);
out:
	free(bin);
	return res;
}

/* Sets obj[name] to the base64url of bn; 0 or -1 with err set. */
static int
jwk_set_bn(json_t *obj, const char *name, const BIGNUM *bn, int padlen, cf_err *err)
{
	char *s;
	int rc = -1;

	if ((s = bn_b64url(bn, padlen, name, err)) == NULL)
		goto out;
	if (json_object_set_new(obj, name, json_string(s)) != 0) {
		cf_errf(err, "jwk: json_object_set_new(\"%s\") failed", name);
		goto out;
	}
	rc = 0;
out:
	free(s);
	return rc;
}

/* Adds the members of an EC P-256 or P-384 JWK to obj; 0 or -1 with err set. */
static int
jwk_ec(EVP_PKEY *key, json_t *obj, cf_err *err)
{
	BIGNUM *x = NULL, *y = NULL;
	char group[80];
	size_t glen = 0;
	int nid, coord, rc = -1;

	if (!EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
	    &glen)) {
		ossl_errf(err, "jwk: EVP_PKEY_get_utf8_string_param(group) of EC key");
		goto out;
	}
	if ((nid = OBJ_txt2nid(group)) == NID_undef)
		nid = EC_curve_nist2nid(group);
	if (nid != NID_X9_62_prime256v1 && nid != NID_secp384r1) {
		cf_errf(err, "jwk: EC curve %s is not supported (only P-256 and P-384)", group);
		goto out;
	}
	coord = nid == NID_secp384r1 ? P384_COORD_LEN : P256_COORD_LEN;
	if (!EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &x) ||
	    !EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &y)) {
		ossl_errf(err, "jwk: EVP_PKEY_get_bn_param(x, y) of EC key");
		goto out;
	}
	if (json_object_set_new(obj, "crv", json_string(coord == P384_COORD_LEN ? "P-384" : "P-256")) != 0 ||
	    json_object_set_new(obj, "kty", json_string("EC")) != 0) {
		cf_errf(err, "jwk: json_object_set_new failed");
		goto out;
	}
	if (jwk_set_bn(obj, "x", x, coord, err) != 0 || jwk_set_bn(obj, "y", y, coord, err) != 0)
		goto out;
	rc = 0;
out:
	BN_free(x);
	BN_free(y);
	return rc;
}

/* Adds the members of an RSA JWK to obj; 0 or -1 with err set. */
static int
jwk_rsa(EVP_PKEY *key, json_t *obj, cf_err *err)
{
	BIGNUM *n = NULL, *e = NULL;
	int rc = -1;

	if (!EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n) ||
	    !EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e)) {
		ossl_errf(err, "jwk: EVP_PKEY_get_bn_param(n, e) of RSA key");
		goto out;
	}
	if (jwk_set_bn(obj, "e", e, 0, err) != 0)
		goto out;
	if (json_object_set_new(obj, "kty", json_string("RSA")) != 0) {
		cf_errf(err, "jwk: json_object_set_new failed");
		goto out;
	}
	if (jwk_set_bn(obj, "n", n, 0, err) != 0)
		goto out;
	rc = 0;
out:
	BN_free(n);
	BN_free(e);
	return rc;
}

/*
 * The required public members of key's JWK as a JSON object, or NULL with err set. *alg (if
 * alg != NULL) gets the JWS algorithm that key signs with.
 */
static json_t *
jwk_object(EVP_PKEY *key, const char **alg, cf_err *err)
{
	json_t *obj = NULL, *res = NULL;
	const char *a;

	if (key == NULL) {
		cf_errf(err, "jwk: no key");
		goto out;
	}
	if ((obj = json_object()) == NULL) {
		cf_errf(err, "jwk: json_object failed");
		goto out;
	}
	if (EVP_PKEY_is_a(key, "EC")) {
		if (jwk_ec(key, obj, err) != 0)
			goto out;
		a = "ES256";
	} else if (EVP_PKEY_is_a(key, "RSA")) {
		if (jwk_rsa(key, obj, err) != 0)
			goto out;
		a = "RS256";
	} else {
		const char *t = EVP_PKEY_get0_type_name(key);

		cf_errf(err, "jwk: key type %s is not supported (only EC P-256 and RSA)",
		    t ? t : "(unknown)");
		goto out;
	}
	if (alg != NULL)
		*alg = a;
	res = obj;
	obj = NULL;
out:
	json_decref(obj);
	return res;
}

char *
jwk_json(EVP_PKEY *key, cf_err *err)
{
	json_t *obj;
	char *res = NULL;

	if ((obj = jwk_object(key, NULL, err)) == NULL)
		goto out;
	/*
	 * RFC 7638 3.3: members sorted by their UTF-16 code units, here all ASCII, so the bytewise
	 * order of JSON_SORT_KEYS; JSON_COMPACT leaves no white space. The values are base64url and
	 * fixed ASCII names, which JSON never escapes.
	 */
	if ((res = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
		cf_errf(err, "jwk: json_dumps failed");
out:
	json_decref(obj);
	return res;
}

int
jwk_thumbprint(EVP_PKEY *key, char out[44], cf_err *err)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char *json = NULL, *b64 = NULL;
	int rc = -1;

	if (out == NULL) {
		cf_errf(err, "jwk_thumbprint: no output buffer");
		goto out;
	}
	out[0] = '\0';
	if ((json = jwk_json(key, err)) == NULL)
		goto out;
	if (!EVP_Digest(json, strlen(json), md, &mdlen, EVP_sha256(), NULL) || mdlen != 32) {
		ossl_errf(err, "jwk_thumbprint: EVP_Digest(SHA-256)");
		goto out;
	}
	if ((b64 = b64url_encode(md, mdlen)) == NULL || strlen(b64) != 43) {
		cf_errf(err, "jwk_thumbprint: b64url_encode failed");
		goto out;
	}
	memcpy(out, b64, 44);
	rc = 0;
out:
	free(json);
	free(b64);
	return rc;
}

/* "ES256" for an EC P-256 key, "ES384" for P-384, "RS256" for an RSA key, else NULL with err set. */
static const char *
jws_alg(EVP_PKEY *key, cf_err *err)
{
	char group[32];

	if (EVP_PKEY_is_a(key, "EC")) {
		if (!EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group,
		    sizeof(group), NULL)) {
			ossl_errf(err, "jwk: EVP_PKEY_get_utf8_string_param(group) of EC key");
			return NULL;
		}
		if (strcmp(group, "secp384r1") == 0)
			return "ES384";
		if (strcmp(group, "prime256v1") != 0) {
			cf_errf(err, "jwk: EC curve %s is not supported (only P-256 and P-384)", group);
			return NULL;
		}
		return "ES256";
	}
	if (EVP_PKEY_is_a(key, "RSA"))
		return "RS256";
	cf_errf(err, "jwk: key type %s is not supported (only EC P-256 and RSA)",
	    EVP_PKEY_get0_type_name(key) ? EVP_PKEY_get0_type_name(key) : "(unknown)");
	return NULL;
}

/*
 * Converts a DER ECDSA-Sig-Value { r INTEGER, s INTEGER } to the r||s of ES256 (coord 32) or
 * ES384 (coord 48): each positive and at most coord octets after its sign octet. 0 or -1.
 */
static int
ecdsa_der_to_raw(const unsigned char *der, size_t derlen, unsigned char *raw, size_t coord)
{
	struct der_span in = { der, derlen }, seq, v;
	int i;

	if (der_expect(&in, DER_SEQUENCE, &seq, NULL) != 0 || in.len != 0)
		return -1;
	for (i = 0; i < 2; i++) {
		if (der_expect(&seq, DER_INTEGER, &v, NULL) != 0 || der_int_ok(v) != 0 ||
		    (v.p[0] & 0x80) != 0)
			return -1;
		if (v.p[0] == 0 && v.len > 1) {
			v.p++;
			v.len--;
		}
		if (v.len > coord)
			return -1;
		memset(raw + i * coord, 0, coord - v.len);
		memcpy(raw + i * coord + coord - v.len, v.p, v.len);
	}
	return seq.len == 0 ? 0 : -1;
}

struct jws_signer {
	EVP_PKEY *key;          /* a reference to the caller's key */
	const char *alg;        /* "ES256", "ES384" or "RS256" */
	char *jwk;              /* canonical JWK, made for the first header that carries it */
	size_t jwklen;
	EVP_MD *digest;         /* SHA-256 (SHA-384 for ES384), fetched once */
	EVP_MD_CTX *md;         /* hashes each signing input */
	EVP_PKEY_CTX *pkey;     /* EVP_PKEY_sign_init'ed once, SHA-256 as the signature digest */
	unsigned char *sig;     /* sigmax octets: a DER ECDSA signature or an RSA one */
	size_t sigmax;
	cf_buf hdr;             /* the protected header's JSON, reused */
	char *input;            /* the signing input, protected '.' payload, reused */
	size_t inputcap;
};

void
jws_signer_free(struct jws_signer *s)
{
	if (s == NULL)
		return;
	EVP_PKEY_CTX_free(s->pkey);
	EVP_MD_CTX_free(s->md);
	EVP_MD_free(s->digest);
	EVP_PKEY_free(s->key);
	free(s->jwk);
	free(s->sig);
	free(s->input);
	cf_buf_free(&s->hdr);
	free(s);
}

struct jws_signer *
jws_signer_new(EVP_PKEY *key, cf_err *err)
{
	struct jws_signer *s;
	int size;

	if (key == NULL) {
		cf_errf(err, "jws_signer_new: no key");
		return NULL;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		cf_errf(err, "jws_signer_new: out of memory");
		return NULL;
	}
	if ((s->alg = jws_alg(key, err)) == NULL)
		goto fail;
	if (!EVP_PKEY_up_ref(key)) {
		ossl_errf(err, "jws_signer_new: EVP_PKEY_up_ref");
		goto fail;
	}
	s->key = key;
	if ((size = EVP_PKEY_get_size(key)) <= 0) {
		ossl_errf(err, "jws_signer_new: EVP_PKEY_get_size(%s)", s->alg);
		goto fail;
	}
	s->sigmax = (size_t)size;
	if ((s->sig = malloc(s->sigmax)) == NULL) {
		cf_errf(err, "jws_signer_new: out of memory");
		goto fail;
	}
	if ((s->digest = EVP_MD_fetch(NULL, strcmp(s->alg, "ES384") == 0 ? "SHA2-384" : "SHA2-256", NULL)) == NULL ||
	    (s->md = EVP_MD_CTX_new()) == NULL) {
		ossl_errf(err, "jws_signer_new: EVP_MD_fetch(SHA-2) for %s", s->alg);
		goto fail;
	}
	/* RS256 is RSASSA-PKCS1-v1_5 (RFC 7518 3.3): the padding is set, not left to a default */
	if ((s->pkey = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL)) == NULL ||
	    EVP_PKEY_sign_init(s->pkey) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(s->pkey, s->digest) != 1 ||
	    (strcmp(s->alg, "RS256") == 0 &&
	    EVP_PKEY_CTX_set_rsa_padding(s->pkey, RSA_PKCS1_PADDING) != 1)) {
		ossl_errf(err, "jws_signer_new: EVP_PKEY_sign_init(%s)", s->alg);
		goto fail;
	}
	return s;
fail:
	jws_signer_free(s);
	return NULL;
}

/*
 * 1, 2, 3 or 4: the length of the UTF-8 sequence at p (n octets left) when it is well-formed as
 * jansson checks it (no overlong forms, surrogates, or code points above U+10FFFF); 0 when not.
 */
static size_t
utf8_seq(const unsigned char *p, size_t n)
{
	unsigned c = p[0];
	uint32_t v;
	size_t k, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		k = 2, v = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		k = 3, v = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		k = 4, v = c & 0x07;
	else
		return 0;
	if (n < k)
		return 0;
	for (i = 1; i < k; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		v = v << 6 | (p[i] & 0x3f);
	}
	if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff) || (k == 3 && v < 0x800) ||
	    (k == 4 && v < 0x10000))
		return 0;
	return k;
}

/*
 * Appends s as a JSON string, quoted and escaped exactly as jansson's json_dumps writes it (the
 * old header code): '"' '\\' and the short escapes, other control characters as \u00XX, '/'
 * and non-ASCII as they are. 0, or -1 when s is not UTF-8 (json_string refuses it too) or memory
 * runs out.
 */
static int
json_put_str(cf_buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s, *run;
	size_t n = strlen(s), k;
	char esc[8];

	if (cf_buf_append(b, "\"", 1) != 0)
		return -1;
	while (n > 0) {
		for (run = p; n > 0 && *p >= 0x20 && *p != '"' && *p != '\\' && *p < 0x80; p++, n--)
			;
		for (; n > 0 && *p >= 0x80; p += k, n -= k) {
			if ((k = utf8_seq(p, n)) == 0)
				return -1;
		}
		if (p > run && cf_buf_append(b, run, (size_t)(p - run)) != 0)
			return -1;
		if (n == 0 || (*p >= 0x20 && *p != '"' && *p != '\\'))
			continue;
		switch (*p) {
		case '"': memcpy(esc, "\\\"", 3); break;
		case '\\': memcpy(esc, "\\\\", 3); break;
		case '\b': memcpy(esc, "\\b", 3); break;
		case '\f': memcpy(esc, "\\f", 3); break;
		case '\n': memcpy(esc, "\\n", 3); break;
		case '\r': memcpy(esc, "\\r", 3); break;
		case '\t': memcpy(esc, "\\t", 3); break;
		default: snprintf(esc, sizeof(esc), "\\u%04X", (unsigned)*p); break;
		}
		if (cf_buf_append(b, esc, strlen(esc)) != 0)
			return -1;
		p++;
		n--;
	}
	return cf_buf_append(b, "\"", 1);
}

/* The argument checks of jws_sign and jws_signer_sign; 0 or -1 with err set. */
static int
jws_args_check(const char *kid, const char *nonce, const char *url, cf_err *err)
{
	if (url == NULL || *url == '\0') {
		cf_errf(err, "jws_sign: no url");
		return -1;
	}
	if (nonce == NULL || *nonce == '\0') {
		cf_errf(err, "jws_sign %s: no nonce", url);
		return -1;
	}
	if (kid != NULL && *kid == '\0') {
		cf_errf(err, "jws_sign %s: empty kid", url);
		return -1;
	}
	return 0;
}

/*
 * The protected header {"alg":...,"kid":... or "jwk":{...},"nonce":...,"url":...} in s->hdr, the
 * members in the order (and the octets) the jansson-built header had; without "nonce" when nonce
 * is NULL (the inner JWS of a key change). 0 or -1 with err set.
 */
static int
jws_header(struct jws_signer *s, const char *kid, const char *nonce, const char *url, cf_err *err)
{
	cf_buf *h = &s->hdr;

	if (kid == NULL && s->jwk == NULL) {
		if ((s->jwk = jwk_json(s->key, err)) == NULL)
			return -1;
		s->jwklen = strlen(s->jwk);
	}
	cf_buf_reset(h);
	if (cf_buf_append(h, "{\"alg\":\"", 8) != 0 || cf_buf_append(h, s->alg, 5) != 0 ||
	    (kid != NULL ? cf_buf_append(h, "\",\"kid\":", 8) != 0 || json_put_str(h, kid) != 0 :
	    cf_buf_append(h, "\",\"jwk\":", 8) != 0 || cf_buf_append(h, s->jwk, s->jwklen) != 0) ||
	    (nonce != NULL && (cf_buf_append(h, ",\"nonce\":", 9) != 0 || json_put_str(h, nonce) != 0)) ||
	    cf_buf_append(h, ",\"url\":", 7) != 0 || json_put_str(h, url) != 0 ||
	    cf_buf_append(h, "}", 1) != 0) {
		cf_errf(err, "jws_sign %s: building the protected header failed (invalid UTF-8?)",
		    url);
		return -1;
	}
	return 0;
}

/* jws_signer_sign once the arguments are checked; nonce NULL leaves "nonce" out of the header. */
static char *
signer_sign(struct jws_signer *s, const char *kid, const char *nonce, const char *url,
    const char *payload, cf_err *err);

char *
jws_signer_sign(struct jws_signer *s, const char *kid, const char *nonce, const char *url,
    const char *payload, cf_err *err)
{
	if (jws_args_check(kid, nonce, url, err) != 0)
		return NULL;
	return signer_sign(s, kid, nonce, url, payload, err);
}

static char *
signer_sign(struct jws_signer *s, const char *kid, const char *nonce, const char *url,
    const char *payload, cf_err *err)
{
	static const char m_prot[] = "{\"protected\":\"", m_pay[] = "\",\"payload\":\"",
	    m_sig[] = "\",\"signature\":\"", m_end[] = "\"}";
	unsigned char md[EVP_MAX_MD_SIZE], raw[2 * P384_COORD_LEN];
	const unsigned char *sig;
	size_t paylen, protlen, paylen64, inlen, siglen, siglen64, total;
	unsigned int mdlen = 0;
	char *res, *p;

	if (s == NULL) {
		cf_errf(err, "jws_sign %s: no signer", url);
		return NULL;
	}
	if (jws_header(s, kid, nonce, url, err) != 0)
		return NULL;
	if (payload == NULL)
		payload = ""; /* POST-as-GET */
	paylen = strlen(payload);

	/* RFC 7515 5.1: the signing input, ASCII(BASE64URL(header) || '.' || BASE64URL(payload)) */
	protlen = b64url_len(s->hdr.len);
	paylen64 = b64url_len(paylen);
	if (paylen > SIZE_MAX / 2 - s->hdr.len) {
		cf_errf(err, "jws_sign %s: payload too large", url);
		return NULL;
	}
	inlen = protlen + 1 + paylen64;
	if (inlen > s->inputcap) {
		free(s->input);
		s->inputcap = 0;
		if ((s->input = malloc(inlen)) == NULL) {
			cf_errf(err, "jws_sign %s: out of memory for the signing input", url);
			return NULL;
		}
		s->inputcap = inlen;
	}
	b64url_put(s->input, (const unsigned char *)s->hdr.data, s->hdr.len);
	s->input[protlen] = '.';
	b64url_put(s->input + protlen + 1, (const unsigned char *)payload, paylen);

	siglen = s->sigmax;
	if (EVP_DigestInit_ex2(s->md, s->digest, NULL) != 1 ||
	    EVP_DigestUpdate(s->md, s->input, inlen) != 1 ||
	    EVP_DigestFinal_ex(s->md, md, &mdlen) != 1 || (int)mdlen != EVP_MD_get_size(s->digest)) {
		ossl_errf(err, "jws_sign %s: SHA-2 of the signing input", url);
		return NULL;
	}
	if (EVP_PKEY_sign(s->pkey, s->sig, &siglen, md, mdlen) != 1) {
		ossl_errf(err, "jws_sign %s: EVP_PKEY_sign(%s)", url, s->alg);
		return NULL;
	}
	sig = s->sig;
	if (s->alg[0] == 'E') { /* ES256 and ES384: r||s, not DER (RFC 7518 3.4) */
		size_t coord = strcmp(s->alg, "ES384") == 0 ? P384_COORD_LEN : P256_COORD_LEN;

		if (ecdsa_der_to_raw(s->sig, siglen, raw, coord) != 0) {
			cf_errf(err, "jws_sign %s: malformed ECDSA signature from EVP_PKEY_sign",
			    url);
			return NULL;
		}
		sig = raw;
		siglen = 2 * coord;
	}
	siglen64 = b64url_len(siglen);

	/* {"protected":"...","payload":"...","signature":"..."}, base64url needing no escapes */
	total = sizeof(m_prot) - 1 + inlen - 1 + sizeof(m_pay) - 1 + sizeof(m_sig) - 1 + siglen64 +
	    sizeof(m_end);
	if ((res = malloc(total)) == NULL) {
		cf_errf(err, "jws_sign %s: out of memory for the JWS", url);
		return NULL;
	}
	p = res;
	memcpy(p, m_prot, sizeof(m_prot) - 1);
	p += sizeof(m_prot) - 1;
	memcpy(p, s->input, protlen);
	p += protlen;
	memcpy(p, m_pay, sizeof(m_pay) - 1);
	p += sizeof(m_pay) - 1;
	memcpy(p, s->input + protlen + 1, paylen64);
	p += paylen64;
	memcpy(p, m_sig, sizeof(m_sig) - 1);
	p += sizeof(m_sig) - 1;
	p += b64url_put(p, sig, siglen);
	memcpy(p, m_end, sizeof(m_end));
	return res;
}

char *
jws_sign(EVP_PKEY *key, const char *kid, const char *nonce, const char *url,
    const char *payload, cf_err *err)
{
	struct jws_signer *s;
	char *res;

	if (jws_args_check(kid, nonce, url, err) != 0)
		return NULL;
	if (key == NULL) {
		cf_errf(err, "jws_sign %s: no key", url);
		return NULL;
	}
	if ((s = jws_signer_new(key, err)) == NULL) {
		if (err != NULL) {
			char why[sizeof(err->msg)];

			memcpy(why, err->msg, sizeof(why));
			cf_errf(err, "jws_sign %s: %s", url, why);
		}
		return NULL;
	}
	res = jws_signer_sign(s, kid, nonce, url, payload, err);
	jws_signer_free(s);
	return res;
}

char *
jws_sign_nonceless(EVP_PKEY *key, const char *url, const char *payload, cf_err *err)
{
	struct jws_signer *s;
	char *res;

	if (url == NULL || *url == '\0') {
		cf_errf(err, "jws_sign: no url");
		return NULL;
	}
	if (key == NULL || payload == NULL) {
		cf_errf(err, "jws_sign %s: no %s", url, key == NULL ? "key" : "payload");
		return NULL;
	}
	if ((s = jws_signer_new(key, err)) == NULL)
		return NULL;
	res = signer_sign(s, NULL, NULL, url, payload, err);
	jws_signer_free(s);
	return res;
}

char *
jws_sign_hs256(const unsigned char *mac_key, size_t mac_len, const char *kid, const char *url,
    const char *payload, cf_err *err)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	cf_buf hdr = { 0 }, in = { 0 }, out = { 0 };
	char *h64 = NULL, *p64 = NULL, *s64 = NULL, *res = NULL;

	if (url == NULL || *url == '\0' || kid == NULL || *kid == '\0' || payload == NULL) {
		cf_errf(err, "jws_sign_hs256: no %s", url == NULL || *url == '\0' ? "url" :
		    payload == NULL ? "payload" : "kid");
		goto out;
	}
	if (mac_key == NULL || mac_len == 0 || mac_len > INT_MAX) {
		cf_errf(err, "jws_sign_hs256 %s: no MAC key", url);
		goto out;
	}
	if (cf_buf_append(&hdr, "{\"alg\":\"HS256\",\"kid\":", 21) != 0 || json_put_str(&hdr, kid) != 0 ||
	    cf_buf_append(&hdr, ",\"url\":", 7) != 0 || json_put_str(&hdr, url) != 0 ||
	    cf_buf_append(&hdr, "}", 1) != 0) {
		cf_errf(err, "jws_sign_hs256 %s: building the protected header failed (invalid UTF-8?)", url);
		goto out;
	}
	if ((h64 = b64url_encode((const unsigned char *)hdr.data, hdr.len)) == NULL ||
	    (p64 = b64url_encode((const unsigned char *)payload, strlen(payload))) == NULL ||
	    cf_buf_printf(&in, "%s.%s", h64, p64) != 0) {
		cf_errf(err, "jws_sign_hs256 %s: out of memory", url);
		goto out;
	}
	/* RFC 7518 3.2: HMAC SHA-256 over the signing input, the MAC itself the signature */
	if (HMAC(EVP_sha256(), mac_key, (int)mac_len, (const unsigned char *)in.data, in.len, md,
	    &mdlen) == NULL || mdlen != 32) {
		ossl_errf(err, "jws_sign_hs256 %s: HMAC(SHA-256)", url);
		goto out;
	}
	if ((s64 = b64url_encode(md, mdlen)) == NULL ||
	    cf_buf_printf(&out, "{\"protected\":\"%s\",\"payload\":\"%s\",\"signature\":\"%s\"}", h64, p64,
	    s64) != 0) {
		cf_errf(err, "jws_sign_hs256 %s: out of memory", url);
		goto out;
	}
	res = out.data;
	out.data = NULL;
out:
	OPENSSL_cleanse(md, sizeof(md));
	cf_buf_free(&hdr);
	cf_buf_free(&in);
	cf_buf_free(&out);
	free(h64);
	free(p64);
	free(s64);
	return res;
}
