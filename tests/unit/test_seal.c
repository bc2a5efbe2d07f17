/* test_seal.c - AES-256-GCM sealing: errors first (garbled, truncated, tampered, wrong KEK or place), then round trips. */
#include <stdint.h>

#include "base64.h"
#include "check.h"
#include "seal.h"

static const char *const pem = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n"
    "-----END PRIVATE KEY-----\n";

static void
kek(struct seal_kek *k, unsigned char fill)
{
	unsigned char b[SEAL_KEY_LEN];
	cf_err err;

	memset(b, fill, sizeof(b));
	if (seal_kek_set(k, b, sizeof(b), &err) != 0)
		abort();
}

static void
test_kek_length(void)
{
	struct seal_kek k;
	unsigned char b[31] = { 0 };
	cf_err err;

	CHECK(seal_kek_set(&k, b, sizeof(b), &err) == -1);
	CHECK(check_says(err.msg, "31 octets, not 32"));
}

static void
test_not_sealed(void)
{
	struct seal_kek k;
	cf_err err;

	kek(&k, 1);
	CHECK(!seal_is_sealed(NULL));
	CHECK(!seal_is_sealed(pem));
	CHECK(!seal_is_sealed("cfseal1:"));
	CHECK(!seal_is_sealed("cfseal1:0123456789ABCDEF:x"));   /* upper case */
	CHECK(!seal_is_sealed("cfseal1:0123456789abcde:xx"));   /* 15 digits */
	CHECK(seal_open(&k, "t", pem, &err) == NULL);
	CHECK(check_says(err.msg, "does not start with"));
}

static void
test_garbled_and_truncated(void)
{
	struct seal_kek k;
	cf_err err;
	char *s, *bad;

	kek(&k, 1);
	s = seal_text(&k, "results.key_pem", pem, &err);
	CHECK(s != NULL);
	if (s == NULL)
		return;
	bad = strdup(s);
	bad[strlen(bad) - 1] = '+'; /* not base64url */
	CHECK(seal_open(&k, "results.key_pem", bad, &err) == NULL);
	CHECK(check_says(err.msg, "garbled"));
	free(bad);
	bad = strdup(s);
	bad[8 + 16 + 1 + 20] = '\0'; /* shorter than nonce and tag */
	CHECK(seal_open(&k, "results.key_pem", bad, &err) == NULL);
	CHECK(check_says(err.msg, "garbled or truncated"));
	free(bad);
	bad = strdup(s);
	bad[strlen(bad) - 8] = '\0'; /* the tag cut short */
	CHECK(seal_open(&k, "results.key_pem", bad, &err) == NULL);
	free(bad);
	free(s);
}

/* Flips one octet of the decoded nonce, ciphertext or tag and re-encodes. */
static char *
flip(const char *s, size_t at)
{
	const char *b = s + 8 + 16 + 1;
	unsigned char *raw;
	size_t len;
	char *enc, *out;

	if (b64url_decode(b, &raw, &len) != 0)
		return NULL;
	raw[at < len ? at : len - 1] ^= 0x01;
	enc = b64url_encode(raw, len);
	free(raw);
	if (asprintf(&out, "%.25s%s", s, enc) < 0)
		out = NULL;
	free(enc);
	return out;
}

static void
test_tampered(void)
{
	struct seal_kek k;
	cf_err err;
	char *s, *t;
	size_t at[] = { 0, 11, 12, 40, SIZE_MAX }; /* nonce, ciphertext, tag (the last octet) */

	kek(&k, 2);
	s = seal_text(&k, "orders.key_pem", pem, &err);
	CHECK(s != NULL);
	if (s == NULL)
		return;
	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		t = flip(s, at[i]);
		CHECK(t != NULL && seal_open(&k, "orders.key_pem", t, &err) == NULL);
		CHECK(check_says(err.msg, "authentication failed"));
		free(t);
	}
	/* another place: the same value moved to another column does not open */
	CHECK(seal_open(&k, "results.key_pem", s, &err) == NULL);
	CHECK(check_says(err.msg, "authentication failed"));
	free(s);
}

static void
test_wrong_kek(void)
{
	struct seal_kek a, b;
	cf_err err;
	char id[SEAL_ID_LEN + 1], *s;

	kek(&a, 3);
	kek(&b, 4);
	CHECK(strcmp(a.id, b.id) != 0);
	s = seal_text(&a, "journal", pem, &err);
	CHECK(s != NULL);
	CHECK(seal_kek_id(s, id, &err) == 0 && strcmp(id, a.id) == 0);
	CHECK(seal_open(&b, "journal", s, &err) == NULL);
	CHECK(check_says(err.msg, a.id));
	CHECK(check_says(err.msg, "sealed under key-encryption key"));
	free(s);
}

static void
test_round_trip(void)
{
	struct seal_kek k;
	cf_err err;
	char *s, *s2, *p;

	kek(&k, 5);
	s = seal_text(&k, "accounts.key_pem", pem, &err);
	s2 = seal_text(&k, "accounts.key_pem", pem, &err);
	CHECK(s != NULL && s2 != NULL);
	if (s == NULL || s2 == NULL)
		return;
	CHECK(seal_is_sealed(s));
	CHECK(check_printable(s));
	CHECK(strstr(s, "PRIVATE") == NULL && strstr(s, "MIGHAgEA") == NULL);
	CHECK(strcmp(s, s2) != 0); /* a fresh nonce each time */
	CHECK(strncmp(s, "cfseal1:", 8) == 0 && strncmp(s + 8, k.id, 16) == 0);
	p = seal_open(&k, "accounts.key_pem", s, &err);
	CHECK_STR(p, pem);
	cf_secret_free(p);
	free(s);
	free(s2);
	s = seal_text(&k, "accounts.key_pem", "", &err);
	p = s ? seal_open(&k, "accounts.key_pem", s, &err) : NULL;
	CHECK_STR(p, "");
	free(p);
	free(s);
	seal_kek_wipe(&k);
	CHECK(k.key[0] == 0 && k.key[31] == 0);
}

int
main(void)
{
	RUN(test_kek_length);
	RUN(test_not_sealed);
	RUN(test_garbled_and_truncated);
	RUN(test_tampered);
	RUN(test_wrong_kek);
	RUN(test_round_trip);
	return CHECK_DONE();
}
