/* migrate_pg.h: the PostgreSQL schema's migrations (sql/pg/NNN_name.sql, embedded as
 * pg_migrations[]), shared by rtd and admin-fcgi. The table schema_migrations records each
 * version applied. */
#ifndef COMMON_MIGRATE_PG_H
#define COMMON_MIGRATE_PG_H

#include <stddef.h>

#include <libpq-fe.h>

#include "common/migrate.h"

extern const struct migration pg_migrations[];
extern const size_t pg_migrations_count;

/* Applies every migration newer than the newest in schema_migrations, each in its own
 * transaction, all under a session advisory lock: several nodes starting at once apply each
 * migration once and wait for each other. A database newer than this build is refused.
 * On error returns -1 and a malloc'ed *err (when err is not NULL). */
int migrate_pg_apply(PGconn *c, char **err);

#endif
