/* migrate_pg.c: applies the embedded sql/pg/ migrations in version order (migrate_pg.h). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/migrate_pg.h"

/* Any constant both programs share: the key of the advisory lock around migrations. */
#define MIGRATE_LOCK_KEY "7262001200"

static void set_err(char **err, const char *what, const char *detail)
{
    if (!err || *err)
        return;
    size_t n = strlen(what) + strlen(detail) + 3;
    *err = malloc(n);
    if (*err) {
        snprintf(*err, n, "%s: %s", what, detail);
        size_t l = strlen(*err);
        while (l > 0 && ((*err)[l - 1] == '\n' || (*err)[l - 1] == ' '))
            (*err)[--l] = '\0';
    }
}

/* Runs sql (one or more statements); 0 when it succeeded. */
static int run(PGconn *c, const char *sql, const char *what, char **err)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType s = PQresultStatus(r);
    int ok = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
    if (!ok)
        set_err(err, what, PQerrorMessage(c));
    PQclear(r);
    return ok ? 0 : -1;
}

static int have_version(PGconn *c, char **err)
{
    PGresult *r = PQexec(c, "SELECT coalesce(max(version), 0) FROM schema_migrations");
    int v = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        v = atoi(PQgetvalue(r, 0, 0));
    else
        set_err(err, "cannot read schema_migrations", PQerrorMessage(c));
    PQclear(r);
    return v;
}

int migrate_pg_apply(PGconn *c, char **err)
{
    if (err)
        *err = NULL;
    int latest = 0;
    for (size_t i = 0; i < pg_migrations_count; i++)
        if (pg_migrations[i].version > latest)
            latest = pg_migrations[i].version;
    if (run(c, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", "cannot take the migration lock",
            err) < 0)
        return -1;
    int ret = -1;
    /* Quiet: "relation already exists, skipping" is no news. */
    if (run(c, "SET client_min_messages = warning", "cannot set client_min_messages", err) < 0 ||
        run(c,
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
            " name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
            "cannot create schema_migrations", err) < 0)
        goto out;
    int have = have_version(c, err);
    if (have < 0)
        goto out;
    if (have > latest) {
        set_err(err, "database schema is newer than this program", "upgrade it");
        goto out;
    }
    for (size_t i = 0; i < pg_migrations_count; i++) {
        const struct migration *m = &pg_migrations[i];
        if (m->version <= have)
            continue;
        char rec[256];
        snprintf(rec, sizeof rec, "INSERT INTO schema_migrations(version, name) VALUES(%d, '%s')",
                 m->version, m->name);
        if (run(c, "BEGIN", m->name, err) < 0)
            goto out;
        if (run(c, m->sql, m->name, err) < 0 || run(c, rec, m->name, err) < 0 ||
            run(c, "COMMIT", m->name, err) < 0) {
            PQclear(PQexec(c, "ROLLBACK"));
            goto out;
        }
    }
    ret = 0;
out:
    PQclear(PQexec(c, "RESET client_min_messages"));
    PQclear(PQexec(c, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")"));
    return ret;
}
