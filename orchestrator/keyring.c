/*
 * keyring.c - loading key-encryption keys from files or a systemd credential, and sealing and
 * opening stored private keys with them. Key bytes are never logged and are wiped when freed.
 */
#include "keyring.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base64.h"
#include "seal.h"

#define KEYRING_MAX 16
#define KEK_FILE_MAX 256 /* octets read from a KEK file: a key and white space */

struct keyring {
	struct seal_kek keks[KEYRING_MAX];
	size_t n;
	bool has_current;                  /* keks[0] is current */
};

static struct keyring *installed;

/* The 32 key octets of text (64 hex digits, or base64 / base64url of 32 octets); -1 otherwise. */
static int
parse_key(char *text, size_t len, unsigned char *key)
{
	unsigned char *raw = NULL;
	size_t rawlen = 0;
	int rc = -1;

	if (len == 2 * SEAL_KEY_LEN) {
		for (size_t i = 0; i < SEAL_KEY_LEN; i++) {
			int hi = hex_digit((unsigned char)text[2 * i]), lo = hex_digit((unsigned char)text[2 * i + 1]);
			if (hi < 0 || lo < 0)
				return -1;
			key[i] = (unsigned char)(hi << 4 | lo);
		}
		return 0;
	}
	while (len > 0 && text[len - 1] == '=')
		len--;
	text[len] = '\0';
	for (size_t i = 0; i < len; i++)
		text[i] = text[i] == '+' ? '-' : text[i] == '/' ? '_' : text[i];
	if (b64url_decode(text, &raw, &rawlen) == 0 && rawlen == SEAL_KEY_LEN) {
		memcpy(key, raw, SEAL_KEY_LEN);
		rc = 0;
	}
	if (raw != NULL)
		OPENSSL_cleanse(raw, rawlen);
	free(raw);
	return rc;
}

/* Reads the KEK of path into k, refusing a file others may read or that is not the caller's. */
static int
load_file(const char *path, struct seal_kek *k, cf_err *err)
{
	char buf[KEK_FILE_MAX + 1];
	unsigned char key[SEAL_KEY_LEN];
	struct stat st;
	ssize_t n = 0, r;
	size_t len, start = 0;
	int fd, rc = -1;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		cf_errf(err, "key-encryption key file %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		cf_errf(err, "key-encryption key file %s: not a regular file", path);
		goto out;
	}
	if ((st.st_mode & 077) != 0) {
		cf_errf(err, "key-encryption key file %s: mode %04o lets others read it: chmod 600 it",
		    path, (unsigned)(st.st_mode & 07777));
		goto out;
	}
	if (st.st_uid != geteuid()) {
		cf_errf(err, "key-encryption key file %s: owned by uid %u, not by this user (%u)", path,
		    (unsigned)st.st_uid, (unsigned)geteuid());
		goto out;
	}
	while ((size_t)n < KEK_FILE_MAX && (r = read(fd, buf + n, KEK_FILE_MAX - (size_t)n)) > 0)
		n += r;
	len = (size_t)n;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ' || buf[len - 1] == '\t'))
		len--;
	while (start < len && (buf[start] == ' ' || buf[start] == '\t'))
		start++;
	buf[len] = '\0';
	if (n >= KEK_FILE_MAX || parse_key(buf + start, len - start, key) != 0) {
		cf_errf(err, "key-encryption key file %s: expected 32 random octets as 64 hex digits or base64 "
		    "(make one with 'certfleet keys generate-kek FILE')", path);
		goto out;
	}
	if (seal_kek_set(k, key, sizeof(key), err) != 0)
		goto out;
	rc = 0;
out:
	OPENSSL_cleanse(buf, sizeof(buf));
	OPENSSL_cleanse(key, sizeof(key));
	close(fd);
	return rc;
}

/* Adds the KEK of path to kr (a KEK listed twice is kept once). */
static int
add_file(struct keyring *kr, const char *path, cf_err *err)
{
	struct seal_kek k;

	if (kr->n == KEYRING_MAX) {
		cf_errf(err, "key-encryption key file %s: more than %d keys", path, KEYRING_MAX);
		return -1;
	}
	if (load_file(path, &k, err) != 0)
		return -1;
	if (!keyring_knows(kr, k.id))
		kr->keks[kr->n++] = k;
	seal_kek_wipe(&k);
	return 0;
}

