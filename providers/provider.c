/* provider.c - the table of DNS providers certfleet knows. */
#include "provider.h"

#include <string.h>

static const struct provider_ops *const providers[] = {
	&provider_challtestsrv,
};

const struct provider_ops *
provider_find(const char *name)
{
	for (size_t i = 0; i < sizeof(providers) / sizeof(providers[0]); i++)
		if (strcmp(providers[i]->name, name) == 0)
			return providers[i];
	return NULL;
}

const char *
provider_names(void)
{
	return "challtestsrv";
}
