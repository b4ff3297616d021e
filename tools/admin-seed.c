/* admin-seed.c: fills a platform database the way rtd would, for tests and benchmarks
 * (tools/dbfill.h does the writing). Not installed.
 *
 *   admin-seed --db F fill [--connections N] [--messages N] [--days D] [--active N]
 *   admin-seed --db F connect SOCKET [PLATFORM [USER]]
 *   admin-seed --db F message SOCKET SENDER PLATFORM TEXT [ROOM]
 *   admin-seed --db F disconnect SOCKET
 *   admin-seed --db F status running|stopped|stale
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "tools/dbfill.h"

static int64_t now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void progress(long done, long total)
{
    fprintf(stderr, "admin-seed: %ld / %ld messages\n", done, total);
}

static int usage(void)
{
    fprintf(stderr, "usage: admin-seed --db F fill [--connections N] [--messages N] [--days D] "
                    "[--active N]\n"
                    "       admin-seed --db F connect SOCKET [PLATFORM [USER]]\n"
                    "       admin-seed --db F message SOCKET SENDER PLATFORM TEXT [ROOM]\n"
                    "       admin-seed --db F disconnect SOCKET\n"
                    "       admin-seed --db F status running|stopped|stale\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 4 || strcmp(argv[1], "--db") != 0)
        return usage();
    const char *path = argv[2], *cmd = argv[3];
    char **args = argv + 4;
    int nargs = argc - 4;
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK) {
        fprintf(stderr, "admin-seed: %s: %s\n", path, sqlite3_errmsg(db));
        return 1;
    }
    struct dbfill *f = NULL;
    char *err = NULL;
    int rc = 0;
    if (dbfill_open(db, &f, &err) < 0) {
        rc = -1;
    } else if (strcmp(cmd, "fill") == 0) {
        long conns = 20000, msgs = 100000, days = 45, active = 25;
        for (int i = 0; i + 1 < nargs; i += 2) {
            long v = strtol(args[i + 1], NULL, 10);
            if (strcmp(args[i], "--connections") == 0)
                conns = v;
            else if (strcmp(args[i], "--messages") == 0)
                msgs = v;
            else if (strcmp(args[i], "--days") == 0)
                days = v;
            else if (strcmp(args[i], "--active") == 0)
                active = v;
            else
                return usage();
        }
        rc = dbfill_generate(f, conns, msgs, (int)days, active, now_ms(), 42, progress, &err);
    } else if (strcmp(cmd, "connect") == 0 && nargs >= 1) {
        rc = dbfill_connect(f, args[0], NULL, nargs > 2 ? args[2] : NULL, "websocket", "127.0.0.1",
                            "admin-seed", now_ms(), &err);
        if (rc == 0 && nargs > 1)
            rc = dbfill_identify(f, args[0], args[1], nargs > 2 ? args[2] : NULL, "1.0", &err);
    } else if (strcmp(cmd, "message") == 0 && nargs >= 4) {
        int64_t id = 0;
        rc = dbfill_message(f, args[0], args[1], args[3], args[2], nargs > 4 ? args[4] : NULL,
                            now_ms(), &id, &err);
        if (rc == 0)
            printf("%lld\n", (long long)id);
    } else if (strcmp(cmd, "disconnect") == 0 && nargs == 1) {
        rc = dbfill_disconnect(f, args[0], now_ms(), &err);
    } else if (strcmp(cmd, "status") == 0 && nargs == 1) {
        int64_t now = now_ms();
        bool stopped = strcmp(args[0], "stopped") == 0;
        bool stale = strcmp(args[0], "stale") == 0;
        rc = dbfill_status(f, (long)getpid(), "0.1.0", now - 3600000, stale ? now - 120000 : now,
                           stopped ? now : 0, 3, 10, 30, &err);
    } else {
        dbfill_close(f);
        sqlite3_close(db);
        return usage();
    }
    if (rc < 0)
        fprintf(stderr, "admin-seed: %s\n", err ? err : "failed");
    free(err);
    dbfill_close(f);
    sqlite3_close(db);
    return rc < 0 ? 1 : 0;
}
