/* migrate.h - the numbered SQL migrations built into the binary from the files in sql/. */
#ifndef CF_MIGRATE_H
#define CF_MIGRATE_H

struct migration {
	int version;
	const char *name;
	const char *sql;
};

extern const struct migration migrations[];
extern const int migrations_count;

#endif
