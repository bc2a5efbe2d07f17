/* cmd_account.c - `certfleet account register|show|rollover`. */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "commands.h"
#include "journal.h"
#include "log.h"

int
cmd_open_account(const struct config *cfg, const char *cmd, PGconn **c, struct account *acct)
{
	cf_err err;
	int found;

	*c = NULL;
	memset(acct, 0, sizeof(*acct));
	if (cfg->directory_url == NULL) {
		log_error("%s: no ACME directory: set CERTFLEET_DIRECTORY or pass --directory", cmd);
		return EXIT_USAGE;
	}
	if ((*c = cmd_connect(cfg, true)) == NULL)
		return cmd_connect_failure();
	found = account_load(*c, cfg->directory_url, acct, &err);
	if (found == 1)
		return EXIT_OK;
	if (found < 0)
		log_error("%s: %s", cmd, err.msg);
	else
		log_error("%s: no account for %s: register one for that CA first (certfleet account register "
		    "--directory %s)", cmd, cfg->directory_url, cfg->directory_url);
	PQfinish(*c);
	*c = NULL;
	return found < 0 ? EXIT_FAILURE_RUNTIME : EXIT_USAGE;
}

static void
account_help(void)
{
	printf("usage: certfleet account register [--contact mailto:ADDR]... [--agree-tos] [--issuer NAME]\n"
	       "                                  [--eab-kid KID --eab-hmac-file FILE] [--new] [OPTIONS]\n"
	       "       certfleet account show [OPTIONS]\n"
	       "       certfleet account rollover [OPTIONS]\n\n"
	       "register  creates an account key, registers it with the CA of --directory and stores it.\n"
	       "          When an account for that directory exists it is shown and kept (use --new for\n"
	       "          another one). --issuer sets the issuer domain name written into the\n"
	       "          _validation-persist records (default: the directory's first CAA identity).\n"
	       "          --eab-kid KID --eab-hmac-file FILE bind the account to an account the CA knows\n"
	       "          (External Account Binding, RFC 8555 7.3.4; ZeroSSL, Google Trust Services, ...):\n"
	       "          FILE holds the MAC key as the CA hands it out (base64url), must be owned by\n"
	       "          this user and mode 0600 or stricter (else exit 2, nothing done). The key id is\n"
	       "          stored with the account, the MAC key never. When the directory requires EAB and\n"
	       "          none is given, the CA's problem is reported (exit 1).\n"
	       "show      prints the account used for --directory (never its key).\n"
	       "rollover  replaces the account key with a new one at the CA (RFC 8555 7.3.5). The account\n"
	       "          URL stays, so every _validation-persist record stays valid. The new key is\n"
	       "          written sealed to a 0600 file beside the journal before the CA is asked, and\n"
	       "          removed once the database holds it; a rollover cut short (no answer from the\n"
	       "          CA, or the database failed after the CA took the key) is finished by running\n"
	       "          rollover again. Restart a running 'certfleet run' afterwards: it signs with\n"
	       "          the key it loaded at its start.\n\n%s",
	    CONFIG_COMMON_HELP);
}

static void
account_print(const struct account *a)
{
	printf("account id:     %lld\n", (long long)a->id);
	printf("directory:      %s\n", a->directory_url);
	printf("account URL:    %s\n", a->account_url);
	printf("contact:        %s\n", a->contact && a->contact[0] ? a->contact : "(none)");
	printf("issuer domain:  %s\n", a->issuer);
	printf("key thumbprint: %s\n", a->thumbprint);
	printf("created:        %s\n", a->created_at ? a->created_at : "");
	if (a->eab_kid)
		printf("EAB key id:     %s\n", a->eab_kid);
	if (a->key_rolled_at)
		printf("key rolled:     %s\n", a->key_rolled_at);
}

struct account_opts {
	struct account_register_opts ro; /* --contact, --agree-tos, --issuer */
	const char *contacts[16];
	bool force_new;           /* --new */
	const char *eab_file;     /* --eab-hmac-file */
	unsigned char *eab_mac;   /* its key, read before anything is done */
	const char *sub;          /* register, show or rollover */
	bool help;                /* --help was printed: nothing to do */
};

