/*
 * zoneids.h - the zone ids a provider account knows (a zone's name -> the API's id for it), from
 * its settings or learnt by looking them up, shared by the worker threads of the account.
 */
#ifndef CF_ZONEIDS_H
#define CF_ZONEIDS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

struct zone_id {
	char *name;                 /* as the provider gave it to zone_ids_add (normalized there) */
	char *id;
};

struct zone_ids {
	pthread_mutex_t lock;
	bool ready;                 /* lock is initialized */
	struct zone_id *v;
	size_t n;
};

/* An empty table; -1 when its lock cannot be made. */
int zone_ids_init(struct zone_ids *t);
/* Frees the entries and the lock; a table never initialized (all zero) is fine too. */
void zone_ids_clear(struct zone_ids *t);

/* Adds name -> id unless name (compared without case) is there; -1 when out of memory. */
int zone_ids_add(struct zone_ids *t, const char *name, const char *id);

/* A copy of name's id, or NULL when unknown (or out of memory). */
char *zone_ids_find(struct zone_ids *t, const char *name);

#endif
