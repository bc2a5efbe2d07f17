/*
 * records.h - the dns-persist-01 records the active fleet needs, as `certfleet records` prints
 * them: each certificate's CA (its account), the record form that CA speaks, and the output
 * formats (zone file, tab-separated, JSON).
 */
#ifndef CF_RECORDS_H
#define CF_RECORDS_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cf.h"
#include "persist.h"

enum records_format {
	RECORDS_ZONE,
	RECORDS_TSV,
	RECORDS_JSON,
};

/* "zone", "tsv" or "json"; -1 with err naming the text otherwise. */
int records_format_parse(const char *text, enum records_format *out, cf_err *err) CF_MUST;

/* A CA as its records name it: an account, and the form its directory says the CA speaks. */
struct records_ca {
	int64_t account_id;
	char *directory_url;
	char *account_url;
	char *thumbprint;              /* the account key's RFC 7638 thumbprint (draft -02) */
	char *issuer;                  /* the issuer domain name the records carry */
	enum persist_variant variant;
	char *hash_prefix;             /* draft -02: the directory's meta accountHashPrefix */
};

/*
 * Completes ca (an account's fields loaded) from the n octets of its CA's directory document:
 * draft -02 when meta.accountHashPrefix is a string, else -01, as run composes records under
 * each. The issuer stays the account's issuer domain when the CA lists it (meta.issuerDomainNames
 * under -02, meta.caaIdentities under -01) or lists none, else it is the first listed: run picks
 * the same from the challenge. -1 with err naming the directory when the document is not a JSON
 * object (ca unchanged).
 */
int records_ca_read_directory(struct records_ca *ca, const char *doc, size_t n, cf_err *err) CF_MUST;
void records_ca_clear(struct records_ca *ca);

/* One record: a name of some certificates of one CA. */
struct records_entry {
	const struct records_ca *ca;
	char *base;                    /* the normalized name (a wildcard's base name) */
	bool wildcard;                 /* the certificates also ask for *.base: policy=wildcard */
	int64_t *cert_ids;             /* the certificates it serves */
	size_t ncert;
};

/* The record's owner name and value, as run composes them (value malloc'd). -1 with err. */
int records_entry_compose(const struct records_entry *e, int64_t persist_until, char *fqdn, size_t fqdn_len,
    char **value, cf_err *err) CF_MUST;

/*
 * Appends the records of entries (sorted by CA) to out in format: zone (a comment line per CA,
 * then "FQDN. IN TXT" with the value as escaped character-strings of at most 255 octets), tsv
 * ("FQDN\tVALUE") or json (one array of objects: fqdn, value, issuer, account, account_id,
 * directory, draft, persist_until, certificates). -1 with err.
 */
int records_write(cf_buf *out, enum records_format format, const struct records_entry *entries, size_t n,
    int64_t persist_until, cf_err *err) CF_MUST;

/*
 * The active certificates' records (certificates.retired_at IS NULL, whatever their jobs), of
 * every account, or of the accounts of directory_url when not NULL: one entry per CA, base name
 * and wildcard form, in that order; *nca accounts loaded into *cas (without keys) and their
 * directories not read yet (ca->variant 0). 0, or -1 with err.
 */
int records_load(PGconn *c, const char *directory_url, struct records_ca **cas, size_t *nca,
    struct records_entry **entries, size_t *n, cf_err *err) CF_MUST;
/*
 * Compares entries' values with what run wrote (the records table): *differ gets the number of
 * names at which run wrote values of that account but none equal to the one composed now
 * (persist_until as records prints it), and example (when *differ > 0) one of them as
 * "FQDN: run wrote VALUE". Names run has not written yet do not count. 0, or -1 with err.
 */
int records_compare_written(PGconn *c, const struct records_entry *entries, size_t n, int64_t persist_until,
    long *differ, char *example, size_t example_len, cf_err *err) CF_MUST;

void records_free(struct records_ca *cas, size_t nca, struct records_entry *entries, size_t n);

#endif