static const struct option account_options[] = {
	{ "contact", required_argument, NULL, 'c' },
	{ "agree-tos", no_argument, NULL, 'a' },
	{ "issuer", required_argument, NULL, 'i' },
	{ "new", no_argument, NULL, 'n' },
	{ "eab-kid", required_argument, NULL, 'K' },
	{ "eab-hmac-file", required_argument, NULL, 'H' },
	CONFIG_COMMON_OPTIONS,
	{ 0 },
};

/* One of account's own options: 1, 0 after logging a bad value, or -1 when opt is not one of them. */
static int
account_option(struct account_opts *o, int opt, const char *arg)
{
	switch (opt) {
	case 'c':
		if (o->ro.ncontacts == sizeof(o->contacts) / sizeof(o->contacts[0])) {
			log_error("account: at most 16 --contact");
			return 0;
		}
		if (strncmp(arg, "mailto:", 7) != 0) {
			log_error("account: --contact \"%s\": must be a mailto: URL", arg);
			return 0;
		}
		o->contacts[o->ro.ncontacts++] = arg;
		return 1;
	case 'a':
		o->ro.agree_tos = true;
		return 1;
	case 'i':
		o->ro.issuer = arg;
		return 1;
	case 'n':
		o->force_new = true;
		return 1;
	case 'K':
		for (const char *p = arg; *p; p++) {
			if (*p <= ' ' || *p > '~' || *p == '"' || *p == '\\') {
				log_error("account: --eab-kid \"%s\": expected the key identifier the CA handed out "
				    "(printable ASCII, no spaces or quotes)", arg);
				return 0;
			}
		}
		if (*arg == '\0' || strlen(arg) > 256) {
			log_error("account: --eab-kid: expected 1 to 256 characters");
			return 0;
		}
		o->ro.eab_kid = arg;
		return 1;
	case 'H':
		o->eab_file = arg;
		return 1;
	}
	return -1;
}

