/* test_keyring.c - key-encryption key files: refused ones first (mode, content), then hex, base64, old keys. */
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "keyring.h"
#include "seal.h"

static char dir[] = "/tmp/test_keyring.XXXXXX";

/* Writes text to dir/name with mode; returns the path (one of 8 static buffers, reused in turn). */
static const char *
put(const char *name, const char *text, mode_t mode)
{
	static char path[8][256];
	static int next;
	char *p = path[next++ % 8];
	int fd;

	snprintf(p, 256, "%s/%s", dir, name);
	unlink(p);
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		abort();
	close(fd);
	chmod(p, mode);
	return p;
}

static void
use(const char *file, const char *old)
{
	unsetenv("CREDENTIALS_DIRECTORY");
	if (file)
		setenv(KEYRING_ENV_FILE, file, 1);
	else
		unsetenv(KEYRING_ENV_FILE);
	if (old)
		setenv(KEYRING_ENV_OLD, old, 1);
	else
		unsetenv(KEYRING_ENV_OLD);
}

static const char hex1[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";
/* the same 32 octets in base64 */
static const char b64_1[] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n";

static void
test_refused(void)
{
	struct keyring *kr = NULL;
	cf_err err;
	const char *p;

	use(put("open", hex1, 0644), NULL);
	CHECK(keyring_load(&kr, &err) == -1 && kr == NULL);
	CHECK(check_says(err.msg, "mode 0644"));
	p = put("short", "0001020304\n", 0600);
	use(p, NULL);
	CHECK(keyring_load(&kr, &err) == -1);
	CHECK(check_says(err.msg, p) && check_says(err.msg, "expected 32 random octets"));
	use(put("nothex", "zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n", 0600), NULL);
	CHECK(keyring_load(&kr, &err) == -1);
	use("/nonexistent/kek", NULL);
	CHECK(keyring_load(&kr, &err) == -1);
	CHECK(check_says(err.msg, "/nonexistent/kek"));
	use(put("good", hex1, 0600), put("old-open", hex1, 0640));
	CHECK(keyring_load(&kr, &err) == -1);
	CHECK(check_says(err.msg, "old-open: mode 0640"));
}

static void
test_none(void)
{
	struct keyring *kr = (struct keyring *)1;
	cf_err err;
	char *s;

	use(NULL, NULL);
	CHECK(keyring_load(&kr, &err) == 0 && kr == NULL);
	CHECK(keyring_current_id(NULL) == NULL);
	CHECK(keyring_seal(NULL, SEAL_AT_RESULTS, "x", &err) == NULL);
	CHECK(check_says(err.msg, KEYRING_ENV_FILE));
	s = keyring_open(NULL, SEAL_AT_RESULTS, "-----BEGIN PRIVATE KEY-----\n", &err);
	CHECK_STR(s, "-----BEGIN PRIVATE KEY-----\n"); /* plain rows of an older version */
	cf_secret_free(s);
}

static void
test_hex_and_base64_are_one_key(void)
{
	struct keyring *a = NULL, *b = NULL;
	cf_err err;
	char *s, *p;

	use(put("hex", hex1, 0600), NULL);
	CHECK(keyring_load(&a, &err) == 0 && a != NULL);
	use(put("b64", b64_1, 0400), NULL);
	CHECK(keyring_load(&b, &err) == 0 && b != NULL);
	if (a == NULL || b == NULL)
		goto out;
	CHECK_STR(keyring_current_id(a), keyring_current_id(b));
	s = keyring_seal(a, SEAL_AT_ORDERS, "secret", &err);
	p = s ? keyring_open(b, SEAL_AT_ORDERS, s, &err) : NULL;
	CHECK_STR(p, "secret");
	cf_secret_free(p);
	free(s);
out:
	keyring_free(a);
	keyring_free(b);
}

static void
test_old_keys_open(void)
{
	struct keyring *old = NULL, *cur = NULL, *both = NULL;
	const char *f1 = put("k1", hex1, 0600);
	const char *f2 = put("k2", "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100", 0600);
	cf_err err;
	char *s = NULL, *p;

	use(f1, NULL);
	CHECK(keyring_load(&old, &err) == 0);
	use(f2, NULL);
	CHECK(keyring_load(&cur, &err) == 0);
	use(f2, f1);
	CHECK(keyring_load(&both, &err) == 0);
	if (old == NULL || cur == NULL || both == NULL)
		goto out;
	s = keyring_seal(old, SEAL_AT_ACCOUNTS, "account key", &err);
	CHECK(s != NULL && keyring_open(cur, SEAL_AT_ACCOUNTS, s, &err) == NULL);
	CHECK(check_says(err.msg, keyring_current_id(old)) && check_says(err.msg, "not loaded"));
	p = keyring_open(both, SEAL_AT_ACCOUNTS, s, &err);
	CHECK_STR(p, "account key");
	cf_secret_free(p);
	CHECK_STR(keyring_current_id(both), keyring_current_id(cur));
	CHECK(keyring_knows(both, keyring_current_id(old)));
out:
	free(s);
	keyring_free(old);
	keyring_free(cur);
	keyring_free(both);
}

static void
test_generate(void)
{
	char path[256];
	struct stat st;
	struct keyring *kr = NULL;
	cf_err err;

	snprintf(path, sizeof(path), "%s/generated", dir);
	CHECK(keyring_generate_file(path, &err) == 0);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600 && st.st_size == 65);
	CHECK(keyring_generate_file(path, &err) == -1); /* never over an existing file */
	CHECK(check_says(err.msg, path));
	use(path, NULL);
	CHECK(keyring_load(&kr, &err) == 0 && keyring_current_id(kr) != NULL);
	keyring_free(kr);
}

int
main(void)
{
	if (mkdtemp(dir) == NULL)
		return 1;
	RUN(test_refused);
	RUN(test_none);
	RUN(test_hex_and_base64_are_one_key);
	RUN(test_old_keys_open);
	RUN(test_generate);
	char rm[300];
	snprintf(rm, sizeof(rm), "rm -rf '%s'", dir);
	if (system(rm) != 0)
		return 1;
	return CHECK_DONE();
}
