/* test_der.c - unit tests of lib/der.c: DER writer and reader, INTEGER and Time, PEM, certificate walk. */
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <time.h>

#include "check.h"
#include "der.h"

/* A span over a string literal's octets (without the NUL). */
#define SPAN(lit) ((struct der_span){ (const unsigned char *)(lit), sizeof(lit) - 1 })

/* Checks that w holds exactly want (n octets) and has no error. */
static void
check_w(const struct der_w *w, const void *want, size_t n)
{
	CHECK(w->err == 0);
	CHECK(w->len == n);
	CHECK(w->len == n && memcmp(der_w_data(w), want, n) == 0);
}

static void
test_writer_lengths(void)
{
	/* every length form at its edges: short up to 127, then 1, 2 and 3 length octets */
	static const size_t lens[] = { 0, 1, 127, 128, 255, 256, 65535, 65536, 70000 };
	unsigned char *body = calloc(1, 70000);
	size_t i;

	CHECK(body != NULL);
	for (i = 0; body != NULL && i < sizeof(lens) / sizeof(lens[0]); i++) {
		struct der_w w;
		unsigned char hdr[6];
		size_t hl = 0, n = lens[i];

		hdr[hl++] = DER_OCTET_STRING;
		if (n < 128) {
			hdr[hl++] = (unsigned char)n;
		} else if (n < 256) {
			hdr[hl++] = 0x81;
			hdr[hl++] = (unsigned char)n;
		} else if (n < 65536) {
			hdr[hl++] = 0x82;
			hdr[hl++] = (unsigned char)(n >> 8);
			hdr[hl++] = (unsigned char)n;
		} else {
			hdr[hl++] = 0x83;
			hdr[hl++] = (unsigned char)(n >> 16);
			hdr[hl++] = (unsigned char)(n >> 8);
			hdr[hl++] = (unsigned char)n;
		}
		der_w_init(&w, 1); /* the smallest start: every write makes it grow */
		der_put_tlv(&w, DER_OCTET_STRING, body, n);
		CHECK(w.err == 0 && w.len == hl + n);
		CHECK(w.err == 0 && memcmp(der_w_data(&w), hdr, hl) == 0);
		der_w_free(&w);
		CHECK(w.buf == NULL && w.len == 0);
	}
	free(body);
	der_w_free(NULL);
}

static void
test_writer_nesting(void)
{
	/* SEQUENCE { INTEGER 0, SET { NULL }, [0] { BOOLEAN TRUE } }, written back to front */
	static const unsigned char want[] = { 0x30, 0x0c, 0x02, 0x01, 0x00, 0x31, 0x02, 0x05, 0x00,
		0xa0, 0x03, 0x01, 0x01, 0xff };
	struct der_w w;
	size_t m;

	der_w_init(&w, 0);
	m = w.len;
	der_put_tlv(&w, DER_BOOLEAN, "\xff", 1);
	der_wrap(&w, DER_CONSTRUCTED | DER_CONTEXT | 0, m);
	m = w.len;
	der_put_tlv(&w, DER_NULL, NULL, 0);
	der_wrap(&w, DER_SET, m);
	der_put_tlv(&w, DER_INTEGER, "", 1);
	der_wrap(&w, DER_SEQUENCE, 0);
	check_w(&w, want, sizeof(want));
	der_w_free(&w);
}

/* Asserts that der_next refuses in and leaves it as it was. */
static void
check_next_refuses(struct der_span in, const char *why)
{
	struct der_span save = in;

	if (der_next(&in, NULL, NULL) != -1) {
		fprintf(stderr, "  der_next accepted %s\n", why);
		check_failures++;
	}
	CHECK(in.p == save.p && in.len == save.len);
}

