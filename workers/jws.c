/* jws.c - base64url, canonical JWKs, RFC 7638 thumbprints and ES256/RS256 JWS signing for ACME. */
#include "jws.h"

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"

#define P256_COORD_LEN 32 /* octets of a P-256 coordinate, and of r and of s in ES256 */

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *
b64url_encode(const unsigned char *in, size_t len)
{
	char *out, *p;
	uint32_t v;
	size_t i;

	if (in == NULL && len > 0)
		return NULL;
	if (len / 3 >= SIZE_MAX / 4 - 1)
		return NULL;
	if ((out = malloc((len + 2) / 3 * 4 + 1)) == NULL)
		return NULL;
	p = out;
	for (i = 0; i + 3 <= len; i += 3) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		*p++ = b64url_alphabet[(v >> 18) & 0x3f];
		*p++ = b64url_alphabet[(v >> 12) & 0x3f];
		*p++ = b64url_alphabet[(v >> 6) & 0x3f];
		*p++ = b64url_alphabet[v & 0x3f];
	}
	if (len - i == 1) {
		v = (uint32_t)in[i] << 16;
		*p++ = b64url_alphabet[(v >> 18) & 0x3f];
		*p++ = b64url_alphabet[(v >> 12) & 0x3f];
	} else if (len - i == 2) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		*p++ = b64url_alphabet[(v >> 18) & 0x3f];
		*p++ = b64url_alphabet[(v >> 12) & 0x3f];
		*p++ = b64url_alphabet[(v >> 6) & 0x3f];
	}
	*p = '\0';
	return out;
}

/* The 6-bit value of a base64url character, or -1. */
static int
b64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

int
b64url_decode(const char *in, unsigned char **out, size_t *outlen)
{
	unsigned char *buf = NULL;
	size_t len, n, i, o = 0;
	uint32_t acc = 0;
	int bits = 0, v, rc = -1;

	if (out != NULL)
		*out = NULL;
	if (outlen != NULL)
		*outlen = 0;
	if (in == NULL || out == NULL || outlen == NULL)
		return -1;

	len = n = strlen(in);
	while (n > 0 && in[n - 1] == '=')
		n--;
	/*
	 * Padding, when present, completes the last quantum: at most two '=' and a multiple of four
	 * characters overall. One character left over can never be base64.
	 */
	if (n != len && (len - n > 2 || len % 4 != 0))
		goto out;
	if (n % 4 == 1)
		goto out;

	/* n / 4 * 3 for the full quanta, at most 2 more, 1 so that malloc(0) never happens. */
	if ((buf = malloc(n / 4 * 3 + 3)) == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		if ((v = b64url_value((unsigned char)in[i])) < 0)
			goto out;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[o++] = (unsigned char)(acc >> bits);
		}
	}
	/* The 2 or 4 bits left over must be zero: only the canonical encoding is accepted. */
	if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
		goto out;

	*out = buf;
	*outlen = o;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	return rc;
}

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

/* Adds the members of an EC P-256 JWK to obj; 0 or -1 with err set. */
static int
jwk_ec(EVP_PKEY *key, json_t *obj, cf_err *err)
{
	BIGNUM *x = NULL, *y = NULL;
	char group[80];
	size_t glen = 0;
	int nid, rc = -1;

	if (!EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
	    &glen)) {
		ossl_errf(err, "jwk: EVP_PKEY_get_utf8_string_param(group) of EC key");
		goto out;
	}
	if ((nid = OBJ_txt2nid(group)) == NID_undef)
		nid = EC_curve_nist2nid(group);
	if (nid != NID_X9_62_prime256v1) {
		cf_errf(err, "jwk: EC curve %s is not supported (only P-256)", group);
		goto out;
	}
	if (!EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &x) ||
	    !EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &y)) {
		ossl_errf(err, "jwk: EVP_PKEY_get_bn_param(x, y) of EC key");
		goto out;
	}
	if (json_object_set_new(obj, "crv", json_string("P-256")) != 0 ||
	    json_object_set_new(obj, "kty", json_string("EC")) != 0) {
		cf_errf(err, "jwk: json_object_set_new failed");
		goto out;
	}
	if (jwk_set_bn(obj, "x", x, P256_COORD_LEN, err) != 0 ||
	    jwk_set_bn(obj, "y", y, P256_COORD_LEN, err) != 0)
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

