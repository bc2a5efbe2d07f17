/*
 * powerdns.h - the PowerDNS provider's change planning (what one PATCH must say, given the TXT
 * RRsets a GET returned), apart from its HTTP plumbing in powerdns.c so that it can be unit tested.
 */
#ifndef CF_POWERDNS_H
#define CF_POWERDNS_H

#include <jansson.h>
#include <stddef.h>

#include "cf.h"
#include "provider.h"

/*
 * The RRset changes (the "rrsets" array of a PATCH, possibly empty) that apply action to recs,
 * given rrsets as PowerDNS returned them for the zone (the whole zone or some of its RRsets).
 * Per name of recs, once: ensure REPLACEs the TXT RRset with its values as they were plus each
 * value of recs that none of them holds (a disabled record holding one is enabled); remove
 * REPLACEs it with its values minus those of recs, or DELETEs it when none remains. Values are
 * compared after unquoting (txtdata.h); other values are kept as PowerDNS wrote them, content
 * that does not parse included. An existing RRset keeps its TTL; a new one gets ttl. No entry
 * for a name whose RRset needs no change. NULL with err on a malformed answer or value.
 */
json_t *powerdns_plan(enum provider_action action, const struct provider_record *recs, size_t nrec,
    const json_t *rrsets, json_int_t ttl, cf_err *err) CF_MUST;

#endif
