/*
 * seal.c - AES-256-GCM sealing of secrets (key PEMs) under a key-encryption key, as printable text
 * that fits a TEXT column or a JSON string: "cfseal1:<kek id>:<base64url(nonce | ciphertext | tag)>".
 * The nonce is random (RAND_bytes): with 96-bit nonces a KEK may seal about 2^32 values before a
 * repeat becomes a concern (NIST SP 800-38D 8.3), far beyond a fleet's keys between rotations.
 */
#include "seal.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"

#define NONCE_LEN 12
#define TAG_LEN 16
#define PREFIX_LEN (sizeof(SEAL_PREFIX) - 1)

int
seal_kek_set(struct seal_kek *k, const unsigned char *key, size_t len, cf_err *err)
{
	unsigned char md[32];
	static const char hex[] = "0123456789abcdef";

	if (len != SEAL_KEY_LEN) {
		cf_errf(err, "key-encryption key: %zu octets, not %d", len, SEAL_KEY_LEN);
		return -1;
	}
	if (EVP_Digest(key, len, md, NULL, EVP_sha256(), NULL) != 1) {
		cf_errf(err, "key-encryption key: EVP_Digest failed");
		return -1;
	}
	memcpy(k->key, key, len);
	for (int i = 0; i < SEAL_ID_LEN / 2; i++) {
		k->id[2 * i] = hex[md[i] >> 4];
		k->id[2 * i + 1] = hex[md[i] & 15];
	}
	k->id[SEAL_ID_LEN] = '\0';
	return 0;
}

void
seal_kek_wipe(struct seal_kek *k)
{
	if (k != NULL)
		OPENSSL_cleanse(k, sizeof(*k));
}

/* One AES-256-GCM pass: encrypts (enc) or decrypts n octets of in to out, writing or checking tag. */
static int
gcm(bool enc, const struct seal_kek *k, const unsigned char *nonce, const char *aad,
    const unsigned char *in, size_t n, unsigned char *out, unsigned char *tag)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int len = 0, rc = -1;

	if (ctx == NULL || n > INT32_MAX)
		goto out;
	if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
	    EVP_CipherInit_ex(ctx, NULL, NULL, k->key, nonce, enc) != 1)
		goto out;
	if (EVP_CipherUpdate(ctx, NULL, &len, (const unsigned char *)aad, (int)strlen(aad)) != 1)
		goto out;
	if (n > 0 && EVP_CipherUpdate(ctx, out, &len, in, (int)n) != 1)
		goto out;
	if (!enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) != 1)
		goto out;
	if (EVP_CipherFinal_ex(ctx, out + (n > 0 ? len : 0), &len) != 1)
		goto out;
	if (enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) != 1)
		goto out;
	rc = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

char *
seal_text(const struct seal_kek *k, const char *aad, const char *plain, cf_err *err)
{
	size_t n = strlen(plain), rawlen = NONCE_LEN + n + TAG_LEN;
	unsigned char *raw = malloc(rawlen);
	char *b64 = NULL, *out = NULL;

	if (raw == NULL) {
		cf_errf(err, "sealing %s: out of memory", aad);
		goto out;
	}
	if (RAND_bytes(raw, NONCE_LEN) != 1) {
		cf_errf(err, "sealing %s: RAND_bytes failed", aad);
		goto out;
	}
	if (gcm(true, k, raw, aad, (const unsigned char *)plain, n, raw + NONCE_LEN, raw + NONCE_LEN + n) != 0) {
		cf_errf(err, "sealing %s: AES-256-GCM encryption failed", aad);
		goto out;
	}
	if ((b64 = b64url_encode(raw, rawlen)) == NULL ||
	    (out = malloc(PREFIX_LEN + SEAL_ID_LEN + 1 + strlen(b64) + 1)) == NULL) {
		cf_errf(err, "sealing %s: out of memory", aad);
		goto out;
	}
	strcpy(out, SEAL_PREFIX);
	strcat(out, k->id);
	strcat(out, ":");
	strcat(out, b64);
out:
	free(raw);
	free(b64);
	return out;
}

/* The id part of text when text is "cfseal1:" + 16 lowercase hex + ":"; else NULL. */
static const char *
id_part(const char *text)
{
	if (text == NULL || strncmp(text, SEAL_PREFIX, PREFIX_LEN) != 0)
		return NULL;
	for (size_t i = 0; i < SEAL_ID_LEN; i++) {
		char c = text[PREFIX_LEN + i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return NULL;
	}
	return text[PREFIX_LEN + SEAL_ID_LEN] == ':' ? text + PREFIX_LEN : NULL;
}

bool
seal_is_sealed(const char *text)
{
	return id_part(text) != NULL;
}

int
seal_kek_id(const char *text, char *id, cf_err *err)
{
	const char *p = id_part(text);

	if (p == NULL) {
		cf_errf(err, "a sealed value: does not start with \"%s<16 hex digits>:\"", SEAL_PREFIX);
		return -1;
	}
	memcpy(id, p, SEAL_ID_LEN);
	id[SEAL_ID_LEN] = '\0';
	return 0;
}

char *
seal_open(const struct seal_kek *k, const char *aad, const char *text, cf_err *err)
{
	char id[SEAL_ID_LEN + 1];
	unsigned char *raw = NULL;
	size_t rawlen = 0, n;
	char *plain = NULL;

	if (seal_kek_id(text, id, err) != 0)
		return NULL;
	if (strcmp(id, k->id) != 0) {
		cf_errf(err, "opening %s: sealed under key-encryption key %s, not the one given (%s)", aad, id, k->id);
		return NULL;
	}
	if (b64url_decode(text + PREFIX_LEN + SEAL_ID_LEN + 1, &raw, &rawlen) != 0 || rawlen < NONCE_LEN + TAG_LEN) {
		cf_errf(err, "opening %s: the sealed text is garbled or truncated", aad);
		goto out;
	}
	n = rawlen - NONCE_LEN - TAG_LEN;
	if ((plain = malloc(n + 1)) == NULL) {
		cf_errf(err, "opening %s: out of memory", aad);
		goto out;
	}
	if (gcm(false, k, raw, aad, raw + NONCE_LEN, n, (unsigned char *)plain, raw + NONCE_LEN + n) != 0 ||
	    memchr(plain, '\0', n) != NULL) {
		OPENSSL_cleanse(plain, n);
		free(plain);
		plain = NULL;
		cf_errf(err, "opening %s: authentication failed under key-encryption key %s (tampered, truncated, "
		    "or sealed for another place)", aad, id);
		goto out;
	}
	plain[n] = '\0';
out:
	if (raw != NULL)
		OPENSSL_cleanse(raw, rawlen);
	free(raw);
	return plain;
}
