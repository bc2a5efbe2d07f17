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
};

void account_clear(struct account *a);

/* A copy of src without its key (dst->key_pem NULL); -1 when out of memory. */
int account_copy(struct account *dst, const struct account *src) CF_MUST;

/*
 * The newest account registered for directory_url, without its key (key_pem NULL): 1 found,
 * 0 none, -1 error. Commands that do not sign never read the key.
 */
int account_load(PGconn *c, const char *directory_url, struct account *out, cf_err *err) CF_MUST;

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
	struct http_settings http;
};

/* Creates a key, registers it with the CA and stores the account. */
int account_register(PGconn *c, const struct account_register_opts *o, struct account *out,
    cf_err *err) CF_MUST;

#endif
