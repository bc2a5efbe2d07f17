/* test_jws.c - unit tests of lib/jws.c: base64url, JWKs, RFC 7638 thumbprints, JWS signing, HS256. */
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "check.h"
#include "base64.h"
#include "jws.h"

/* RFC 7638 section 3.1: the RSA key of RFC 7517 appendix A.1, its canonical JWK and thumbprint. */
static const char rfc7638_n_hex[] =
    "d2fc7b6a0a1e6c67104aeb8f88b257669b4df679ddad099b5c4a6cd9a88015b5"
    "a133bf0b856c7871b6df000b554fceb3c2ed512bb68f145c6e8434752fab52a1"
    "cfc124408f79b58a4578c16428855789f7a249e384cb2d9fae2d67fd96fb926c"
    "198e077399fdc815c0af097dde5aadeff44de70e827f4878432439bfeeb96068"
    "d0474fc50d6d90bf3a98dfaf1040c89c02d692ab3b3c2896609d86fd73b774ce"
    "0740647ceeeaa310bd12f985a8eb9f59fdd426cea5b2120f4f2a34bcab764b7e"
    "6c54d6840238bcc40587a59e66ed1f33894577635c470af75cf92c20d1da43e1"
    "bfc419e222a6f0d0bb358c5e38f9cb050aeafe904814f1ac1aa49cca9ea0ca83";
static const char rfc7638_e_hex[] = "010001";
static const char rfc7638_json[] =
    "{\"e\":\"AQAB\",\"kty\":\"RSA\",\"n\":\"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4"
    "cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93"
    "lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91"
    "CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8a"
    "wapJzKnqDKgw\"}";
static const char rfc7638_thumbprint[] = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";

/* RFC 7515 appendix A.3: the ES256 example key (private d; x and y as the RFC prints them). */
static const char rfc7515_d_hex[] =
    "8e9b109e719098bf980487df1f5d77e9cb29606ebed2263b5f57c213df84f4b2";
static const char rfc7515_jwk[] =
    "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
    "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}";

/* d = 379 is the smallest P-256 private key whose public x begins with a zero octet. */
static const char d379_hex[] =
    "000000000000000000000000000000000000000000000000000000000000017b";
static const char d379_jwk[] =
    "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"AFVDiUrz0A7X10Cr29dclrBod7eH219w7qeLkKjXwAo\","
    "\"y\":\"u0yFo9jqKe-q-iRAaRLdhNWxTcMr9lbvbGvVil2UP5I\"}";

static const char test_url[] = "https://acme.example/acme/new-order";
static const char test_nonce[] = "oFvnlFP1wIhRlYS2jTaXbA";
static const char test_kid[] = "https://acme.example/acme/acct/evOfKhNU60wg";

/* An EC P-256 private key from its 32-octet scalar in hex; OpenSSL derives the public point. */
static EVP_PKEY *
ec_key_from_d(const char *d_hex)
{
	/* RFC 5915 ECPrivateKey { version 1, privateKey d, [0] prime256v1 }, no public key. */
	static const unsigned char head[] = { 0x30, 0x31, 0x02, 0x01, 0x01, 0x04, 0x20 };
	static const unsigned char tail[] = { 0xa0, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
		0x3d, 0x03, 0x01, 0x07 };
	unsigned char der[sizeof(head) + 32 + sizeof(tail)];
	const unsigned char *p = der;
	BIGNUM *d = NULL;

	if (!BN_hex2bn(&d, d_hex) || BN_bn2binpad(d, der + sizeof(head), 32) != 32) {
		BN_free(d);
		return NULL;
	}
	BN_free(d);
	memcpy(der, head, sizeof(head));
	memcpy(der + sizeof(head) + 32, tail, sizeof(tail));
	return d2i_PrivateKey(EVP_PKEY_EC, NULL, &p, (long)sizeof(der));
}

/* An RSA public key from n and e in hex, through OSSL_PARAM_BLD and EVP_PKEY_fromdata. */
static EVP_PKEY *
rsa_pub_from_hex(const char *n_hex, const char *e_hex)
{
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *key = NULL;
	BIGNUM *n = NULL, *e = NULL;

	if (!BN_hex2bn(&n, n_hex) || !BN_hex2bn(&e, e_hex))
		goto out;
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL)
		goto out;
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1)
		key = NULL;
out:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	return key;
}

/* An EC P-256 public key from the "x" and "y" of a JWK object (to verify against the header). */
static EVP_PKEY *
ec_pub_from_jwk(json_t *jwk)
{
	unsigned char pub[65], *x = NULL, *y = NULL;
	size_t xlen = 0, ylen = 0;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *key = NULL;

	if (b64url_decode(json_string_value(json_object_get(jwk, "x")), &x, &xlen) != 0 ||
	    b64url_decode(json_string_value(json_object_get(jwk, "y")), &y, &ylen) != 0 ||
	    xlen != 32 || ylen != 32)
		goto out;
	pub[0] = 0x04;
	memcpy(pub + 1, x, 32);
	memcpy(pub + 33, y, 32);
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub)) ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL)
		goto out;
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1)
		key = NULL;
out:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	free(x);
	free(y);
	return key;
}

/*
 * Verifies a JWS signature independently of jws.c's signing code: r||s is turned back into DER
 * for ES256 and ES384. Returns 1 valid, 0 invalid, -1 on a malformed signature.
 */