static void
test_reader_errors(void)
{
	struct der_span in = { NULL, 0 }, c;

	check_next_refuses(in, "nothing");
	check_next_refuses(SPAN("\x30"), "a lone tag");
	check_next_refuses(SPAN("\x1f\x01\x00"), "a high tag number");
	check_next_refuses(SPAN("\x30\x80\x00\x00"), "the indefinite length");
	check_next_refuses(SPAN("\x04\x81\x05" "hello"), "a long form for a short length");
	check_next_refuses(SPAN("\x04\x82\x00\x80"), "a length with a leading zero octet");
	check_next_refuses(SPAN("\x04\x85\x01\x00\x00\x00\x00"), "5 length octets");
	check_next_refuses(SPAN("\x04\x03" "ab"), "contents past the end");
	check_next_refuses(SPAN("\x04\x82\x01"), "length octets past the end");
	check_next_refuses(SPAN("\x04\x81"), "no length octets");

	in = SPAN("\x04\x02" "hi\x05\x00");
	CHECK(der_expect(&in, DER_NULL, &c, NULL) == -1 && in.len == 6); /* the wrong tag: unmoved */
	CHECK(der_next(&in, &c, NULL) == DER_OCTET_STRING && c.len == 2 && memcmp(c.p, "hi", 2) == 0);
	CHECK(der_expect(&in, DER_NULL, &c, NULL) == 0 && c.len == 0 && in.len == 0);
	CHECK(der_next(&in, &c, NULL) == -1);
}

static void
test_oid_int(void)
{
	CHECK(der_oid_ok(SPAN("\x2a\x86\x48\xce\x3d\x02\x01")) == 0);
	CHECK(der_oid_ok(SPAN("\x55\x04\x03")) == 0);
	CHECK(der_oid_ok(SPAN("")) == -1);
	CHECK(der_oid_ok(SPAN("\x2a\x86")) == -1);        /* the last sub-identifier unfinished */
	CHECK(der_oid_ok(SPAN("\x2a\x80\x01")) == -1);    /* a leading 0x80 */
	CHECK(der_oid_ok(SPAN("\x80\x01")) == -1);

	CHECK(der_int_ok(SPAN("\x00")) == 0);
	CHECK(der_int_ok(SPAN("\x00\x80")) == 0);
	CHECK(der_int_ok(SPAN("\xff\x7f")) == 0);
	CHECK(der_int_ok(SPAN("")) == -1);
	CHECK(der_int_ok(SPAN("\x00\x7f")) == -1);        /* padding that is not needed */
	CHECK(der_int_ok(SPAN("\xff\x80")) == -1);
}

/* BN_bn2hex of an INTEGER's contents, lowercased, through OpenSSL; malloc'd or NULL. */
static char *
ossl_int_hex(const unsigned char *c, size_t n)
{
	unsigned char der[80];
	const unsigned char *p = der;
	ASN1_INTEGER *ai;
	BIGNUM *bn = NULL;
	char *hex = NULL, *res = NULL;

	der[0] = DER_INTEGER;
	der[1] = (unsigned char)n;
	memcpy(der + 2, c, n);
	if ((ai = d2i_ASN1_INTEGER(NULL, &p, (long)n + 2)) != NULL &&
	    (bn = ASN1_INTEGER_to_BN(ai, NULL)) != NULL && (hex = BN_bn2hex(bn)) != NULL &&
	    (res = strdup(hex)) != NULL) {
		for (size_t i = 0; res[i]; i++)
			res[i] = (char)(res[i] >= 'A' && res[i] <= 'F' ? res[i] - 'A' + 'a' : res[i]);
	}
	ERR_clear_error();
	OPENSSL_free(hex);
	BN_free(bn);
	ASN1_INTEGER_free(ai);
	return res;
}

