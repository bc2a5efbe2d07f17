/*
 * journal.h - the local journal: where a message that carries a certificate, a key or an order
 * URL goes when PostgreSQL will not take it (a refusal that retrying cannot mend, or a run stopped
 * at once while PostgreSQL hangs), so that it is never lost. An append-only file of JSON lines,
 * mode 0600, fsynced after every entry; the next `run` stores its entries before it claims.
 */
#ifndef CF_JOURNAL_H
#define CF_JOURNAL_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "cf.h"
#include "outbox.h"

/*
 * The journal's path: CERTFLEET_JOURNAL, else $STATE_DIRECTORY/journal (a systemd service),
 * else $XDG_STATE_HOME/certfleet/journal, else ~/.local/state/certfleet/journal. -1 with err set
 * when none can be made (no HOME).
 */
int journal_default_path(char *buf, size_t len, cf_err *err) CF_MUST;

struct journal;

/*
 * A journal at path for entries of c's database: makes its folder (0700) when missing, and the
 * file itself (0600) at the first entry. Refuses a file that group or others may read, or that is
 * not a regular file. NULL with err naming the path.
 */
struct journal *journal_open(const char *path, PGconn *c, cf_err *err) CF_MUST;
void journal_close(struct journal *j);

/* True for the messages the journal keeps: those that carry a certificate, a key or an order URL. */
bool journal_wants(const struct outmsg *m);

/*
 * Appends m with why (the refusal), and fsyncs before it returns: 0, or -1 with err set. Safe
 * from several threads.
 */
int journal_append(struct journal *j, const struct outmsg *m, const char *why, cf_err *err) CF_MUST;

/* Entries appended since open. */
long journal_appended(const struct journal *j);

struct journal_replay {
	long stored;              /* entries now in PostgreSQL (or found there already) */
	long kept;                /* entries of this database still in the journal */
};

/*
 * Stores the entries of the journal at path that belong to c's database, oldest first, and
 * rewrites it with those that could not be stored and those of other databases (removing it when
 * none is left). An entry that PostgreSQL already holds (the same
 * certificate, or the order) is counted as stored and not written twice. A journal that does not
 * exist is empty. -1 with err set when the journal cannot be read or rewritten; PostgreSQL going
 * away in the middle stops the replay, keeping what is left, and is not an error.
 */
int journal_replay(PGconn *c, const char *path, struct journal_replay *out, cf_err *err) CF_MUST;

#endif