static int
verify_jws(EVP_PKEY *key, const char *alg, const char *prot, const char *pay, const char *sig_b64)
{
	unsigned char *sig = NULL, *der = NULL;
	const unsigned char *s_ptr;
	size_t siglen = 0, s_len, inlen;
	EVP_MD_CTX *ctx = NULL;
	ECDSA_SIG *es = NULL;
	BIGNUM *r = NULL, *s = NULL;
	char *input = NULL;
	int derlen, rc = -1;

	if (b64url_decode(sig_b64, &sig, &siglen) != 0)
		goto out;
	s_ptr = sig;
	s_len = siglen;
	if (alg[0] == 'E') {
		size_t coord = strcmp(alg, "ES384") == 0 ? 48 : 32;

		if (siglen != 2 * coord)
			goto out;
		if ((r = BN_bin2bn(sig, (int)coord, NULL)) == NULL ||
		    (s = BN_bin2bn(sig + coord, (int)coord, NULL)) == NULL || (es = ECDSA_SIG_new()) == NULL ||
		    !ECDSA_SIG_set0(es, r, s))
			goto out;
		r = s = NULL;
		if ((derlen = i2d_ECDSA_SIG(es, &der)) <= 0)
			goto out;
		s_ptr = der;
		s_len = (size_t)derlen;
	}
	inlen = strlen(prot) + 1 + strlen(pay);
	if ((input = malloc(inlen + 1)) == NULL)
		goto out;
	snprintf(input, inlen + 1, "%s.%s", prot, pay);
	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestVerifyInit(ctx, NULL, strcmp(alg, "ES384") == 0 ? EVP_sha384() : EVP_sha256(), NULL, key) != 1)
		goto out;
	rc = EVP_DigestVerify(ctx, s_ptr, s_len, (const unsigned char *)input, inlen) == 1;
	ERR_clear_error();
out:
	EVP_MD_CTX_free(ctx);
	ECDSA_SIG_free(es);
	BN_free(r);
	BN_free(s);
	OPENSSL_free(der);
	free(sig);
	free(input);
	return rc;
}

/* Decodes a base64url member of obj as JSON. */
static json_t *
b64url_json(json_t *obj, const char *member)
{
	unsigned char *raw = NULL;
	size_t len = 0;
	json_t *j = NULL;

	if (b64url_decode(json_string_value(json_object_get(obj, member)), &raw, &len) == 0)
		j = json_loadb((const char *)raw, len, 0, NULL);
	free(raw);
	return j;
}

/* Asserts that b64url_decode rejects in and leaves no output. */
static void
check_decode_rejects(const char *in)
{
	static unsigned char sentinel;
	unsigned char *out = &sentinel;
	size_t outlen = 99;

	if (b64url_decode(in, &out, &outlen) != -1) {
		fprintf(stderr, "  b64url_decode accepted \"%s\"\n", in);
		check_failures++;
	}
	CHECK(out == NULL);
	CHECK(outlen == 0);
	if (out != &sentinel)
		free(out);
}

static void
test_b64url_encode_errors(void)
{
	char *s;

	CHECK(b64url_encode(NULL, 1) == NULL);
	CHECK(b64url_encode(NULL, 3) == NULL);
	s = b64url_encode(NULL, 0);
	CHECK_STR(s, "");
	free(s);
	s = b64url_encode((const unsigned char *)"x", 0);
	CHECK_STR(s, "");
	free(s);
}

static void
test_b64url_decode_errors(void)
{
	unsigned char *out = NULL;
	size_t outlen = 0;

	CHECK(b64url_decode(NULL, &out, &outlen) == -1);
	CHECK(out == NULL);
	CHECK(b64url_decode("Zm9v", NULL, &outlen) == -1);
	CHECK(b64url_decode("Zm9v", &out, NULL) == -1);
	CHECK(out == NULL);

	check_decode_rejects("Zm9v+A");   /* standard base64 '+' */
	check_decode_rejects("Zm9v/A");   /* standard base64 '/' */
	check_decode_rejects("+_8");
	check_decode_rejects("-/8");
	check_decode_rejects("Zm 9v");    /* white space */
	check_decode_rejects("Zm9v\n");
	check_decode_rejects("Zm9v!");
	check_decode_rejects("Zm9v.");
	check_decode_rejects("Zm9v\xc3\xa9");
	check_decode_rejects("Z");        /* one character left over is never base64 */
	check_decode_rejects("Zm9vY");
	check_decode_rejects("=");
	check_decode_rejects("==");
	check_decode_rejects("Zg=");      /* padding that does not complete the quantum */
	check_decode_rejects("Zg===");
	check_decode_rejects("Zm8==");
	check_decode_rejects("Zm9v=");
	check_decode_rejects("Zg==Zg=="); /* padding in the middle */
	check_decode_rejects("Z=g=");
	check_decode_rejects("Zh");       /* non-zero pad bits: not the canonical "Zg" */
	check_decode_rejects("Zm9");
}