static void
test_int_hex(void)
{
	static const struct {
		const char *c;
		size_t n;
		const char *hex;
	} v[] = {
		{ "\x00", 1, "0" },
		{ "\x01", 1, "01" },
		{ "\x7f", 1, "7f" },
		{ "\x00\x80", 2, "80" },
		{ "\x01\x23", 2, "0123" },
		{ "\xff", 1, "-01" },
		{ "\x80", 1, "-80" },
		{ "\xff\x7f", 2, "-81" },
		{ "\x80\x00", 2, "-8000" },
	};
	unsigned char c[64];
	char out[200], small[4];
	size_t i, n;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		struct der_span in = { (const unsigned char *)v[i].c, v[i].n };

		CHECK(der_int_hex(in, out, sizeof(out)) == 0);
		CHECK_STR(out, v[i].hex);
	}
	CHECK(der_int_hex(SPAN("\x01\x23"), small, sizeof(small)) == -1); /* "0123" needs 5 */
	CHECK(der_int_hex(SPAN("\x01\x23\x45"), out, 0) == -1);
	CHECK(der_int_hex(SPAN("\x00\x01"), out, sizeof(out)) == -1);    /* not minimal */
	CHECK(der_int_hex(SPAN(""), out, sizeof(out)) == -1);

	/* random INTEGERs of 1 to 64 octets, against ASN1_INTEGER_to_BN + BN_bn2hex */
	for (i = 0; i < 5000; i++) {
		struct der_span in;
		char *want;

		n = 1 + i % 64;
		CHECK(RAND_bytes(c, (int)n) == 1);
		if (i % 7 == 0)
			c[0] = 0x00; /* a sign octet before a high bit, or padding to strip */
		if (i % 11 == 0)
			c[0] = 0xff;
		in.p = c;
		in.len = n;
		if (der_int_ok(in) != 0)
			continue;
		want = ossl_int_hex(c, n);
		CHECK(want != NULL);
		CHECK(der_int_hex(in, out, sizeof(out)) == 0);
		CHECK_STR(out, want);
		free(want);
	}
}

/* What OpenSSL makes of a Time: ASN1_TIME_to_tm then timegm, as cert_info_parse does. */
static int
ossl_time(int tag, const char *s, int64_t *out)
{
	ASN1_TIME *t = ASN1_TIME_new();
	struct tm tm;
	int ok;

	memset(&tm, 0, sizeof(tm));
	ok = t != NULL && ASN1_STRING_set(t, s, (int)strlen(s));
	if (ok)
		t->type = tag == DER_UTCTIME ? V_ASN1_UTCTIME : V_ASN1_GENERALIZEDTIME;
	ok = ok && ASN1_TIME_to_tm(t, &tm);
	if (ok)
		*out = (int64_t)timegm(&tm);
	ASN1_TIME_free(t);
	ERR_clear_error();
	return ok ? 0 : -1;
}

/* Asserts that der_time_unix reads s as want (and as OpenSSL does). */
static void
check_time(int tag, const char *s, int64_t want)
{
	struct der_span in = { (const unsigned char *)s, strlen(s) };
	int64_t got = -1, ossl = -2;

	if (der_time_unix(tag, in, &got) != 0 || got != want) {
		fprintf(stderr, "  der_time_unix(\"%s\") = %lld, want %lld\n", s, (long long)got,
		    (long long)want);
		check_failures++;
	}
	CHECK(ossl_time(tag, s, &ossl) == 0 && ossl == want);
}

