/*
 * revoke.h - certificate revocation (RFC 8555 7.6): the results a selection names, and their
 * revocation at the CA of each one's account, recorded in results.revoked_at.
 */
#ifndef CF_REVOKE_H
#define CF_REVOKE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cf.h"
#include "http.h"

/* The CRL reason code (RFC 5280 5.3.1) of a reason Let's Encrypt accepts by name, or -1. */
int revoke_reason_code(const char *name);

/* What to revoke: the union of every selector (current results, but any result by serial). */
struct revoke_sel {
	const int64_t *certs;        /* --certificate ID: its current result */
	size_t ncerts;
	const char *const *names;    /* --name NAME (normalized): the current result of its certificate */
	size_t nnames;
	const char *const *serials;  /* --serial HEX (lowercase, no leading zeros): that result */
	size_t nserials;
	const int64_t *runs;         /* --run ID: every current result issued by a job of that run */
	size_t nruns;
};

enum revoke_state {
	REVOKE_PENDING,              /* selected, not sent yet */
	REVOKE_DONE,                 /* the CA revoked it now */
	REVOKE_ALREADY,              /* revoked before (stored, or the CA's alreadyRevoked) */
	REVOKE_FAILED,               /* see why */
};

struct revoke_target {
	int64_t result_id;
	int64_t certificate_id;
	int64_t account_id;          /* the certificate's account, else its job's; 0 when neither */
	char *serial;
	char *names;                 /* comma-separated */
	char *leaf_pem;
	enum revoke_state state;
	char why[1400];              /* REVOKE_FAILED: the CA's problem or certfleet's reason */
};

/*
 * The results sel names, by account then result id, each once; results revoked before come as
 * REVOKE_ALREADY. A selector that names no result is bad input: 1 with err naming it (nothing
 * is selected); 0 on success; -1 with err on a database failure.
 */
int revoke_select(PGconn *c, const struct revoke_sel *sel, struct revoke_target **out, size_t *n,
    cf_err *err) CF_MUST;
void revoke_targets_free(struct revoke_target *t, size_t n);

/*
 * Revokes every REVOKE_PENDING target at its account's CA (the directory's revokeCert) with
 * reason: keyCompromise signed by the certificate's own key (JWS with "jwk"), any other reason
 * by the account key ("kid"). A target the CA revoked, or had revoked already, gets revoked_at
 * and revocation_reason; a refusal marks that target REVOKE_FAILED with the CA's problem, and so
 * does a CA that gives no answer (for every target of its account; *unreachable is set then). 0,
 * or -1 with err when the database failed (the targets not reached stay REVOKE_PENDING).
 */
int revoke_run(PGconn *c, struct revoke_target *t, size_t n, const char *reason,
    const struct http_settings *hs, bool *unreachable, cf_err *err) CF_MUST;

#endif
