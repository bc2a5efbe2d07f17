/*
 * cmd_keys.c - `certfleet keys` (generate-kek, rotate), and the step of `certfleet migrate` that
 * seals the plain keys of a database written before keys were sealed at rest.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "keyring.h"
#include "log.h"
#include "rewrap.h"

static void
keys_help(void)
{
	printf("usage: certfleet keys generate-kek FILE\n"
	       "       certfleet keys rotate [OPTIONS]\n"
	       "       certfleet keys open PLACE < VALUE\n\n"
	       "Every private key certfleet stores (account keys, certificate keys, the journal's) is\n"
	       "sealed with AES-256-GCM under a key-encryption key (KEK) that never enters the database.\n\n"
	       "generate-kek  writes a new random KEK to FILE (created with mode 0600; never overwritten).\n"
	       "rotate        re-seals every stored key under the current KEK, 1000 rows per transaction,\n"
	       "              and prints how many it re-sealed; running it again finds nothing to do.\n"
	       "open          prints the key of one stored value read from standard input, as it was\n"
	       "              stored at PLACE (results.key_pem, orders.key_pem or accounts.key_pem):\n"
	       "              psql -Atc \"SELECT key_pem FROM results WHERE id = 1\" | certfleet keys open results.key_pem\n\n"
	       "Environment: %s names the current KEK's file (or the systemd credential %s\n"
	       "in $CREDENTIALS_DIRECTORY); %s, colon-separated, names older KEK files that\n"
	       "still open what they sealed. A KEK file holds 32 random octets as 64 hex digits or base64\n"
	       "and must be the caller's, mode 0600 or stricter.\n\n%s",
	    KEYRING_ENV_FILE, KEYRING_CREDENTIAL, KEYRING_ENV_OLD, CONFIG_COMMON_HELP);
}

static int
keys_rotate(const struct config *cfg)
{
	struct rewrap_counts n;
	PGconn *c;
	cf_err err;
	long plain;
	int rc;

	if ((rc = cmd_keyring("keys rotate", true)) != EXIT_OK)
		return rc;
	if ((c = cmd_connect(cfg, true)) == NULL)
		return cmd_connect_failure();
	if (rewrap_check(c, keyring_installed(), &plain, &err) != 0) {
		log_error("keys rotate: %s", err.msg);
		rc = EXIT_USAGE;
	} else if (rewrap_all(c, keyring_installed(), false, &n, &err) != 0) {
		log_error("keys rotate: %s", err.msg);
		rc = EXIT_FAILURE_RUNTIME;
	} else {
		printf("keys rotate: %ld key%s re-sealed under key-encryption key %s (accounts %ld, orders %ld, "
		       "results %ld)\n", n.accounts + n.orders + n.results, n.accounts + n.orders + n.results == 1 ? "" : "s",
		    keyring_current_id(keyring_installed()), n.accounts, n.orders, n.results);
	}
	PQfinish(c);
	return rc;
}

/* Reads one stored value from stdin (trailing newlines dropped) and prints its secret. */
static int
keys_open(const char *place)
{
	static const char *const places[] = { SEAL_AT_ACCOUNTS, SEAL_AT_ORDERS, SEAL_AT_RESULTS, SEAL_AT_JOURNAL };
	cf_buf in = { 0 };
	char chunk[4096], *plain = NULL;
	size_t n;
	bool known = false;
	cf_err err;
	int rc;

	for (size_t i = 0; i < sizeof(places) / sizeof(places[0]); i++)
		known |= strcmp(place, places[i]) == 0;
	if (!known) {
		log_error("keys open: unknown place \"%.80s\" (results.key_pem, orders.key_pem, accounts.key_pem, journal)",
		    place);
		return EXIT_USAGE;
	}
	if ((rc = cmd_keyring("keys open", false)) != EXIT_OK)
		return rc;
	while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
		if (cf_buf_append(&in, chunk, n) != 0) {
			log_error("keys open: out of memory");
			rc = EXIT_FAILURE_RUNTIME;
			goto out;
		}
	while (in.len > 0 && (in.data[in.len - 1] == '\n' || in.data[in.len - 1] == '\r'))
		in.data[--in.len] = '\0';
	if (in.len == 0) {
		log_error("keys open: nothing on standard input");
		rc = EXIT_USAGE;
		goto out;
	}
	if ((plain = keyring_open(keyring_installed(), place, in.data, &err)) == NULL) {
		log_error("keys open: %s", err.msg);
		rc = EXIT_USAGE;
		goto out;
	}
	fputs(plain, stdout);
	if (plain[0] != '\0' && plain[strlen(plain) - 1] != '\n')
		fputc('\n', stdout);
out:
	cf_secret_free(plain);
	if (in.data != NULL)
		explicit_bzero(in.data, in.len);
	cf_buf_free(&in);
	return rc;
}

