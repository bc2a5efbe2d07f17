/*
 * manual.c - the manual provider: the records are published outside certfleet (by hand or by
 * infrastructure as code), so ensure does nothing and succeeds; whether the record really is
 * there is confirmed by the core afterwards (the account's "verify" settings). Remove cannot be
 * done from here and fails, not retryable, saying who must do it. No settings.
 */
#include "provider.h"

static void
manual_start(struct provider_call *call)
{
	if (call->action == PROVIDER_REMOVE && call->nrec > 0)
		provider_call_fail(call, false, -1, "manual account %s: cannot remove TXT %s%s: its records "
		    "are managed outside certfleet; whoever manages zone %s must remove it", call->acct->name,
		    call->recs[0].fqdn, call->nrec > 1 ? " (and the other records of this call)" : "",
		    call->zone ? call->zone : "(unknown)");
	provider_call_done(call);
}

static const char *const manual_settings[] = { NULL };

const struct provider_ops provider_manual = {
	.type = "manual",
	.summary = "records published outside certfleet: ensure only checks, remove is left to their owner",
	.batch_max = 1000,
	.zoneless = true,
	.default_rate = NULL,
	.settings = manual_settings,
	.start = manual_start,
};