static void
test_b64url_rfc4648(void)
{
	/* RFC 4648 section 10, in the URL-safe alphabet and without padding. */
	static const struct {
		const char *plain, *enc, *padded;
	} v[] = {
		{ "", "", "" },
		{ "f", "Zg", "Zg==" },
		{ "fo", "Zm8", "Zm8=" },
		{ "foo", "Zm9v", "Zm9v" },
		{ "foob", "Zm9vYg", "Zm9vYg==" },
		{ "fooba", "Zm9vYmE", "Zm9vYmE=" },
		{ "foobar", "Zm9vYmFy", "Zm9vYmFy" },
	};
	unsigned char *out;
	size_t i, outlen;
	char *s;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		s = b64url_encode((const unsigned char *)v[i].plain, strlen(v[i].plain));
		CHECK_STR(s, v[i].enc);
		free(s);

		out = NULL;
		CHECK(b64url_decode(v[i].enc, &out, &outlen) == 0);
		CHECK(out != NULL);
		CHECK(outlen == strlen(v[i].plain));
		CHECK(out != NULL && memcmp(out, v[i].plain, outlen) == 0);
		free(out);

		out = NULL;
		CHECK(b64url_decode(v[i].padded, &out, &outlen) == 0);
		CHECK(outlen == strlen(v[i].plain));
		CHECK(out != NULL && memcmp(out, v[i].plain, outlen) == 0);
		free(out);
	}
}

static void
test_b64url_alphabet(void)
{
	static const unsigned char fbff[] = { 0xfb, 0xff };
	static const unsigned char fbffbf[] = { 0xfb, 0xff, 0xbf };
	unsigned char *out = NULL;
	size_t outlen = 0;
	char *s;

	s = b64url_encode(fbff, sizeof(fbff));
	CHECK_STR(s, "-_8");
	free(s);
	s = b64url_encode(fbffbf, sizeof(fbffbf));
	CHECK_STR(s, "-_-_");
	free(s);

	CHECK(b64url_decode("-_8", &out, &outlen) == 0);
	CHECK(outlen == 2 && out != NULL && memcmp(out, fbff, 2) == 0);
	free(out);
	out = NULL;
	CHECK(b64url_decode("-_-_", &out, &outlen) == 0);
	CHECK(outlen == 3 && out != NULL && memcmp(out, fbffbf, 3) == 0);
	free(out);
	check_decode_rejects("+/8");
	check_decode_rejects("+/+/");
}

static void
test_b64url_roundtrip(void)
{
	unsigned char in[300], *out;
	size_t len, outlen;
	char *s;

	for (len = 0; len <= sizeof(in); len++) {
		CHECK(RAND_bytes(in, (int)sizeof(in)) == 1);
		s = b64url_encode(in, len);
		CHECK(s != NULL);
		if (s == NULL)
			continue;
		CHECK(strlen(s) == (len * 4 + 2) / 3);
		CHECK(strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		    "0123456789-_") == strlen(s));
		out = NULL;
		outlen = 0;
		CHECK(b64url_decode(s, &out, &outlen) == 0);
		CHECK(outlen == len);
		CHECK(out != NULL && memcmp(out, in, len) == 0);
		free(out);
		free(s);
	}
}

static void
test_jwk_errors(void)
{
	EVP_PKEY *p384, *ed;  /* p384: a curve not supported, P-521 */
	cf_err err = { { 0 } };
	char tp[44];

	CHECK(jwk_json(NULL, &err) == NULL);
	CHECK(err.msg[0] != '\0');
	CHECK(jwk_json(NULL, NULL) == NULL); /* err is optional */
	CHECK(jwk_thumbprint(NULL, tp, &err) == -1);

	p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
	CHECK(p384 != NULL);
	err.msg[0] = '\0';
	CHECK(jwk_json(p384, &err) == NULL);
	CHECK(strstr(err.msg, "secp521r1") != NULL);
	CHECK(jwk_thumbprint(p384, tp, &err) == -1);
	CHECK(jwk_thumbprint(p384, NULL, &err) == -1);

	ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	CHECK(ed != NULL);
	err.msg[0] = '\0';
	CHECK(jwk_json(ed, &err) == NULL);
	CHECK(strstr(err.msg, "not supported") != NULL);
	EVP_PKEY_free(p384);
	EVP_PKEY_free(ed);
}

static void
test_jwk_rfc7638(void)
{
	EVP_PKEY *key = rsa_pub_from_hex(rfc7638_n_hex, rfc7638_e_hex);
	cf_err err = { { 0 } };
	char tp[44], *json;

	CHECK(key != NULL);
	json = jwk_json(key, &err);
	CHECK_STR(json, rfc7638_json);
	memset(tp, 'x', sizeof(tp));
	CHECK(jwk_thumbprint(key, tp, &err) == 0);
	CHECK(tp[43] == '\0');
	CHECK_STR(tp, rfc7638_thumbprint);
	free(json);
	EVP_PKEY_free(key);
}

static void
test_jwk_rsa_minimal_octets(void)
{
	/* e = 3 is one octet, and an n whose top octet is small is not padded. */
	EVP_PKEY *key = rsa_pub_from_hex("00" "01ff", "03");
	cf_err err = { { 0 } };
	char *json;

	CHECK(key != NULL);
	json = jwk_json(key, &err);
	CHECK_STR(json, "{\"e\":\"Aw\",\"kty\":\"RSA\",\"n\":\"Af8\"}");
	free(json);
	EVP_PKEY_free(key);
}

static void
test_jwk_ec_rfc7515(void)
{
	EVP_PKEY *key = ec_key_from_d(rfc7515_d_hex);
	cf_err err = { { 0 } };
	char tp[44], *json;

	CHECK(key != NULL);
	json = jwk_json(key, &err);
	CHECK_STR(json, rfc7515_jwk);
	CHECK(jwk_thumbprint(key, tp, &err) == 0);
	CHECK(strlen(tp) == 43);
	free(json);
	EVP_PKEY_free(key);
}