static void
test_time(void)
{
	static const char *const bad_utc[] = { "", "231114221320", "231114221320+0000",
		"2311142213Z", "231114221320.5Z", "231314221320Z", "231100221320Z", "230230000000Z",
		"230229000000Z", "231114241320Z", "231114226020Z", "231114221360Z", "2311142213a0Z",
		"231114221320z", "-31114221320Z", "231131000000Z" };
	static const char *const bad_gen[] = { "20231114221320", "20231114221320.5Z",
		"202311142213Z", "19000229000000Z", "20231114221320+0100", "2023111422132Z" };
	char s[32];
	int64_t got, want;
	size_t i;

	check_time(DER_UTCTIME, "231114221320Z", 1700000000);
	check_time(DER_UTCTIME, "700101000000Z", 0);
	check_time(DER_UTCTIME, "500101000000Z", -631152000);      /* 1950: the first UTCTime year */
	check_time(DER_UTCTIME, "491231235959Z", 2524607999);      /* 2049: the last */
	check_time(DER_UTCTIME, "000229000000Z", 951782400);       /* 2000 is a leap year */
	check_time(DER_GENERALIZEDTIME, "20600101000000Z", 2840140800);
	check_time(DER_GENERALIZEDTIME, "99991231235959Z", 253402300799);
	check_time(DER_GENERALIZEDTIME, "19691231235959Z", -1);
	check_time(DER_GENERALIZEDTIME, "24000229120000Z", 13574606400);
	for (i = 0; i < sizeof(bad_utc) / sizeof(bad_utc[0]); i++) {
		struct der_span in = { (const unsigned char *)bad_utc[i], strlen(bad_utc[i]) };

		if (der_time_unix(DER_UTCTIME, in, &got) != -1) {
			fprintf(stderr, "  der_time_unix accepted UTCTime \"%s\"\n", bad_utc[i]);
			check_failures++;
		}
	}
	for (i = 0; i < sizeof(bad_gen) / sizeof(bad_gen[0]); i++) {
		struct der_span in = { (const unsigned char *)bad_gen[i], strlen(bad_gen[i]) };

		if (der_time_unix(DER_GENERALIZEDTIME, in, &got) != -1) {
			fprintf(stderr, "  der_time_unix accepted GeneralizedTime \"%s\"\n", bad_gen[i]);
			check_failures++;
		}
	}
	CHECK(der_time_unix(DER_OCTET_STRING, SPAN("231114221320Z"), &got) == -1);
	CHECK(der_time_unix(DER_UTCTIME, SPAN("20231114221320Z"), &got) == -1); /* 15 as UTCTime */

	/* random digits in every field: whatever is accepted, OpenSSL reads the same */
	for (i = 0; i < 20000; i++) {
		unsigned char r[16];
		int tag = i % 2 ? DER_UTCTIME : DER_GENERALIZEDTIME;
		size_t n = tag == DER_UTCTIME ? 12 : 14, k;
		struct der_span in;

		CHECK(RAND_bytes(r, sizeof(r)) == 1);
		for (k = 0; k < n; k++)
			s[k] = (char)('0' + r[k] % 10);
		/* mostly plausible months, days and hours, so that many are valid */
		if (r[14] % 4 != 0) {
			s[n - 10] = (char)('0' + r[15] % 2);
			s[n - 8] = (char)('0' + r[15] % 3);
			s[n - 6] = (char)('0' + r[14] % 2);
		}
		s[n] = 'Z';
		s[n + 1] = '\0';
		in.p = (const unsigned char *)s;
		in.len = n + 1;
		if (der_time_unix(tag, in, &got) == 0) {
			CHECK(ossl_time(tag, s, &want) == 0 && want == got);
		}
	}
}

static void
test_pem_encode(void)
{
	unsigned char der[300];
	size_t len;

	CHECK(RAND_bytes(der, sizeof(der)) == 1);
	/* every line-filling case (0 to 2 padding characters, a last line full or not) */
	for (len = 1; len <= sizeof(der); len++) {
		BIO *bio = BIO_new(BIO_s_mem());
		char *pem = pem_encode("CERTIFICATE", der, len), *data = NULL;
		unsigned char *back = NULL;
		size_t backlen = 0;
		long n;

		CHECK(bio != NULL && PEM_write_bio(bio, "CERTIFICATE", "", der, (long)len) > 0);
		n = BIO_get_mem_data(bio, &data);
		CHECK(pem != NULL && n > 0 && strlen(pem) == (size_t)n && memcmp(pem, data, (size_t)n) == 0);
		CHECK(pem != NULL && pem_decode_strict(pem, "CERTIFICATE", &back, &backlen) == 0);
		CHECK(backlen == len && back != NULL && memcmp(back, der, len) == 0);
		free(back);
		free(pem);
		BIO_free(bio);
	}
}

