/* commands.h - the certfleet subcommands; each parses its own flags and returns an exit code. */
#ifndef CF_COMMANDS_H
#define CF_COMMANDS_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "config.h"

int cmd_migrate(struct config *cfg, int argc, char **argv);
int cmd_account(struct config *cfg, int argc, char **argv);
int cmd_enqueue(struct config *cfg, int argc, char **argv);
int cmd_run(struct config *cfg, int argc, char **argv);
int cmd_status(struct config *cfg, int argc, char **argv);
int cmd_metrics(struct config *cfg, int argc, char **argv);
int cmd_report(struct config *cfg, int argc, char **argv);
int cmd_records(struct config *cfg, int argc, char **argv);
int cmd_cancel(struct config *cfg, int argc, char **argv);
int cmd_cleanup(struct config *cfg, int argc, char **argv);
int cmd_provider(struct config *cfg, int argc, char **argv);
int cmd_keys(struct config *cfg, int argc, char **argv);
int cmd_renew(struct config *cfg, int argc, char **argv);
int cmd_revoke(struct config *cfg, int argc, char **argv);
int cmd_sync(struct config *cfg, int argc, char **argv);
int cmd_export(struct config *cfg, int argc, char **argv);
int cmd_deploy(struct config *cfg, int argc, char **argv);

/*
 * migrate's last step: seals the plain private keys of the database under the current KEK; with
 * plain keys and no KEK, or sealed keys under a KEK not loaded, changes nothing. An exit code.
 */
int cmd_migrate_keys(PGconn *c);

/*
 * Connects (and checks the schema when need_schema), or logs why not and returns NULL. A server
 * off loopback must be verified (sslmode=verify-full) unless CERTFLEET_DB_ALLOW_PLAINTEXT=1.
 */
PGconn *cmd_connect(const struct config *cfg, bool need_schema);

/* The exit code for the last cmd_connect that failed: EXIT_USAGE when its settings were refused. */
int cmd_connect_failure(void);

/* Whether CERTFLEET_DB (or --db) may be used (see cmd_connect); logs why not, prefixed by cmd. */
bool cmd_db_allowed(const struct config *cfg, const char *cmd);

struct account;
/*
 * For commands that act for the account of --directory: checks the directory is set, connects
 * and loads the account. Returns EXIT_OK, or the exit code after logging why (prefixed by cmd).
 */
int cmd_open_account(const struct config *cfg, const char *cmd, PGconn **c, struct account *acct);

/*
 * For commands that hold private keys or credentials in memory: no core dump (RLIMIT_CORE 0) and
 * not dumpable (PR_SET_DUMPABLE 0: no core, no ptrace and no /proc/PID/mem or environ for other
 * processes of the same user). Returns EXIT_OK, or the exit code after logging why.
 */
int cmd_protect_memory(const char *cmd);

/*
 * Loads the key-encryption keys the environment names (keyring.h) and installs them for this
 * process; need_current: a command that seals keys refuses to start without a current one.
 * EXIT_OK, or the exit code after logging why (prefixed by cmd).
 */
int cmd_keyring(const char *cmd, bool need_current);

/* Parses a whole number flag value in [min, max]; logs an error naming the flag on failure. */
int cmd_parse_long(const char *flag, const char *arg, long min, long max, long *out);

/*
 * Makes room for one more element of size sz after the n in *arr, for a repeatable selector flag
 * of cmd allowed at most max times; -1 after logging (prefixed by cmd, followed by hint when not
 * NULL) when there are max already or memory ran out.
 */
int cmd_grow_selector(const char *cmd, void **arr, size_t n, size_t sz, size_t max, const char *flag,
    const char *hint);

#endif