static void
test_jwk_ec_padding(void)
{
	EVP_PKEY *key = ec_key_from_d(d379_hex);
	cf_err err = { { 0 } };
	char *json;

	CHECK(key != NULL);
	json = jwk_json(key, &err);
	CHECK_STR(json, d379_jwk);
	free(json);
	EVP_PKEY_free(key);
}

static void
test_jws_errors(void)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521"); /* a curve not supported */
	EVP_PKEY *pub = rsa_pub_from_hex(rfc7638_n_hex, rfc7638_e_hex);
	cf_err err = { { 0 } };
	char *s;

	CHECK(key != NULL && p384 != NULL);
	s = jws_sign(key, NULL, test_nonce, test_url, "{}", NULL); /* err is optional */
	CHECK(s != NULL);
	free(s);
	CHECK(jws_sign(key, NULL, NULL, test_url, "{}", NULL) == NULL);
	CHECK(jws_sign(NULL, NULL, test_nonce, test_url, "{}", &err) == NULL);
	CHECK(strstr(err.msg, test_url) != NULL);
	CHECK(jws_sign(key, NULL, NULL, test_url, "{}", &err) == NULL);
	CHECK(jws_sign(key, NULL, "", test_url, "{}", &err) == NULL);
	CHECK(strstr(err.msg, "nonce") != NULL);
	CHECK(jws_sign(key, NULL, test_nonce, NULL, "{}", &err) == NULL);
	CHECK(jws_sign(key, NULL, test_nonce, "", "{}", &err) == NULL);
	CHECK(jws_sign(key, "", test_nonce, test_url, "{}", &err) == NULL);
	CHECK(jws_sign(key, NULL, "\xff\xfe", test_url, "{}", &err) == NULL);
	err.msg[0] = '\0';
	CHECK(jws_sign(p384, NULL, test_nonce, test_url, "{}", &err) == NULL);
	CHECK(strstr(err.msg, "secp521r1") != NULL);
	/* A public key cannot sign. */
	err.msg[0] = '\0';
	CHECK(pub != NULL);
	CHECK(jws_sign(pub, NULL, test_nonce, test_url, "{}", &err) == NULL);
	CHECK(strstr(err.msg, "EVP_PKEY_sign") != NULL);
	EVP_PKEY_free(key);
	EVP_PKEY_free(p384);
	EVP_PKEY_free(pub);
}

/*
 * Signs with key and checks the JWS from the outside: members, protected header, payload, and the
 * signature verified by OpenSSL (against the header's own jwk when there is no kid). Returns 1
 * when the signature was ES256 with a zero first octet in r or in s (that is, left-padded).
 */
static int
check_jws_with(struct jws_signer *signer, EVP_PKEY *key, const char *alg, const char *kid,
    const char *payload)
{
	json_t *jws = NULL, *hdr = NULL, *want_jwk = NULL;
	EVP_PKEY *hdr_key = NULL;
	cf_err err = { { 0 } };
	const char *prot, *pay, *sig;
	char *s, *jwk = NULL, *want_pay = NULL;
	unsigned char *raw = NULL;
	size_t rawlen = 0;
	int padded = 0;

	s = signer ? jws_signer_sign(signer, kid, test_nonce, test_url, payload, &err) :
	    jws_sign(key, kid, test_nonce, test_url, payload, &err);
	CHECK(s != NULL);
	if (s == NULL) {
		fprintf(stderr, "  jws_sign: %s\n", err.msg);
		return 0;
	}
	CHECK(strchr(s, ' ') == NULL && strchr(s, '\n') == NULL);
	jws = json_loads(s, 0, NULL);
	CHECK(jws != NULL && json_is_object(jws));
	CHECK(json_object_size(jws) == 3);
	/* as jansson writes it: these members in this order, compact */
	if (jws != NULL) {
		char *again = json_dumps(jws, JSON_COMPACT);

		CHECK_STR(again, s);
		CHECK(strncmp(s, "{\"protected\":", 13) == 0);
		free(again);
	}
	prot = json_string_value(json_object_get(jws, "protected"));
	pay = json_string_value(json_object_get(jws, "payload"));
	sig = json_string_value(json_object_get(jws, "signature"));
	CHECK(prot != NULL && pay != NULL && sig != NULL);
	if (prot == NULL || pay == NULL || sig == NULL)
		goto out;

	want_pay = b64url_encode((const unsigned char *)(payload ? payload : ""),
	    payload ? strlen(payload) : 0);
	CHECK_STR(pay, want_pay);
	if (payload == NULL)
		CHECK_STR(pay, "");

	hdr = b64url_json(jws, "protected");
	CHECK(hdr != NULL);
	CHECK_STR(json_string_value(json_object_get(hdr, "alg")), alg);
	CHECK_STR(json_string_value(json_object_get(hdr, "nonce")), test_nonce);
	CHECK_STR(json_string_value(json_object_get(hdr, "url")), test_url);
	CHECK(json_object_size(hdr) == 4); /* alg, nonce, url and exactly one of kid and jwk */
	if (kid != NULL) {
		CHECK_STR(json_string_value(json_object_get(hdr, "kid")), kid);
		CHECK(json_object_get(hdr, "jwk") == NULL);
	} else {
		CHECK(json_object_get(hdr, "kid") == NULL);
		jwk = jwk_json(key, &err);
		want_jwk = jwk ? json_loads(jwk, 0, NULL) : NULL;
		CHECK(want_jwk != NULL);
		CHECK(json_equal(json_object_get(hdr, "jwk"), want_jwk));
		if (strcmp(alg, "ES256") == 0) {
			hdr_key = ec_pub_from_jwk(json_object_get(hdr, "jwk"));
			CHECK(hdr_key != NULL);
			CHECK(hdr_key != NULL && EVP_PKEY_eq(hdr_key, key) == 1);
		}
	}

	CHECK(verify_jws(hdr_key ? hdr_key : key, alg, prot, pay, sig) == 1);
	/* The same signature over another payload, or over another header, must not verify. */
	CHECK(verify_jws(key, alg, prot, "eyJ4IjoxfQ", sig) == 0); /* {"x":1}, never signed here */
	CHECK(verify_jws(key, alg, pay, prot, sig) == 0);
	if (strcmp(alg, "ES256") == 0 && b64url_decode(sig, &raw, &rawlen) == 0 && rawlen == 64)
		padded = raw[0] == 0 || raw[32] == 0;
out:
	json_decref(jws);
	json_decref(hdr);
	json_decref(want_jwk);
	EVP_PKEY_free(hdr_key);
	free(jwk);
	free(want_pay);
	free(raw);
	free(s);
	return padded;
}