/* Converts a DER ECDSA-Sig-Value to the 64-octet r||s of ES256; 0 or -1 with err set. */
static int
ecdsa_der_to_raw(const unsigned char *der, size_t derlen, unsigned char raw[2 * P256_COORD_LEN],
    const char *url, cf_err *err)
{
	const unsigned char *p = der;
	const BIGNUM *r, *s;
	ECDSA_SIG *sig = NULL;
	int rc = -1;

	if ((sig = d2i_ECDSA_SIG(NULL, &p, (long)derlen)) == NULL || p != der + derlen) {
		ossl_errf(err, "jws_sign %s: d2i_ECDSA_SIG", url);
		goto out;
	}
	ECDSA_SIG_get0(sig, &r, &s);
	if (BN_bn2binpad(r, raw, P256_COORD_LEN) != P256_COORD_LEN ||
	    BN_bn2binpad(s, raw + P256_COORD_LEN, P256_COORD_LEN) != P256_COORD_LEN) {
		ossl_errf(err, "jws_sign %s: BN_bn2binpad(r, s)", url);
		goto out;
	}
	rc = 0;
out:
	ECDSA_SIG_free(sig);
	return rc;
}

/*
 * Signs input with key and SHA-256, and returns the base64url of the JWS signature (r||s for
 * ES256, the PKCS #1 v1.5 signature for RS256), or NULL with err set.
 */
static char *
jws_signature(EVP_PKEY *key, const char *alg, const char *input, size_t inputlen,
    const char *url, cf_err *err)
{
	unsigned char raw[2 * P256_COORD_LEN];
	unsigned char *sig = NULL;
	EVP_MD_CTX *ctx = NULL;
	size_t siglen = 0;
	char *res = NULL;

	if ((ctx = EVP_MD_CTX_new()) == NULL) {
		ossl_errf(err, "jws_sign %s: EVP_MD_CTX_new", url);
		goto out;
	}
	if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) != 1) {
		ossl_errf(err, "jws_sign %s: EVP_DigestSignInit(%s)", url, alg);
		goto out;
	}
	if (EVP_DigestSign(ctx, NULL, &siglen, (const unsigned char *)input, inputlen) != 1) {
		ossl_errf(err, "jws_sign %s: EVP_DigestSign(%s) size", url, alg);
		goto out;
	}
	if ((sig = malloc(siglen)) == NULL) {
		cf_errf(err, "jws_sign %s: malloc(%zu) failed", url, siglen);
		goto out;
	}
	if (EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)input, inputlen) != 1) {
		ossl_errf(err, "jws_sign %s: EVP_DigestSign(%s)", url, alg);
		goto out;
	}
	if (strcmp(alg, "ES256") == 0) {
		if (ecdsa_der_to_raw(sig, siglen, raw, url, err) != 0)
			goto out;
		res = b64url_encode(raw, sizeof(raw));
	} else {
		res = b64url_encode(sig, siglen);
	}
	if (res == NULL)
		cf_errf(err, "jws_sign %s: b64url_encode of the signature failed", url);
out:
	EVP_MD_CTX_free(ctx);
	free(sig);
	return res;
}

