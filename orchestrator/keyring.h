/*
 * keyring.h - the key-encryption keys (KEKs) of this process: the current one, which seals every
 * private key stored, and older ones that still open what they sealed (rotation).
 */
#ifndef CF_KEYRING_H
#define CF_KEYRING_H

#include <stdbool.h>

#include "cf.h"

/* Where KEKs come from: files of 32 random octets as 64 hex digits or base64, mode 0600 or stricter. */
#define KEYRING_ENV_FILE "CERTFLEET_KEK_FILE"
#define KEYRING_ENV_OLD "CERTFLEET_KEK_OLD_FILES"    /* colon-separated, for reading only */
#define KEYRING_CREDENTIAL "certfleet-kek"          /* in $CREDENTIALS_DIRECTORY (systemd) */

/* The places of sealed values, authenticated with them (a value moved elsewhere does not open). */
#define SEAL_AT_ACCOUNTS "accounts.key_pem"
#define SEAL_AT_ORDERS "orders.key_pem"
#define SEAL_AT_RESULTS "results.key_pem"
#define SEAL_AT_JOURNAL "journal"

struct keyring;

/*
 * The KEKs the environment names: CERTFLEET_KEK_FILE, else the systemd credential certfleet-kek,
 * is current; CERTFLEET_KEK_OLD_FILES are known for reading. *out is NULL when none is configured.
 * -1 with err (naming the file) when a file is missing, too open, not the caller's, or not a key.
 */
int keyring_load(struct keyring **out, cf_err *err) CF_MUST;

/* Wipes the key bytes and frees; NULL is fine. */
void keyring_free(struct keyring *kr);

/* The current KEK's id, or NULL (kr NULL, or only old KEKs). */
const char *keyring_current_id(const struct keyring *kr);

/* Whether kr holds the KEK of id. */
bool keyring_knows(const struct keyring *kr, const char *id);

/* plain sealed at place under the current KEK; malloc'd. Fails when there is no current KEK. */
char *keyring_seal(const struct keyring *kr, const char *place, const char *plain, cf_err *err) CF_MUST;

/*
 * The secret of text stored at place: opened when sealed (with the KEK its id names), or a copy
 * when it is plain (a row written before keys were sealed). malloc'd, free with cf_secret_free.
 */
char *keyring_open(const struct keyring *kr, const char *place, const char *text, cf_err *err) CF_MUST;

/* Writes a new random KEK to path (created 0600, never over an existing file). */
int keyring_generate_file(const char *path, cf_err *err) CF_MUST;

/*
 * The keyring of this process, installed once by the command that stores or signs with keys,
 * before any thread starts, and read-only afterwards (the writer, the claimer, the journal).
 * keyring_install takes kr and frees the one installed before (main installs NULL at exit).
 */
void keyring_install(struct keyring *kr);
const struct keyring *keyring_installed(void);

#endif