static int
check_jws(EVP_PKEY *key, const char *alg, const char *kid, const char *payload)
{
	return check_jws_with(NULL, key, alg, kid, payload);
}

static void
test_jws_es256_jwk(void)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

	CHECK(key != NULL);
	check_jws(key, "ES256", NULL,
	    "{\"termsOfServiceAgreed\":true,\"contact\":[\"mailto:ops@example.com\"]}");
	EVP_PKEY_free(key);
}

static void
test_jws_es256_kid(void)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

	CHECK(key != NULL);
	check_jws(key, "ES256", test_kid,
	    "{\"identifiers\":[{\"type\":\"dns\",\"value\":\"a.b\"}]}");
	check_jws(key, "ES256", test_kid, NULL); /* POST-as-GET */
	EVP_PKEY_free(key);
}

static void
test_jws_es256_many(void)
{
	/*
	 * About one signature in 128 has an r or s shorter than 32 octets. Sign until one has been
	 * left-padded (and verified), at least 50 times; not seeing one in 4000 has odds of 1e-13.
	 */
	EVP_PKEY *key = ec_key_from_d(rfc7515_d_hex);
	int i, padded = 0;

	CHECK(key != NULL);
	for (i = 0; i < 4000 && (i < 50 || padded == 0); i++)
		padded += check_jws(key, "ES256", test_kid, "{}");
	CHECK(padded > 0);
	EVP_PKEY_free(key);
}

static void
test_jws_rs256(void)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);

	CHECK(key != NULL);
	check_jws(key, "RS256", NULL, "{\"onlyReturnExisting\":true}");
	check_jws(key, "RS256", test_kid, NULL);
	EVP_PKEY_free(key);
}

/*
 * The protected header as jws_sign built it with jansson before jws_signer: alg, then kid or jwk,
 * nonce, url, compact. NULL when jansson refuses a string (not UTF-8).
 */
static char *
jansson_header(EVP_PKEY *key, const char *alg, const char *kid, const char *nonce, const char *url)
{
	json_t *hdr = json_object(), *jwk = NULL;
	char *jwk_text = NULL, *res = NULL;

	if (kid == NULL && ((jwk_text = jwk_json(key, NULL)) == NULL ||
	    (jwk = json_loads(jwk_text, 0, NULL)) == NULL))
		goto out;
	if (hdr != NULL && json_object_set_new(hdr, "alg", json_string(alg)) == 0 &&
	    (kid != NULL ? json_object_set_new(hdr, "kid", json_string(kid)) :
	    json_object_set(hdr, "jwk", jwk)) == 0 &&
	    json_object_set_new(hdr, "nonce", json_string(nonce)) == 0 &&
	    json_object_set_new(hdr, "url", json_string(url)) == 0)
		res = json_dumps(hdr, JSON_COMPACT);
out:
	json_decref(hdr);
	json_decref(jwk);
	free(jwk_text);
	return res;
}

/* The decoded protected header of a JWS, NUL-terminated and malloc'd, or NULL. */
static char *
jws_header_text(const char *jws)
{
	json_t *j = jws ? json_loads(jws, 0, NULL) : NULL;
	unsigned char *raw = NULL;
	char *res = NULL;
	size_t len = 0;

	if (j != NULL && b64url_decode(json_string_value(json_object_get(j, "protected")), &raw, &len) == 0 &&
	    (res = malloc(len + 1)) != NULL) {
		memcpy(res, raw, len);
		res[len] = '\0';
	}
	free(raw);
	json_decref(j);
	return res;
}

