/* test_export.c - export's folder names and atomic writes, deploy's hook: refusals first, then the work. */
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "cf.h"
#include "deploy.h"
#include "export.h"

static char dir[] = "/tmp/test_export.XXXXXX";

static const char *
path(const char *rel)
{
	static char p[4][512];
	static int next;
	char *s = p[next++ % 4];

	snprintf(s, 512, "%s/%s", dir, rel);
	return s;
}

static void
put(const char *rel, const char *text, mode_t mode)
{
	int fd = open(path(rel), O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		abort();
	close(fd);
	chmod(path(rel), mode);
}

/* The content of dir/rel, malloc'd (NULL when missing). */
static char *
slurp(const char *rel)
{
	char *buf = calloc(1, 65536);
	int fd = open(path(rel), O_RDONLY);
	ssize_t n;

	if (fd < 0) {
		free(buf);
		return NULL;
	}
	n = read(fd, buf, 65535);
	close(fd);
	if (n < 0)
		buf[0] = '\0';
	return buf;
}

static mode_t
mode_of(const char *rel)
{
	struct stat st;

	return stat(path(rel), &st) == 0 ? st.st_mode & 07777 : 0;
}

static void
test_folder_name_refused(void)
{
	char out[EXPORT_FOLDER_MAX], longname[400];
	cf_err err;

	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	CHECK(export_folder_name("", 0, out, &err) == -1);
	CHECK(export_folder_name(".", 0, out, &err) == -1);
	CHECK(export_folder_name("..", 0, out, &err) == -1);
	CHECK(export_folder_name("*.", 0, out, &err) == -1);
	CHECK(export_folder_name("*..", 0, out, &err) == -1);
	CHECK(export_folder_name("a/b.example", 0, out, &err) == -1);
	CHECK(check_says(err.msg, "a/b.example"));
	CHECK(export_folder_name(longname, 0, out, &err) == -1);
}

static void
test_folder_name(void)
{
	char out[EXPORT_FOLDER_MAX];
	cf_err err;

	CHECK(export_folder_name("www.example.com", 0, out, &err) == 0);
	CHECK_STR(out, "www.example.com");
	CHECK(export_folder_name("*.apps.example.com", 0, out, &err) == 0);
	CHECK_STR(out, "_wildcard.apps.example.com");
	CHECK(export_folder_name("*.apps.example.com", 12, out, &err) == 0);
	CHECK_STR(out, "_wildcard.apps.example.com_12");
}

static struct export_cert
cert(const char *folder, const char *leaf, const char *key)
{
	return (struct export_cert){ .certificate_id = 7, .result_id = 9, .names = (char *)"a.example b.example",
		.folder = (char *)folder, .leaf = (char *)leaf, .chain = (char *)"CHAIN\n", .key_sealed = (char *)key,
		.serial = (char *)"0a1b", .not_after = (char *)"2027-01-01T00:00:00Z" };
}

static void
test_export_refuses_links(void)
{
	struct export_cert t = cert("linked", "LEAF\n", "KEY\n");
	cf_err err;
	bool changed;
	int fd;

	CHECK(mkdir(path("target"), 0755) == 0);
	CHECK(symlink(path("target"), path("out-link")) == 0);
	CHECK(export_dir_open(path("out-link"), &fd, &err) == 1);
	CHECK(check_says(err.msg, "out-link: a symbolic link"));
	CHECK(mkdir(path("out"), 0755) == 0);
	CHECK(symlink(path("target"), path("out/linked")) == 0);
	CHECK(export_dir_open(path("out"), &fd, &err) == 0);
	CHECK(export_check(fd, path("out"), &t, 1, &err) == 1);
	CHECK(check_says(err.msg, "out/linked: a symbolic link"));
	CHECK(export_write(fd, path("out"), &t, &changed, &err) == 1);
	CHECK(slurp("target/cert.pem") == NULL);
	close(fd);
}

static void
test_export_write(void)
{
	struct export_cert t = cert("_wildcard.a.example", "LEAF", "KEY\n");
	struct stat st1, st2;
	char *s;
	cf_err err;
	bool changed;
	mode_t old = umask(077);
	int fd;

	CHECK(export_dir_open(path("fresh"), &fd, &err) == 0); /* made when missing */
	CHECK(export_check(fd, path("fresh"), &t, 1, &err) == 0);
	CHECK(export_write(fd, path("fresh"), &t, &changed, &err) == 0 && changed);
	CHECK_STR((s = slurp("fresh/_wildcard.a.example/cert.pem")), "LEAF\n");
	free(s);
	CHECK_STR((s = slurp("fresh/_wildcard.a.example/fullchain.pem")), "LEAF\nCHAIN\n");
	free(s);
	CHECK_STR((s = slurp("fresh/_wildcard.a.example/haproxy.pem")), "LEAF\nCHAIN\nKEY\n");
	free(s);
	CHECK(mode_of("fresh/_wildcard.a.example/cert.pem") == 0644);
	CHECK(mode_of("fresh/_wildcard.a.example/key.pem") == 0600);
	CHECK(mode_of("fresh/_wildcard.a.example/haproxy.pem") == 0600);
	CHECK(stat(path("fresh/_wildcard.a.example/key.pem"), &st1) == 0);
	/* the same content again: nothing written */
	CHECK(export_write(fd, path("fresh"), &t, &changed, &err) == 0 && !changed);
	CHECK(stat(path("fresh/_wildcard.a.example/key.pem"), &st2) == 0);
	CHECK(st1.st_ino == st2.st_ino && st1.st_mtim.tv_nsec == st2.st_mtim.tv_nsec);
	/* a mode changed by hand is put right; a new leaf rewrites what holds it */
	CHECK(chmod(path("fresh/_wildcard.a.example/key.pem"), 0644) == 0);
	t.leaf = (char *)"LEAF2\n";
	CHECK(export_write(fd, path("fresh"), &t, &changed, &err) == 0 && changed);
	CHECK(mode_of("fresh/_wildcard.a.example/key.pem") == 0600);
	CHECK_STR((s = slurp("fresh/_wildcard.a.example/fullchain.pem")), "LEAF2\nCHAIN\n");
	free(s);
	CHECK(slurp("fresh/_wildcard.a.example/.cert.pem.tmp") == NULL);
	close(fd);
	umask(old);
}

static void
test_hook_refused(void)
{
	cf_err err;

	put("noexec.sh", "#!/bin/sh\nexit 0\n", 0644);
	CHECK(deploy_hook_check(path("noexec.sh"), &err) == 1);
	CHECK(check_says(err.msg, "noexec.sh: not an executable file"));
	CHECK(deploy_hook_check(path("missing.sh"), &err) == 1);
	CHECK(deploy_hook_check(dir, &err) == 1);
}

static void
test_hook_run(void)
{
	struct export_cert t = cert("x", "L", "K");
	char excerpt[DEPLOY_EXCERPT_MAX];
	int status = -1;
	int64_t t0;
	cf_err err;

	setenv("CERTFLEET_DB", "postgresql://secret@db/x", 1);
	put("hook.sh", "#!/bin/sh\necho \"$1 $CERTFLEET_SERIAL $CERTFLEET_NAME ${CERTFLEET_DB:-none}\"\nexit 3\n", 0755);
	CHECK(deploy_hook_check(path("hook.sh"), &err) == 0);
	CHECK(deploy_hook_run(path("hook.sh"), "/srv/x", &t, true, 5, &status, excerpt, &err) == 0);
	CHECK(status == 3);
	CHECK_STR(excerpt, "/srv/x 0a1b a.example none\n");
	/* output beyond the excerpt is read and dropped */
	put("loud.sh", "#!/bin/sh\nhead -c 100000 /dev/zero | tr '\\0' x\nexit 0\n", 0755);
	CHECK(deploy_hook_run(path("loud.sh"), "/srv/x", &t, true, 5, &status, excerpt, &err) == 0);
	CHECK(status == 0 && strlen(excerpt) == DEPLOY_EXCERPT_MAX - 1);
	/* a hook that outlives its timeout is killed, its group with it */
	put("slow.sh", "#!/bin/sh\necho started\nsleep 30 &\nsleep 30\n", 0755);
	t0 = cf_mono_ms();
	CHECK(deploy_hook_run(path("slow.sh"), "/srv/x", &t, true, 1, &status, excerpt, &err) == 0);
	CHECK(status == 128 + SIGTERM);
	CHECK(strstr(excerpt, "started\n[certfleet: killed after 1 s]") != NULL);
	CHECK(cf_mono_ms() - t0 < 4000);
	unsetenv("CERTFLEET_DB");
}

int
main(void)
{
	if (mkdtemp(dir) == NULL)
		return 1;
	RUN(test_folder_name_refused);
	RUN(test_folder_name);
	RUN(test_export_refuses_links);
	RUN(test_export_write);
	RUN(test_hook_refused);
	RUN(test_hook_run);
	{
		char cmd[600];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			return 1;
	}
	return CHECK_DONE();
}
