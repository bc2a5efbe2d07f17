/* job.h - one certificate job as the claimer hands it to a worker. */
#ifndef CF_JOB_H
#define CF_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keys.h"

struct job {
	int64_t id;
	int64_t certificate_id;
	int64_t account_id;
	int attempt;              /* 1 for the first try */
	bool renewal;             /* the certificate was issued before (CAs count renewals apart) */
	int max_attempts;         /* the last try: a failure then is final */
	char *resume_url;         /* an earlier attempt's order to continue, or NULL */
	char *resume_key_pem;     /* the key that order was finalized with, or NULL (secret) */
	char **names;             /* normalized identifiers, first is the primary name */
	size_t nnames;
	enum key_type key_type;
	char *provider;           /* name of the DNS provider that publishes its records */
	char *profile;            /* the CA's certificate profile to order, NULL for its default */
	char *preferred_chain;    /* issuer CN of the topmost certificate of the chain to store, or NULL */
	char **known_records;     /* "fqdn value" of records known to be in place for these names */
	size_t nknown;
	struct job *next;         /* inbox link */
};

struct job *job_new(void);
void job_free(struct job *job);

/* Adds a copy of name; returns 0 or -1. */
int job_add_name(struct job *job, const char *name) CF_MUST;
int job_add_known_record(struct job *job, const char *fqdn, const char *value) CF_MUST;

/* 1 when the record fqdn=value is known to be in place. */
int job_record_known(const struct job *job, const char *fqdn, const char *value);

#endif