/* The flags and the subcommand. EXIT_OK (check o->help) or EXIT_USAGE. */
static int
account_parse(struct config *cfg, int argc, char **argv, struct account_opts *o)
{
	int opt, ok;

	memset(o, 0, sizeof(*o));
	while ((opt = getopt_long(argc, argv, "c:" CONFIG_COMMON_SHORT, account_options, NULL)) != -1) {
		if (opt == 'h') {
			account_help();
			o->help = true;
			return EXIT_OK;
		}
		ok = account_option(o, opt, optarg);
		if (ok == 0 || (ok < 0 && !config_common_option(cfg, opt, optarg)))
			return EXIT_USAGE;
	}
	if (optind + 1 != argc) {
		log_error("account: expected one of: register, show");
		return EXIT_USAGE;
	}
	o->sub = argv[optind];
	if (strcmp(o->sub, "register") != 0 && strcmp(o->sub, "show") != 0 && strcmp(o->sub, "rollover") != 0) {
		log_error("account: unknown subcommand \"%s\" (expected register, show or rollover)", o->sub);
		return EXIT_USAGE;
	}
	if ((o->ro.eab_kid != NULL || o->eab_file != NULL) && strcmp(o->sub, "register") != 0) {
		log_error("account %s: --eab-kid and --eab-hmac-file are for account register", o->sub);
		return EXIT_USAGE;
	}
	if ((o->ro.eab_kid != NULL) != (o->eab_file != NULL)) {
		log_error("account register: --eab-kid and --eab-hmac-file go together");
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

/* The EAB MAC key of --eab-hmac-file into o, before anything is stored: EXIT_OK or EXIT_USAGE. */
static int
account_read_eab(struct account_opts *o)
{
	cf_err err;

	if (o->eab_file == NULL)
		return EXIT_OK;
	if (account_eab_key_read(o->eab_file, &o->eab_mac, &o->ro.eab_mac_len, &err) != 0) {
		log_error("account register: %s", err.msg);
		return EXIT_USAGE;
	}
	o->ro.eab_mac = o->eab_mac;
	return EXIT_OK;
}

/* `account show`: the account loaded for the directory, when there is one (found). */
static int
account_show(const struct config *cfg, const struct account *acct, int found)
{
	if (found == 0) {
		log_error("account show: no account for %s: run 'certfleet account register'", cfg->directory_url);
		return EXIT_USAGE;
	}
	account_print(acct);
	return EXIT_OK;
}

/* `account register`: keeps the account found unless --new, else registers one into *acct. */
static int
account_do_register(PGconn *c, const struct config *cfg, struct account_opts *o, struct account *acct,
    int found)
{
	cf_err err;
	int rc;

	if (found == 1 && !o->force_new) {
		printf("an account for this directory exists already (use --new for another):\n");
		account_print(acct);
		return EXIT_OK;
	}
	if ((rc = cmd_keyring("account register", true)) != EXIT_OK)
		return rc;
	account_clear(acct);
	o->ro.directory_url = cfg->directory_url;
	o->ro.contacts = o->contacts;
	o->ro.http.ca_bundle = cfg->ca_bundle;
	o->ro.http.allow_http_loopback = cfg->allow_http_loopback;
	if (account_register(c, &o->ro, acct, &err) != 0) {
		log_error("account register: %s", err.msg);
		return EXIT_FAILURE_RUNTIME;
	}
	printf("registered:\n");
	account_print(acct);
	return EXIT_OK;
}

/* `account rollover`: the account of the directory gets a new key at the CA and in its row. */
static int
account_do_rollover(PGconn *c, const struct config *cfg, struct account *acct, int found)
{
	struct http_settings hs = { 0 };
	char journal[4096], *slash;
	bool resumed = false;
	cf_err err;
	int rc;

	if (found == 0) {
		log_error("account rollover: no account for %s: run 'certfleet account register'", cfg->directory_url);
		return EXIT_USAGE;
	}
	if ((rc = cmd_keyring("account rollover", true)) != EXIT_OK)
		return rc;
	if (journal_default_path(journal, sizeof(journal), &err) != 0) {
		log_error("account rollover: %s", err.msg);
		return EXIT_USAGE;
	}
	if ((slash = strrchr(journal, '/')) == NULL || slash == journal) {
		log_error("account rollover: the journal path %s has no folder for the pending key", journal);
		return EXIT_USAGE;
	}
	*slash = '\0';
	hs.ca_bundle = cfg->ca_bundle;
	hs.allow_http_loopback = cfg->allow_http_loopback;
	if (account_rollover(c, acct, &hs, journal, &resumed, &err) != 0) {
		log_error("account rollover: %s", err.msg);
		return EXIT_FAILURE_RUNTIME;
	}
	account_clear(acct);
	if (account_load(c, cfg->directory_url, acct, &err) != 1) {
		log_error("account rollover: the key was rolled over, but reading the account back failed: %s", err.msg);
		return EXIT_FAILURE_RUNTIME;
	}
	printf("%s; restart any running 'certfleet run' of this account:\n",
	    resumed ? "finished the key rollover begun earlier (the CA held the new key)" : "rolled the account key over");
	account_print(acct);
	return EXIT_OK;
}

int
cmd_account(struct config *cfg, int argc, char **argv)
{
	struct account_opts o;
	struct account acct = { 0 };
	PGconn *c = NULL;
	cf_err err;
	int rc, found;

	if ((rc = account_parse(cfg, argc, argv, &o)) != EXIT_OK || o.help)
		return rc;
	if (cfg->directory_url == NULL) {
		log_error("account: no ACME directory: set CERTFLEET_DIRECTORY or pass --directory");
		return EXIT_USAGE;
	}
	if (strcmp(o.sub, "register") == 0 && !config_directory_ok(cfg, "account register"))
		return EXIT_USAGE;
	if ((rc = cmd_protect_memory("account")) != EXIT_OK)
		return rc;
	if ((rc = account_read_eab(&o)) != EXIT_OK)
		goto out;
	if ((c = cmd_connect(cfg, true)) == NULL) {
		rc = cmd_connect_failure();
		goto out;
	}
	found = account_load(c, cfg->directory_url, &acct, &err);
	if (found < 0) {
		log_error("%s", err.msg);
		rc = EXIT_FAILURE_RUNTIME;
	} else if (strcmp(o.sub, "show") == 0) {
		rc = account_show(cfg, &acct, found);
	} else if (strcmp(o.sub, "rollover") == 0) {
		rc = account_do_rollover(c, cfg, &acct, found);
	} else {
		rc = account_do_register(c, cfg, &o, &acct, found);
	}
out:
	if (o.eab_mac != NULL)
		OPENSSL_cleanse(o.eab_mac, o.ro.eab_mac_len);
	free(o.eab_mac);
	account_clear(&acct);
	PQfinish(c);
	return rc;
}