/* "ES256" for an EC P-256 key, "RS256" for an RSA key, else NULL with err set. */
static const char *
jws_alg(EVP_PKEY *key, cf_err *err)
{
	char group[32];

	if (EVP_PKEY_is_a(key, "EC")) {
		if (!EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL) ||
		    (strcmp(group, "prime256v1") != 0 && strcmp(group, "P-256") != 0)) {
			cf_errf(err, "jwk: EC key is not on P-256");
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

/* base64url of a NUL-terminated string, or NULL with err set. */
static char *
str_b64url(const char *s, const char *what, const char *url, cf_err *err)
{
	char *res;

	if ((res = b64url_encode((const unsigned char *)s, strlen(s))) == NULL)
		cf_errf(err, "jws_sign %s: b64url_encode of the %s failed", url, what);
	return res;
}

char *
jws_sign(EVP_PKEY *key, const char *kid, const char *nonce, const char *url,
    const char *payload, cf_err *err)
{
	json_t *jwk = NULL, *hdr = NULL, *jws = NULL;
	char *hdr_json = NULL, *prot = NULL, *pay = NULL, *sig = NULL, *res = NULL;
	cf_buf input = { 0 };
	const char *alg = NULL;

	if (url == NULL || *url == '\0') {
		cf_errf(err, "jws_sign: no url");
		goto out;
	}
	if (nonce == NULL || *nonce == '\0') {
		cf_errf(err, "jws_sign %s: no nonce", url);
		goto out;
	}
	if (kid != NULL && *kid == '\0') {
		cf_errf(err, "jws_sign %s: empty kid", url);
		goto out;
	}
	if (key == NULL) {
		cf_errf(err, "jws_sign %s: no key", url);
		goto out;
	}
	/* with a kid the JWK is not sent: only the algorithm is needed, which is much cheaper */
	if (kid != NULL ? (alg = jws_alg(key, err)) == NULL : (jwk = jwk_object(key, &alg, err)) == NULL) {
		if (err != NULL) {
			char why[sizeof(err->msg)];

			memcpy(why, err->msg, sizeof(why));
			cf_errf(err, "jws_sign %s: %s", url, why);
		}
		goto out;
	}

	/* json_string refuses invalid UTF-8, so a bad nonce, url or kid fails here. */
	if ((hdr = json_object()) == NULL ||
	    json_object_set_new(hdr, "alg", json_string(alg)) != 0 ||
	    (kid != NULL ? json_object_set_new(hdr, "kid", json_string(kid)) :
	    json_object_set(hdr, "jwk", jwk)) != 0 ||
	    json_object_set_new(hdr, "nonce", json_string(nonce)) != 0 ||
	    json_object_set_new(hdr, "url", json_string(url)) != 0) {
		cf_errf(err, "jws_sign %s: building the protected header failed (invalid UTF-8?)",
		    url);
		goto out;
	}
	if ((hdr_json = json_dumps(hdr, JSON_COMPACT)) == NULL) {
		cf_errf(err, "jws_sign %s: json_dumps of the protected header failed", url);
		goto out;
	}
	if ((prot = str_b64url(hdr_json, "protected header", url, err)) == NULL ||
	    (pay = str_b64url(payload != NULL ? payload : "", "payload", url, err)) == NULL)
		goto out;

	/* RFC 7515 5.1: the signing input is ASCII(protected || '.' || payload). */
	if (cf_buf_printf(&input, "%s.%s", prot, pay) != 0) {
		cf_errf(err, "jws_sign %s: out of memory for the signing input", url);
		goto out;
	}
	if ((sig = jws_signature(key, alg, input.data, input.len, url, err)) == NULL)
		goto out;

	if ((jws = json_object()) == NULL ||
	    json_object_set_new(jws, "protected", json_string(prot)) != 0 ||
	    json_object_set_new(jws, "payload", json_string(pay)) != 0 ||
	    json_object_set_new(jws, "signature", json_string(sig)) != 0) {
		cf_errf(err, "jws_sign %s: building the JWS object failed", url);
		goto out;
	}
	if ((res = json_dumps(jws, JSON_COMPACT)) == NULL)
		cf_errf(err, "jws_sign %s: json_dumps of the JWS failed", url);
out:
	json_decref(jwk);
	json_decref(hdr);
	json_decref(jws);
	free(hdr_json);
	free(prot);
	free(pay);
	free(sig);
	cf_buf_free(&input);
	return res;
}