/* Asserts that pem_decode_strict refuses pem. */
static void
check_pem_refuses(const char *pem, const char *why)
{
	unsigned char *der = (unsigned char *)"x";
	size_t len = 9;

	if (pem_decode_strict(pem, "CERTIFICATE", &der, &len) != -1) {
		fprintf(stderr, "  pem_decode_strict accepted %s\n", why);
		check_failures++;
		free(der);
		return;
	}
	CHECK(der == NULL && len == 0);
}

static void
test_pem_decode(void)
{
	unsigned char *der = NULL;
	size_t len = 0;

	CHECK(pem_decode_strict("-----BEGIN CERTIFICATE-----\r\nAAEC\r\nAw==\r\n-----END CERTIFICATE-----\r\n",
	    "CERTIFICATE", &der, &len) == 0);
	CHECK(len == 4 && der != NULL && memcmp(der, "\x00\x01\x02\x03", 4) == 0);
	free(der);

	check_pem_refuses("", "nothing");
	check_pem_refuses("-----BEGIN CERTIFICATE-----\nAAEC\n", "no END line");
	check_pem_refuses("-----BEGIN PRIVATE KEY-----\nAAEC\n-----END PRIVATE KEY-----\n", "another label");
	check_pem_refuses("-----BEGIN CERTIFICATE-----\nAAEC\n-----END PRIVATE KEY-----\n", "another END");
	check_pem_refuses("-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----", "no END line end");
	check_pem_refuses("-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----BEGIN CERTIFICATE-----\n",
	    "something after the END line");
	check_pem_refuses("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n", "no data");
	check_pem_refuses("-----BEGIN CERTIFICATE-----AAEC\n-----END CERTIFICATE-----\n", "data on the BEGIN line");
	check_pem_refuses("-----BEGIN CERTIFICATE-----\nAA EC\n-----END CERTIFICATE-----\n", "a space");
	check_pem_refuses("-----BEGIN CERTIFICATE-----\nAAEC\n\n-----END CERTIFICATE-----\n", "an empty line");
	check_pem_refuses("-----BEGIN CERTIFICATE-----\nAAEC-----END CERTIFICATE-----\n", "no line end");
	check_pem_refuses("-----BEGIN CERTIFICATE-----\nAAE\n-----END CERTIFICATE-----\n", "a partial quantum");
	check_pem_refuses("-----BEGIN CERTIFICATE-----\nAw=A\n-----END CERTIFICATE-----\n", "data after '='");
	check_pem_refuses("-----BEGIN CERTIFICATE-----\nAx==\n-----END CERTIFICATE-----\n", "non-zero pad bits");
	check_pem_refuses("-----BEGIN CERTIFICATE-----\nA===\n-----END CERTIFICATE-----\n", "three '='");
	check_pem_refuses("-----BEGIN CERTIFICATE-----\nAAEC\nProc-Type: 4,ENCRYPTED\n-----END CERTIFICATE-----\n",
	    "a header");
	check_pem_refuses("-----BEGIN CERTIFICATE-----\n"
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"
	    "-----END CERTIFICATE-----\n", "a line of 68 characters");
}

/* A self-signed P-256 certificate with serial_hex, validity nb..na and an extension. */
static X509 *
make_cert(EVP_PKEY *key, const char *serial_hex, time_t nb, time_t na)
{
	X509 *x = X509_new(), *res = NULL;
	BIGNUM *serial = NULL;
	X509V3_CTX v3;
	X509_EXTENSION *ext = NULL;

	if (x == NULL || !X509_set_version(x, X509_VERSION_3) || !BN_hex2bn(&serial, serial_hex) ||
	    BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) == NULL ||
	    ASN1_TIME_set(X509_getm_notBefore(x), nb) == NULL ||
	    ASN1_TIME_set(X509_getm_notAfter(x), na) == NULL || !X509_set_pubkey(x, key) ||
	    !X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
	    (const unsigned char *)"t\xc3\xa9st", -1, -1, 0) ||
	    !X509_set_issuer_name(x, X509_get_subject_name(x)))
		goto out;
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:example.com")) == NULL ||
	    !X509_add_ext(x, ext, -1) || X509_sign(x, key, EVP_sha256()) <= 0)
		goto out;
	res = x;
	x = NULL;