int
cmd_keys(struct config *cfg, int argc, char **argv)
{
	static const struct option opts[] = { CONFIG_COMMON_OPTIONS, { 0 } };
	cf_err err;
	int opt, rc;

	while ((opt = getopt_long(argc, argv, CONFIG_COMMON_SHORT, opts, NULL)) != -1) {
		if (opt == 'h') {
			keys_help();
			return EXIT_OK;
		}
		if (!config_common_option(cfg, opt, optarg))
			return EXIT_USAGE;
	}
	/* key-encryption keys and, for open and rotate, private keys pass through memory */
	if ((rc = cmd_protect_memory("keys")) != EXIT_OK)
		return rc;
	if (optind < argc && strcmp(argv[optind], "generate-kek") == 0 && optind + 2 == argc) {
		if (keyring_generate_file(argv[optind + 1], &err) != 0) {
			log_error("keys generate-kek: %s", err.msg);
			return EXIT_FAILURE_RUNTIME;
		}
		printf("wrote a new key-encryption key to %s\n", argv[optind + 1]);
		return EXIT_OK;
	}
	if (optind + 1 == argc && strcmp(argv[optind], "rotate") == 0)
		return keys_rotate(cfg);
	if (optind + 2 == argc && strcmp(argv[optind], "open") == 0)
		return keys_open(argv[optind + 1]);
	log_error("keys: expected 'generate-kek FILE', 'rotate' or 'open PLACE' (see certfleet keys --help)");
	return EXIT_USAGE;
}

int
cmd_migrate_keys(PGconn *c)
{
	struct rewrap_counts n;
	cf_err err;
	long plain;
	int rc;

	if ((rc = cmd_keyring("migrate", false)) != EXIT_OK)
		return rc;
	/* without any KEK, sealed values are left unchecked: a schema upgrade needs no key */
	if (rewrap_check(c, keyring_installed(), &plain, &err) != 0) {
		log_error("migrate: %s", err.msg);
		return EXIT_USAGE;
	}
	if (plain == 0)
		return EXIT_OK;
	if (keyring_current_id(keyring_installed()) == NULL) {
		log_error("migrate: the database holds %ld private key%s in plain text; set %s to a key-encryption "
		    "key file (make one with 'certfleet keys generate-kek FILE') to seal them; nothing was changed",
		    plain, plain == 1 ? "" : "s", KEYRING_ENV_FILE);
		return EXIT_USAGE;
	}
	if (rewrap_all(c, keyring_installed(), true, &n, &err) != 0) {
		log_error("migrate: %s", err.msg);
		return EXIT_FAILURE_RUNTIME;
	}
	printf("sealed %ld plain private key%s under key-encryption key %s (accounts %ld, orders %ld, results %ld)\n",
	    n.accounts + n.orders + n.results, n.accounts + n.orders + n.results == 1 ? "" : "s",
	    keyring_current_id(keyring_installed()), n.accounts, n.orders, n.results);
	return EXIT_OK;
}
