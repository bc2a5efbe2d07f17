/* cmd_account.c - `certfleet account register|show`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "commands.h"
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
		return EXIT_FAILURE_RUNTIME;
	found = account_load(*c, cfg->directory_url, acct, &err);
	if (found == 1)
		return EXIT_OK;
	if (found < 0)
		log_error("%s: %s", cmd, err.msg);
	else
		log_error("%s: no account for %s: run 'certfleet account register' first", cmd, cfg->directory_url);
	PQfinish(*c);
	*c = NULL;
	return found < 0 ? EXIT_FAILURE_RUNTIME : EXIT_USAGE;
}

static void
account_help(void)
{
	printf("usage: certfleet account register [--contact mailto:ADDR]... [--agree-tos] [--issuer NAME] [OPTIONS]\n"
	       "       certfleet account show [OPTIONS]\n\n"
	       "register  creates an account key, registers it with the CA of --directory and stores it.\n"
	       "          When an account for that directory exists it is shown and kept (use --new for\n"
	       "          another one). --issuer sets the issuer domain name written into the\n"
	       "          _validation-persist records (default: the directory's first CAA identity).\n"
	       "show      prints the account used for --directory (never its key).\n\n%s",
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
}

int
cmd_account(struct config *cfg, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "contact", required_argument, NULL, 'c' },
		{ "agree-tos", no_argument, NULL, 'a' },
		{ "issuer", required_argument, NULL, 'i' },
		{ "new", no_argument, NULL, 'n' },
		CONFIG_COMMON_OPTIONS,
		{ 0 },
	};
	struct account_register_opts ro = { 0 };
	const char *contacts[16];
	struct account acct = { 0 };
	bool force_new = false;
	PGconn *c = NULL;
	const char *sub;
	cf_err err;
	int opt, rc = EXIT_USAGE, found;

	while ((opt = getopt_long(argc, argv, "c:" CONFIG_COMMON_SHORT, opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			if (ro.ncontacts == sizeof(contacts) / sizeof(contacts[0])) {
				log_error("account: at most 16 --contact");
				return EXIT_USAGE;
			}
			if (strncmp(optarg, "mailto:", 7) != 0) {
				log_error("account: --contact \"%s\": must be a mailto: URL", optarg);
				return EXIT_USAGE;
			}
			contacts[ro.ncontacts++] = optarg;
			break;
		case 'a':
			ro.agree_tos = true;
			break;
		case 'i':
			ro.issuer = optarg;
			break;
		case 'n':
			force_new = true;
			break;
		case 'h':
			account_help();
			return EXIT_OK;
		default:
			if (!config_common_option(cfg, opt, optarg))
				return EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		log_error("account: expected one of: register, show");
		return EXIT_USAGE;
	}
	sub = argv[optind];
	if (strcmp(sub, "register") != 0 && strcmp(sub, "show") != 0) {
		log_error("account: unknown subcommand \"%s\" (expected register or show)", sub);
		return EXIT_USAGE;
	}
	if (cfg->directory_url == NULL) {
		log_error("account: no ACME directory: set CERTFLEET_DIRECTORY or pass --directory");
		return EXIT_USAGE;
	}
	if ((c = cmd_connect(cfg, true)) == NULL)
		return EXIT_FAILURE_RUNTIME;
	found = account_load(c, cfg->directory_url, &acct, &err);
	if (found < 0) {
		log_error("%s", err.msg);
		rc = EXIT_FAILURE_RUNTIME;
		goto out;
	}
	if (strcmp(sub, "show") == 0) {
		if (found == 0) {
			log_error("account show: no account for %s: run 'certfleet account register'", cfg->directory_url);
			rc = EXIT_USAGE;
			goto out;
		}
		account_print(&acct);
		rc = EXIT_OK;
		goto out;
	}
	if (found == 1 && !force_new) {
		printf("an account for this directory exists already (use --new for another):\n");
		account_print(&acct);
		rc = EXIT_OK;
		goto out;
	}
	account_clear(&acct);
	ro.directory_url = cfg->directory_url;
	ro.contacts = contacts;
	ro.http.ca_bundle = cfg->ca_bundle;
	if (account_register(c, &ro, &acct, &err) != 0) {
		log_error("account register: %s", err.msg);
		rc = EXIT_FAILURE_RUNTIME;
		goto out;
	}
	printf("registered:\n");
	account_print(&acct);
	rc = EXIT_OK;
out:
	account_clear(&acct);
	PQfinish(c);
	return rc;
}
