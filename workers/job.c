/* job.c - certificate jobs: allocation and the known-record lookups a worker makes. */
#include "job.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct job *
job_new(void)
{
	return calloc(1, sizeof(struct job));
}

void
job_free(struct job *job)
{
	if (job == NULL)
		return;
	for (size_t i = 0; i < job->nnames; i++)
		free(job->names[i]);
	free(job->names);
	for (size_t i = 0; i < job->nknown; i++)
		free(job->known_records[i]);
	free(job->known_records);
	free(job->provider);
	free(job->profile);
	free(job->preferred_chain);
	free(job->resume_url);
	cf_secret_free(job->resume_key_pem);
	free(job);
}

static int
append_str(char ***arr, size_t *n, char *s)
{
	char **a;

	if (s == NULL)
		return -1;
	a = realloc(*arr, (*n + 1) * sizeof(*a));
	if (a == NULL) {
		free(s);
		return -1;
	}
	a[(*n)++] = s;
	*arr = a;
	return 0;
}

int
job_add_name(struct job *job, const char *name)
{
	return append_str(&job->names, &job->nnames, strdup(name));
}

int
job_add_known_record(struct job *job, const char *fqdn, const char *value)
{
	char *s = NULL;

	if (asprintf(&s, "%s %s", fqdn, value) < 0)
		return -1;
	return append_str(&job->known_records, &job->nknown, s);
}

int
job_record_known(const struct job *job, const char *fqdn, const char *value)
{
	size_t flen = strlen(fqdn);

	for (size_t i = 0; i < job->nknown; i++) {
		const char *k = job->known_records[i];
		if (strncmp(k, fqdn, flen) == 0 && k[flen] == ' ' && strcmp(k + flen + 1, value) == 0)
			return 1;
	}
	return 0;
}
