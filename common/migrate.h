/* migrate.h: schema migrations shared by rtd and admin-fcgi.
 *
 * The schema lives in sql/NNN_name.sql; the build embeds those files (scripts/embed-sql.sh)
 * so each program carries it. PRAGMA user_version records the newest version applied. */
#ifndef COMMON_MIGRATE_H
#define COMMON_MIGRATE_H

#include <stddef.h>
#include <sqlite3.h>

struct migration {
    int version;
    const char *name;
    const char *sql;
};

extern const struct migration migrations[];
extern const size_t migrations_count;

/* Newest schema version this build knows. */
int migrate_latest_version(void);

/* Apply every migration newer than the database's user_version, each in its own IMMEDIATE
 * transaction. A database newer than this build is refused. On error returns -1 and, when
 * err is not NULL, stores a malloc'ed message the caller frees. */
int migrate_apply(sqlite3 *db, char **err);

#endif
