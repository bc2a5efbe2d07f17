/* zoneids.c - a provider account's table of zone ids, guarded by a mutex; a short list. */
#include "zoneids.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

int
zone_ids_init(struct zone_ids *t)
{
	memset(t, 0, sizeof(*t));
	if (pthread_mutex_init(&t->lock, NULL) != 0)
		return -1;
	t->ready = true;
	return 0;
}

void
zone_ids_clear(struct zone_ids *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->v[i].name);
		free(t->v[i].id);
	}
	free(t->v);
	if (t->ready)
		pthread_mutex_destroy(&t->lock);
	memset(t, 0, sizeof(*t));
}

int
zone_ids_add(struct zone_ids *t, const char *name, const char *id)
{
	struct zone_id *grown;
	char *k = NULL, *v = NULL;
	int rc = -1;

	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < t->n; i++) {
		if (strcasecmp(t->v[i].name, name) == 0) {
			rc = 0;
			goto out;
		}
	}
	if ((k = strdup(name)) == NULL || (v = strdup(id)) == NULL ||
	    (grown = realloc(t->v, (t->n + 1) * sizeof(*grown))) == NULL)
		goto out;
	t->v = grown;
	t->v[t->n].name = k;
	t->v[t->n++].id = v;
	k = v = NULL;
	rc = 0;
out:
	pthread_mutex_unlock(&t->lock);
	free(k);
	free(v);
	return rc;
}

char *
zone_ids_find(struct zone_ids *t, const char *name)
{
	char *id = NULL;

	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < t->n && id == NULL; i++)
		if (strcasecmp(t->v[i].name, name) == 0)
			id = strdup(t->v[i].id);
	pthread_mutex_unlock(&t->lock);
	return id;
}
