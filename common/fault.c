/* fault.c - fault points for the durability tests (see fault.h); empty unless CF_FAULT_POINTS. */
#include "fault.h"

#ifdef CF_FAULT_POINTS
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void
cf_fault_point(const char *name)
{
	const char *armed = getenv("CERTFLEET_FAULT");

	if (armed == NULL || strcmp(armed, name) != 0)
		return;
	fprintf(stderr, "certfleet: fault point \"%s\": the process dies here\n", name);
	kill(getpid(), SIGKILL);
}
#endif
