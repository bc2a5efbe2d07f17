/* account.h - ACME accounts: registration with the CA (newAccount) and their rows in PostgreSQL. */
#ifndef CF_ACCOUNT_H
#define CF_ACCOUNT_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "cf.h"
#include "http.h"

struct account {
	int64_t id;
	char *directory_url;
	char *account_url;
	char *key_pem;           /* secret, opened by account_load_key only: never printed or logged */
	char *thumbprint;
	char *contact;           /* comma-separated */
	char *issuer;            /* issuer domain name for records */
	char *created_at;
	char *eab_kid;           /* the External Account Binding's key identifier, or NULL */
	char *key_rolled_at;     /* the last key rollover, or NULL */
};

void account_clear(struct account *a);

/* A copy of src without its key (dst->key_pem NULL); -1 when out of memory. */
int account_copy(struct account *dst, const struct account *src) CF_MUST;

/*
 * The newest account registered for directory_url, without its key (key_pem NULL): 1 found,
 * 0 none, -1 error. Commands that do not sign never read the key.
 */
int account_load(PGconn *c, const char *directory_url, struct account *out, cf_err *err) CF_MUST;

/* The account of id, with or without its key (as account_load): 1 found, 0 none, -1 error. */
int account_load_id(PGconn *c, int64_t id, struct account *out, cf_err *err) CF_MUST;

/*
 * The accounts with work, without their keys: a job of theirs queued or not finished yet, except
 * the accounts of except. *out is malloc'd (NULL when none): account_clear each, then free it.
 */
int account_load_busy(PGconn *c, const int64_t *except, size_t nexcept, struct account **out, size_t *n,
    cf_err *err) CF_MUST;

/* a->key_pem from a's row, opened with the installed keyring (keyring.h) when sealed. */
int account_load_key(PGconn *c, struct account *a, cf_err *err) CF_MUST;

struct account_register_opts {
	const char *directory_url;
	const char *const *contacts;  /* "mailto:..." URLs */
	size_t ncontacts;
	bool agree_tos;
	const char *issuer;           /* NULL: the directory's first caaIdentities entry */
	const char *eab_kid;          /* External Account Binding (RFC 8555 7.3.4), NULL: none */
	const unsigned char *eab_mac; /* its MAC key, eab_mac_len octets (account_eab_key_read) */
	size_t eab_mac_len;
	struct http_settings http;
};

/*
 * The EAB MAC key of path: base64url (padding and surrounding white space allowed), as CAs hand
 * it out. The file must be a regular file owned by this user, with no group or other permission
 * bits (0600 or stricter): -1 with err naming the file (and its mode) otherwise. *mac is
 * malloc'd; wipe it (OPENSSL_cleanse) before free. The key never appears in err.
 */
int account_eab_key_read(const char *path, unsigned char **mac, size_t *len, cf_err *err) CF_MUST;

/*
 * Creates a key, registers it with the CA (with an External Account Binding when o->eab_kid) and
 * stores the account, with eab_kid but never the MAC key.
 */
int account_register(PGconn *c, const struct account_register_opts *o, struct account *out,
    cf_err *err) CF_MUST;

/*
 * Rolls a's key over (RFC 8555 7.3.5) at its CA: a new key of the same type; the CA keeps the
 * account URL, so every dns-persist-01 record stays valid. The new key is written sealed to
 * pending_dir/rollover-<id>-<old thumbprint>.key (0600, fsynced) before the CA is asked, stored
 * in a's row (key_pem, key_thumbprint, key_rolled_at) once the CA accepted, and the file removed
 * then. A file left by an interrupted rollover is finished first: the CA is asked which key it
 * holds, and the row gets the new one if the CA took it (*resumed true, nothing else done), or
 * the file goes if the CA kept the old one. On failure -1 with err saying what the CA and the
 * database hold and, when the file must stay, where it is. a->thumbprint is the new one after.
 * One rollover of an account at a time (a session advisory lock): another one is refused.
 */
int account_rollover(PGconn *c, struct account *a, const struct http_settings *hs, const char *pending_dir,
    bool *resumed, cf_err *err) CF_MUST;

#endif
