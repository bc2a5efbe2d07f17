/*
 * fuzz_providers_file.c - fuzz target of providers/registry.c's reading of the providers file
 * (provider_registry_load with names_only, as enqueue checks it: no credential read, no account
 * opened). Any octets as the file, written to a private temporary file. Whatever loads: every
 * account has a type and a valid name and is found by it, "manual" is always there, no limiter
 * was made, and every zone is a normalized name; whatever is refused says why. A violation aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dnsname.h"
#include "registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];
static int fd = -1;

static void __attribute__((noreturn))
fail(const char *what, const char *name)
{
	fprintf(stderr, "fuzz_providers_file: %s (%s)\n", what, name ? name : "-");
	abort();
}

static void
cleanup(void)
{
	if (fd >= 0)
		unlink(path);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct provider_env env;
	struct provider_registry *reg;
	cf_err err = { { 0 } };

	if (fd < 0) {
		const char *tmp = getenv("TMPDIR");

		snprintf(path, sizeof(path), "%.40s/fuzz-providers.XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
		if ((fd = mkstemp(path)) < 0)
			fail("mkstemp", path);
		atexit(cleanup);
	}
	if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		fail("writing the temporary file", path);

	memset(&env, 0, sizeof(env));
	env.path = path;
	env.names_only = true;
	if ((reg = provider_registry_load(&env, &err)) == NULL) {
		if (err.msg[0] == '\0')
			fail("refused without saying why", NULL);
		return 0;
	}
	if (provider_account_find(reg, "manual") == NULL)
		fail("no manual account", NULL);
	for (size_t i = 0; i < provider_registry_count(reg); i++) {
		const struct provider_account *a = provider_registry_at(reg, i);
		size_t n = strlen(a->name);

		if (n == 0 || n > 64 || strspn(a->name, "abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != n)
			fail("an account name outside the allowed form", a->name);
		if (provider_account_find(reg, a->name) != a)
			fail("an account not found by its name", a->name);
		if (a->ops == NULL || a->limit != NULL || a->state != NULL)
			fail("an account without type, or opened in names_only", a->name);
		for (size_t k = 0; k < a->nzones; k++) {
			char norm[DNSNAME_MAX];

			if (a->zones[k] == NULL || dnsname_normalize(a->zones[k], norm, NULL) != 0 ||
			    strcmp(norm, a->zones[k]) != 0)
				fail("a zone that is not a normalized name", a->name);
		}
	}
	provider_registry_free(reg);
	return 0;
}

#define FUZZ_TARGET_NAME "fuzz_providers_file"
#include "replay.h"
