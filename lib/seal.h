/* seal.h - secrets sealed at rest: AES-256-GCM under a key-encryption key (KEK) that has an id. */
#ifndef CF_SEAL_H
#define CF_SEAL_H

#include <stdbool.h>
#include <stddef.h>

#include "cf.h"

#define SEAL_KEY_LEN 32    /* AES-256 */
#define SEAL_ID_LEN 16     /* hex digits of a KEK's id */
#define SEAL_PREFIX "cfseal1:"

/*
 * A KEK and its id: the first 16 hex digits of SHA-256 of its bytes, so that a sealed value says
 * which KEK opens it without saying anything of the key.
 */
struct seal_kek {
	unsigned char key[SEAL_KEY_LEN];
	char id[SEAL_ID_LEN + 1];
};

/* Sets k from 32 key bytes and computes its id. */
int seal_kek_set(struct seal_kek *k, const unsigned char *key, size_t len, cf_err *err) CF_MUST;

/* Wipes k's key bytes; NULL is fine. */
void seal_kek_wipe(struct seal_kek *k);

/*
 * plain sealed under k as printable text, "cfseal1:<kek id>:<base64url(nonce | ciphertext | tag)>",
 * with a random 12-octet nonce and aad (the value's place, "results.key_pem" say) authenticated
 * with it, so that a value moved to another place does not open. malloc'd.
 */
char *seal_text(const struct seal_kek *k, const char *aad, const char *plain, cf_err *err) CF_MUST;

/* Whether text has the form of a sealed value (it may still fail to open). */
bool seal_is_sealed(const char *text);

/* The KEK id of a sealed text into id (SEAL_ID_LEN + 1 octets); -1 when text is not sealed. */
int seal_kek_id(const char *text, char *id, cf_err *err) CF_MUST;

/*
 * The secret of a sealed text, opened with k under aad; malloc'd, free it with cf_secret_free.
 * NULL with err when the text is garbled, sealed under another KEK, or fails authentication
 * (tampered, or sealed under another aad).
 */
char *seal_open(const struct seal_kek *k, const char *aad, const char *text, cf_err *err) CF_MUST;

#endif