static void
test_signer_errors(void)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521"); /* a curve not supported */
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	EVP_PKEY *pub = rsa_pub_from_hex(rfc7638_n_hex, rfc7638_e_hex);
	struct jws_signer *s;
	cf_err err = { { 0 } };
	char *jws;

	CHECK(key != NULL && p384 != NULL && ed != NULL && pub != NULL);
	CHECK(jws_signer_new(NULL, &err) == NULL);
	CHECK(strstr(err.msg, "no key") != NULL);
	CHECK(jws_signer_new(NULL, NULL) == NULL); /* err is optional */
	CHECK(jws_signer_new(p384, &err) == NULL);
	CHECK(strstr(err.msg, "secp521r1") != NULL);
	CHECK(jws_signer_new(ed, &err) == NULL);
	CHECK(strstr(err.msg, "not supported") != NULL);
	CHECK(jws_signer_sign(NULL, NULL, test_nonce, test_url, "{}", &err) == NULL);
	CHECK(strstr(err.msg, "no signer") != NULL);
	jws_signer_free(NULL);

	/* bad arguments fail alone: the signer still signs afterwards */
	s = jws_signer_new(key, &err);
	CHECK(s != NULL);
	CHECK(jws_signer_sign(s, NULL, NULL, test_url, "{}", &err) == NULL);
	CHECK(strstr(err.msg, "nonce") != NULL);
	CHECK(jws_signer_sign(s, NULL, "", test_url, "{}", &err) == NULL);
	CHECK(jws_signer_sign(s, NULL, test_nonce, NULL, "{}", &err) == NULL);
	CHECK(jws_signer_sign(s, NULL, test_nonce, "", "{}", &err) == NULL);
	CHECK(jws_signer_sign(s, "", test_nonce, test_url, "{}", &err) == NULL);
	CHECK(strstr(err.msg, "empty kid") != NULL);
	CHECK(jws_signer_sign(s, NULL, "\xff\xfe", test_url, "{}", &err) == NULL);
	CHECK(strstr(err.msg, "invalid UTF-8") != NULL);
	CHECK(jws_signer_sign(s, "\xc3", test_nonce, test_url, "{}", &err) == NULL);
	CHECK(jws_signer_sign(s, NULL, test_nonce, "https://x/\xed\xa0\x80", "{}", &err) == NULL);
	jws = jws_signer_sign(s, test_kid, test_nonce, test_url, "{}", NULL);
	CHECK(jws != NULL);
	free(jws);
	jws_signer_free(s);

	/* a public key: the signer is made, and each signature fails */
	s = jws_signer_new(pub, &err);
	if (s != NULL) {
		err.msg[0] = '\0';
		CHECK(jws_signer_sign(s, test_kid, test_nonce, test_url, "{}", &err) == NULL);
		CHECK(strstr(err.msg, "EVP_PKEY_sign") != NULL);
	}
	jws_signer_free(s);
	ERR_clear_error();
	EVP_PKEY_free(key);
	EVP_PKEY_free(p384);
	EVP_PKEY_free(ed);
	EVP_PKEY_free(pub);
}

static void
test_signer_es256(void)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"), *fixed = ec_key_from_d(rfc7515_d_hex);
	struct jws_signer *s = key ? jws_signer_new(key, NULL) : NULL;
	int i, padded = 0;

	CHECK(s != NULL && fixed != NULL);
	if (s == NULL || fixed == NULL)
		goto out;
	/* the signer keeps its own reference: the caller's may go */
	CHECK(EVP_PKEY_up_ref(key));
	EVP_PKEY_free(key);
	check_jws_with(s, key, "ES256", NULL,
	    "{\"termsOfServiceAgreed\":true,\"contact\":[\"mailto:ops@example.com\"]}");
	check_jws_with(s, key, "ES256", test_kid, "{\"identifiers\":[{\"type\":\"dns\",\"value\":\"a.b\"}]}");
	check_jws_with(s, key, "ES256", test_kid, NULL);
	check_jws_with(s, key, "ES256", NULL, NULL); /* the JWK made once, used again */
	jws_signer_free(s);

	/* one signer, many signatures, until r or s has been left-padded (see test_jws_es256_many) */
	s = jws_signer_new(fixed, NULL);
	CHECK(s != NULL);
	for (i = 0; s != NULL && i < 4000 && (i < 50 || padded == 0); i++)
		padded += check_jws_with(s, fixed, "ES256", test_kid, i % 2 ? "{}" : NULL);
	CHECK(padded > 0);
out:
	jws_signer_free(s);
	EVP_PKEY_free(key);
	EVP_PKEY_free(fixed);
}

static void
test_signer_rs256(void)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	struct jws_signer *s = key ? jws_signer_new(key, NULL) : NULL;

	CHECK(s != NULL);
	if (s != NULL) {
		check_jws_with(s, key, "RS256", NULL, "{\"onlyReturnExisting\":true}");
		check_jws_with(s, key, "RS256", test_kid, NULL);
		check_jws_with(s, key, "RS256", test_kid, "{}");
	}
	jws_signer_free(s);
	EVP_PKEY_free(key);
}

/* Asserts that both jws_signer_sign and jws_sign write jansson's header for these strings. */
static void
check_header_octets(struct jws_signer *s, EVP_PKEY *key, const char *kid, const char *nonce,
    const char *url)
{
	char *want = jansson_header(key, "ES256", kid, nonce, url), *a, *b, *ha, *hb;

	a = jws_signer_sign(s, kid, nonce, url, "{}", NULL);
	b = jws_sign(key, kid, nonce, url, "{}", NULL);
	ha = jws_header_text(a);
	hb = jws_header_text(b);
	if (want == NULL) {
		CHECK(a == NULL && b == NULL);
	} else {
		CHECK_STR(ha, want);
		CHECK_STR(hb, want);
	}
	free(want);
	free(a);
	free(b);
	free(ha);
	free(hb);
}

