/* migrate.c: applies the embedded sql/ migrations in version order (see migrate.h). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/migrate.h"

int migrate_latest_version(void)
{
    int v = 0;
    for (size_t i = 0; i < migrations_count; i++)
        if (migrations[i].version > v)
            v = migrations[i].version;
    return v;
}

static int user_version(sqlite3 *db)
{
    sqlite3_stmt *st;
    int v = -1;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void set_err(char **err, const char *what, const char *detail)
{
    if (!err)
        return;
    size_t n = strlen(what) + strlen(detail) + 3;
    *err = malloc(n);
    if (*err)
        snprintf(*err, n, "%s: %s", what, detail);
}

int migrate_apply(sqlite3 *db, char **err)
{
    if (err)
        *err = NULL;
    int have = user_version(db);
    if (have < 0) {
        set_err(err, "cannot read user_version", sqlite3_errmsg(db));
        return -1;
    }
    if (have > migrate_latest_version()) {
        set_err(err, "database schema is newer than this program", "upgrade it");
        return -1;
    }
    for (size_t i = 0; i < migrations_count; i++) {
        const struct migration *m = &migrations[i];
        if (m->version <= have)
            continue;
        char *msg = NULL;
        char pragma[64];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", m->version);
        if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK)
            goto fail;
        /* Another process (rtd and admin-fcgi both migrate) may have won the race. */
        if (user_version(db) >= m->version) {
            sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
            continue;
        }
        if (sqlite3_exec(db, m->sql, NULL, NULL, &msg) != SQLITE_OK ||
            sqlite3_exec(db, pragma, NULL, NULL, &msg) != SQLITE_OK ||
            sqlite3_exec(db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK)
            goto fail;
        continue;
    fail:
        set_err(err, m->name, msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return 0;
}