int
keyring_load(struct keyring **out, cf_err *err)
{
	const char *file = getenv(KEYRING_ENV_FILE), *old = getenv(KEYRING_ENV_OLD);
	const char *creds = getenv("CREDENTIALS_DIRECTORY");
	char cred_path[4096], *list = NULL, *save = NULL;
	struct keyring *kr;
	int rc = -1;

	*out = NULL;
	if ((kr = calloc(1, sizeof(*kr))) == NULL) {
		cf_errf(err, "loading key-encryption keys: out of memory");
		return -1;
	}
	if ((file == NULL || *file == '\0') && creds != NULL && *creds != '\0') {
		snprintf(cred_path, sizeof(cred_path), "%s/%s", creds, KEYRING_CREDENTIAL);
		if (access(cred_path, F_OK) == 0)
			file = cred_path;
	}
	if (file != NULL && *file != '\0') {
		if (add_file(kr, file, err) != 0)
			goto out;
		kr->has_current = true;
	}
	if (old != NULL && *old != '\0') {
		if ((list = strdup(old)) == NULL) {
			cf_errf(err, "loading key-encryption keys: out of memory");
			goto out;
		}
		for (char *p = strtok_r(list, ":", &save); p; p = strtok_r(NULL, ":", &save))
			if (add_file(kr, p, err) != 0)
				goto out;
	}
	rc = 0;
	if (kr->n > 0) {
		*out = kr;
		kr = NULL;
	}
out:
	free(list);
	keyring_free(kr);
	return rc;
}

void
keyring_free(struct keyring *kr)
{
	if (kr == NULL)
		return;
	OPENSSL_cleanse(kr, sizeof(*kr));
	free(kr);
}

const char *
keyring_current_id(const struct keyring *kr)
{
	return kr != NULL && kr->has_current ? kr->keks[0].id : NULL;
}

static const struct seal_kek *
find(const struct keyring *kr, const char *id)
{
	for (size_t i = 0; kr != NULL && i < kr->n; i++)
		if (strcmp(kr->keks[i].id, id) == 0)
			return &kr->keks[i];
	return NULL;
}

bool
keyring_knows(const struct keyring *kr, const char *id)
{
	return find(kr, id) != NULL;
}

char *
keyring_seal(const struct keyring *kr, const char *place, const char *plain, cf_err *err)
{
	if (keyring_current_id(kr) == NULL) {
		cf_errf(err, "sealing %s: no key-encryption key: set %s to a file made with "
		    "'certfleet keys generate-kek FILE'", place, KEYRING_ENV_FILE);
		return NULL;
	}
	return seal_text(&kr->keks[0], place, plain, err);
}

char *
keyring_open(const struct keyring *kr, const char *place, const char *text, cf_err *err)
{
	char id[SEAL_ID_LEN + 1];
	const struct seal_kek *k;
	char *s;

	if (!seal_is_sealed(text)) {
		if ((s = strdup(text)) == NULL)
			cf_errf(err, "opening %s: out of memory", place);
		return s;
	}
	if (seal_kek_id(text, id, err) != 0)
		return NULL;
	if ((k = find(kr, id)) == NULL) {
		cf_errf(err, "opening %s: sealed under key-encryption key %s, which is not loaded (set %s, or %s "
		    "for an older key)", place, id, KEYRING_ENV_FILE, KEYRING_ENV_OLD);
		return NULL;
	}
	return seal_open(k, place, text, err);
}

int
keyring_generate_file(const char *path, cf_err *err)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char key[SEAL_KEY_LEN];
	char text[2 * SEAL_KEY_LEN + 1];
	int fd, rc = -1;

	if (RAND_bytes(key, sizeof(key)) != 1) {
		cf_errf(err, "generating a key-encryption key: RAND_bytes failed");
		return -1;
	}
	for (size_t i = 0; i < SEAL_KEY_LEN; i++) {
		text[2 * i] = hex[key[i] >> 4];
		text[2 * i + 1] = hex[key[i] & 15];
	}
	text[2 * SEAL_KEY_LEN] = '\n';
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0) {
		cf_errf(err, "creating key-encryption key file %s: %s", path, strerror(errno));
		goto out;
	}
	if (fchmod(fd, 0600) != 0 || write(fd, text, sizeof(text)) != (ssize_t)sizeof(text) || fsync(fd) != 0) {
		cf_errf(err, "writing key-encryption key file %s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		goto out;
	}
	if (close(fd) != 0) {
		cf_errf(err, "closing key-encryption key file %s: %s", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(text, sizeof(text));
	return rc;
}

void
keyring_install(struct keyring *kr)
{
	keyring_free(installed);
	installed = kr;
}

const struct keyring *
keyring_installed(void)
{
	return installed;
}