static void
test_signer_header_octets(void)
{
	static const char *const strs[] = {
		"plain",
		"with \"quotes\" and \\backslashes\\ and \\\"both\\\"",
		"https://acme.example/a/b?c=d&e=f#g",       /* '/' as it is (jansson's default) */
		"ctl\x01\x02\x1f\x7f end",                    /* \u0001 \u0002 \u001F, DEL as it is */
		"\b\f\n\r\t",
		"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",   /* 2-, 3- and 4-octet UTF-8 */
		"\xe2\x80\xa8\xe2\x80\xa9 \xef\xbf\xbf \xf4\x8f\xbf\xbf", /* U+2028/9, U+FFFF, U+10FFFF */
		"\xc3\xa9\"\xc3\xa9\\\x01\xc3\xa9",
		/* not UTF-8: refused by both */
		"\xc0\x80", "\xc1\xbf", "\xe0\x80\x80", "\xed\xa0\x80", "\xf0\x80\x80\x80",
		"\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xff", "\x80", "a\xe2\x82", "\xc3" "a",
	};
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	struct jws_signer *s = key ? jws_signer_new(key, NULL) : NULL;
	size_t i, n = sizeof(strs) / sizeof(strs[0]);

	CHECK(s != NULL);
	for (i = 0; s != NULL && i < n; i++) {
		check_header_octets(s, key, strs[i], test_nonce, test_url);
		check_header_octets(s, key, NULL, strs[i], test_url);
		check_header_octets(s, key, test_kid, test_nonce, strs[i]);
		check_header_octets(s, key, strs[i], strs[(i + 1) % n], strs[(i + 2) % n]);
	}
	jws_signer_free(s);
	EVP_PKEY_free(key);
}

static void
test_signer_escaping_fuzz(void)
{
	/* octets where escaping and UTF-8 checks have edges, and plain ones */
	static const unsigned char pool[] = { 0x01, 0x08, 0x09, 0x0a, 0x0c, 0x0d, 0x1f, 0x20, '"',
		'\\', '/', 'a', 'u', 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf,
		0xe0, 0xe2, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff };
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	struct jws_signer *s = key ? jws_signer_new(key, NULL) : NULL;
	unsigned char r[16];
	char str[16];
	int i, valid = 0;

	CHECK(s != NULL);
	for (i = 0; s != NULL && i < 3000; i++) {
		char *want, *jws, *got;
		size_t n, k;

		CHECK(RAND_bytes(r, sizeof(r)) == 1);
		n = 1 + r[0] % 10;
		for (k = 0; k < n; k++)
			str[k] = (char)pool[r[k + 1] % sizeof(pool)];
		str[n] = '\0';
		want = jansson_header(key, "ES256", test_kid, str, test_url);
		jws = jws_signer_sign(s, test_kid, str, test_url, NULL, NULL);
		got = jws_header_text(jws);
		CHECK((want == NULL) == (jws == NULL));
		if (want != NULL) {
			CHECK_STR(got, want);
			valid++;
		}
		free(want);
		free(jws);
		free(got);
	}
	CHECK(valid > 100); /* both accepted and refused strings were seen */
	CHECK(valid < 2900);
	jws_signer_free(s);
	EVP_PKEY_free(key);
}

/* ES384 with a P-384 key (a certificate key signing its own revocation): jwk with 48-octet x and y. */
static void
test_jws_es384(void)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	json_t *jwk = NULL;
	cf_err err = { { 0 } };
	char *json;

	CHECK(key != NULL);
	json = jwk_json(key, &err);
	jwk = json ? json_loads(json, 0, NULL) : NULL;
	CHECK(jwk != NULL);
	CHECK_STR(json_string_value(json_object_get(jwk, "crv")), "P-384");
	CHECK(strlen(json_string_value(json_object_get(jwk, "x")) ? json_string_value(json_object_get(jwk, "x")) : "") == 64);
	CHECK(strlen(json_string_value(json_object_get(jwk, "y")) ? json_string_value(json_object_get(jwk, "y")) : "") == 64);
	for (int i = 0; i < 20; i++) /* r or s with leading zero octets now and then */
		check_jws(key, "ES384", NULL, "{\"certificate\":\"MIIB\",\"reason\":1}");
	check_jws(key, "ES384", test_kid, NULL);
	json_decref(jwk);
	free(json);
	EVP_PKEY_free(key);
}

/* The inner JWS of a key change: "jwk" and "url", no "nonce"; verifies with the key. */
static void
test_jws_nonceless(void)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	const char *payload = "{\"account\":\"https://acme.example/acct/1\",\"oldKey\":{}}";
	json_t *jws = NULL, *hdr = NULL, *want = NULL;
	cf_err err = { { 0 } };
	char *s, *jwk = NULL, *pay64 = NULL;

	CHECK(key != NULL);
	CHECK(jws_sign_nonceless(key, NULL, payload, &err) == NULL);
	CHECK(jws_sign_nonceless(key, "", payload, &err) == NULL);
	CHECK(jws_sign_nonceless(NULL, test_url, payload, &err) == NULL);
	CHECK(strstr(err.msg, test_url) != NULL);
	CHECK(jws_sign_nonceless(key, test_url, NULL, &err) == NULL);
	s = jws_sign_nonceless(key, test_url, payload, &err);
	CHECK(s != NULL);
	jws = s ? json_loads(s, 0, NULL) : NULL;
	hdr = jws ? b64url_json(jws, "protected") : NULL;
	CHECK(hdr != NULL);
	CHECK(json_object_size(hdr) == 3);
	CHECK(json_object_get(hdr, "nonce") == NULL);
	CHECK(json_object_get(hdr, "kid") == NULL);
	CHECK_STR(json_string_value(json_object_get(hdr, "alg")), "ES256");
	CHECK_STR(json_string_value(json_object_get(hdr, "url")), test_url);
	jwk = jwk_json(key, &err);
	want = jwk ? json_loads(jwk, 0, NULL) : NULL;
	CHECK(want != NULL && json_equal(json_object_get(hdr, "jwk"), want));
	pay64 = b64url_encode((const unsigned char *)payload, strlen(payload));
	CHECK_STR(json_string_value(json_object_get(jws, "payload")), pay64);
	CHECK(verify_jws(key, "ES256", json_string_value(json_object_get(jws, "protected")),
	    json_string_value(json_object_get(jws, "payload")), json_string_value(json_object_get(jws, "signature"))) == 1);
	json_decref(jws);
	json_decref(hdr);
	json_decref(want);
	free(jwk);
	free(pay64);
	free(s);
	EVP_PKEY_free(key);
}