out:
	X509_EXTENSION_free(ext);
	X509_free(x);
	BN_free(serial);
	return res;
}

/*
 * Asserts what der_cert_parse accepts of der (len octets) OpenSSL accepts too, with the same
 * serial. Returns 1 when der_cert_parse accepted it.
 */
static int
check_walk_subset(const unsigned char *der, size_t len, size_t *looser)
{
	struct der_cert dc;
	const unsigned char *p = der;
	X509 *x;
	int ok = der_cert_parse(der, len, &dc) == 0;

	x = d2i_X509(NULL, &p, (long)len);
	if (ok && x == NULL) {
		(*looser)++;
	} else if (ok) {
		const ASN1_INTEGER *sn = X509_get0_serialNumber(x);

		CHECK(p == der + len);
		CHECK((size_t)ASN1_STRING_length(sn) <= dc.serial.len);
	}
	X509_free(x);
	ERR_clear_error();
	return ok;
}

static void
test_cert_walk(void)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *x = key ? make_cert(key, "00C0FFEE", 1700000000, 2840140800) : NULL;
	unsigned char *der = NULL, *buf = NULL;
	size_t len, i, looser = 0, accepted = 0;
	struct der_cert dc;
	int n, bit;

	CHECK(x != NULL);
	if (x == NULL || (n = i2d_X509(x, &der)) <= 0)
		goto out;
	len = (size_t)n;
	CHECK(der_cert_parse(der, len, &dc) == 0);
	CHECK(dc.serial.len == 4 && memcmp(dc.serial.p, "\x00\xc0\xff\xee", 4) == 0);
	CHECK(dc.not_before_tag == DER_UTCTIME && dc.not_after_tag == DER_GENERALIZEDTIME);
	CHECK(dc.spki_key.len == 66 && dc.spki_key.p[0] == 0 && dc.spki_key.p[1] == 0x04);
	CHECK(dc.issuer.len > 0 && dc.issuer.p[0] == DER_SEQUENCE);

	/* cut short anywhere, or a byte too many: refused (and never read past the end: ASan) */
	for (i = 0; i < len; i++) {
		CHECK((buf = malloc(i ? i : 1)) != NULL);
		memcpy(buf, der, i);
		CHECK(der_cert_parse(buf, i, &dc) == -1);
		free(buf);
	}
	CHECK((buf = malloc(len + 1)) != NULL);
	memcpy(buf, der, len);
	buf[len] = 0;
	CHECK(der_cert_parse(buf, len + 1, &dc) == -1);
	free(buf);

	/* every byte with every single bit flipped, and set to 0x00, 0x80 and 0xff */
	CHECK((buf = malloc(len)) != NULL);
	for (i = 0; buf != NULL && i < len; i++) {
		for (bit = 0; bit < 11; bit++) {
			static const unsigned char set[] = { 0x00, 0x80, 0xff };

			memcpy(buf, der, len);
			buf[i] = bit < 8 ? (unsigned char)(der[i] ^ (1u << bit)) : set[bit - 8];
			if (buf[i] == der[i])
				continue;
			accepted += (size_t)check_walk_subset(buf, len, &looser);
		}
	}
	free(buf);
	/* most of the changes inside contents are still well-formed; none OpenSSL refuses */
	CHECK(accepted > 0);
	if (looser > 0) {
		fprintf(stderr, "  der_cert_parse accepted %zu certificates that d2i_X509 refuses\n", looser);
		check_failures++;
	}
out:
	OPENSSL_free(der);
	X509_free(x);
	EVP_PKEY_free(key);
}

int
main(void)
{
	RUN(test_writer_lengths);
	RUN(test_writer_nesting);
	RUN(test_reader_errors);
	RUN(test_oid_int);
	RUN(test_int_hex);
	RUN(test_time);
	RUN(test_pem_encode);
	RUN(test_pem_decode);
	RUN(test_cert_walk);
	return CHECK_DONE();
}