/* An External Account Binding: HS256 over protected "." payload, checked with OpenSSL's HMAC. */
static void
test_jws_hs256(void)
{
	unsigned char mac[32], other[32], md[32];
	unsigned int mdlen = 0;
	const char *payload = "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"a\",\"y\":\"b\"}";
	json_t *jws = NULL, *hdr = NULL;
	cf_err err = { { 0 } };
	char *s, *t, *input = NULL, *want = NULL, *pay64 = NULL;
	const char *prot, *pay, *sig;

	CHECK(RAND_bytes(mac, sizeof(mac)) == 1);
	memcpy(other, mac, sizeof(other));
	other[0] ^= 1;
	CHECK(jws_sign_hs256(mac, sizeof(mac), NULL, test_url, payload, &err) == NULL);
	CHECK(jws_sign_hs256(mac, sizeof(mac), "", test_url, payload, &err) == NULL);
	CHECK(jws_sign_hs256(mac, sizeof(mac), "kid-1", NULL, payload, &err) == NULL);
	CHECK(jws_sign_hs256(mac, sizeof(mac), "kid-1", test_url, NULL, &err) == NULL);
	CHECK(jws_sign_hs256(NULL, sizeof(mac), "kid-1", test_url, payload, &err) == NULL);
	CHECK(jws_sign_hs256(mac, 0, "kid-1", test_url, payload, &err) == NULL);
	CHECK(jws_sign_hs256(mac, sizeof(mac), "kid-\xff", test_url, payload, &err) == NULL);
	s = jws_sign_hs256(mac, sizeof(mac), "kid-1", test_url, payload, &err);
	CHECK(s != NULL);
	jws = s ? json_loads(s, 0, NULL) : NULL;
	CHECK(jws != NULL && json_object_size(jws) == 3);
	hdr = jws ? b64url_json(jws, "protected") : NULL;
	CHECK(hdr != NULL && json_object_size(hdr) == 3);
	CHECK_STR(json_string_value(json_object_get(hdr, "alg")), "HS256");
	CHECK_STR(json_string_value(json_object_get(hdr, "kid")), "kid-1");
	CHECK_STR(json_string_value(json_object_get(hdr, "url")), test_url);
	CHECK(json_object_get(hdr, "nonce") == NULL);
	prot = json_string_value(json_object_get(jws, "protected"));
	pay = json_string_value(json_object_get(jws, "payload"));
	sig = json_string_value(json_object_get(jws, "signature"));
	pay64 = b64url_encode((const unsigned char *)payload, strlen(payload));
	CHECK_STR(pay, pay64);
	if (prot && pay && sig) {
		input = malloc(strlen(prot) + strlen(pay) + 2);
		sprintf(input, "%s.%s", prot, pay);
		CHECK(HMAC(EVP_sha256(), mac, sizeof(mac), (unsigned char *)input, strlen(input), md, &mdlen) != NULL);
		want = b64url_encode(md, mdlen);
		CHECK_STR(sig, want);
		CHECK(strlen(sig) == 43); /* 32 octets */
	}
	/* another key, another MAC */
	t = jws_sign_hs256(other, sizeof(other), "kid-1", test_url, payload, &err);
	CHECK(t != NULL && s != NULL && strcmp(s, t) != 0);
	json_decref(jws);
	json_decref(hdr);
	free(input);
	free(want);
	free(pay64);
	free(s);
	free(t);
}

int
main(void)
{
	RUN(test_b64url_encode_errors);
	RUN(test_b64url_decode_errors);
	RUN(test_b64url_rfc4648);
	RUN(test_b64url_alphabet);
	RUN(test_b64url_roundtrip);
	RUN(test_jwk_errors);
	RUN(test_jwk_rfc7638);
	RUN(test_jwk_rsa_minimal_octets);
	RUN(test_jwk_ec_rfc7515);
	RUN(test_jwk_ec_padding);
	RUN(test_jws_errors);
	RUN(test_jws_es256_jwk);
	RUN(test_jws_es256_kid);
	RUN(test_jws_es256_many);
	RUN(test_jws_rs256);
	RUN(test_signer_errors);
	RUN(test_signer_es256);
	RUN(test_signer_rs256);
	RUN(test_signer_header_octets);
	RUN(test_signer_escaping_fuzz);
	RUN(test_jws_es384);
	RUN(test_jws_nonceless);
	RUN(test_jws_hs256);
	return CHECK_DONE();
}
