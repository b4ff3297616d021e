/* reader.c: the history reader thread. Pages of get-messages run on their own read-only
 * connection: in WAL mode they see the last commit and neither wait for nor delay the
 * writer. Each page is built as the JSON array the platform sends back as the ack. */
#include "config.h"

#include "rtd/store/store_internal.h"

static int json_col(buf *b, sqlite3_stmt *s, int col)
{
    if (sqlite3_column_type(s, col) == SQLITE_NULL)
        return buf_puts(b, "null");
    const char *p = (const char *)sqlite3_column_text(s, col);
    size_t n = (size_t)sqlite3_column_bytes(s, col);
    if (!p)
        return -1; /* out of memory converting the value */
    if (buf_putc(b, '"') < 0 || buf_json_escape(b, p, n) < 0)
        return -1;
    return buf_putc(b, '"');
}

/* One {id, socketId, sender, text, platform, room, createdAt} object from a history row. */
static int json_row(buf *b, sqlite3_stmt *s)
{
    static const char *const keys[] = {",\"socketId\":", ",\"sender\":", ",\"text\":",
                                       ",\"platform\":", ",\"room\":",   ",\"createdAt\":"};
    if (buf_printf(b, "{\"id\":%lld", (long long)sqlite3_column_int64(s, 0)) < 0)
        return -1;
    for (int i = 0; i < 6; i++)
        if (buf_puts(b, keys[i]) < 0 || json_col(b, s, i + 1) < 0)
            return -1;
    return buf_putc(b, '}');
}

static void run_query(store *st, struct item *it)
{
    buf *b = &it->out;
    int64_t limit = it->num[0];
    int64_t before = it->num[1] > 0 ? it->num[1] : INT64_MAX;
    if (buf_putc(b, '[') < 0)
        goto oom;
    if (limit > 0) {
        sqlite3_stmt *s = it->s[0] ? st->q_room : st->q_null;
        if (it->s[0])
            bind_str(s, 1, it->s[0], it->len[0]);
        sqlite3_bind_int64(s, 2, before);
        sqlite3_bind_int64(s, 3, limit);
        int rc;
        bool first = true;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            if ((!first && buf_putc(b, ',') < 0) || json_row(b, s) < 0) {
                rc = SQLITE_NOMEM;
                break;
            }
            first = false;
        }
        if (rc != SQLITE_DONE) {
            it->err = dup_str(rc == SQLITE_NOMEM ? "out of memory" : sqlite3_errmsg(st->rdb));
            sqlite3_reset(s);
            sqlite3_clear_bindings(s);
            buf_free(b);
            return;
        }
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    }
    if (buf_putc(b, ']') < 0 || buf_terminate(b) < 0)
        goto oom;
    it->ok = true;
    return;
oom:
    buf_free(b);
    it->err = dup_str("out of memory");
}

void *store_reader_main(void *arg)
{
    store *st = arg;
    for (;;) {
        pthread_mutex_lock(&st->rmu);
        while (!st->rhead && !st->rstop)
            pthread_cond_wait(&st->rcond, &st->rmu);
        struct item *list = st->rhead;
        st->rhead = st->rtail = NULL;
        pthread_mutex_unlock(&st->rmu);
        if (!list)
            break; /* stopping, and every queued query has been answered */
        while (list) {
            struct item *next = list->next;
            list->next = NULL;
            run_query(st, list);
            pthread_mutex_lock(&st->rmu);
            st->rdepth--;
            pthread_mutex_unlock(&st->rmu);
            store_post_done(st, list, list);
            list = next;
        }
    }
    return NULL;
}

int store_prepare_reader(store *st, char **err)
{
    /* createdAt is converted by SQLite, which reads every time form it understands. */
#define QCOLS                                                                                      \
    "SELECT id, socket_id, sender, message_text, platform, room,"                                  \
    " strftime('%Y-%m-%dT%H:%M:%fZ', created_at) FROM messages WHERE "
    if (prepare(st->rdb, &st->q_room, QCOLS "room = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
                err) < 0 ||
        prepare(st->rdb, &st->q_null, QCOLS "room IS NULL AND id < ?2 ORDER BY id DESC LIMIT ?3",
                err) < 0)
        return -1;
#undef QCOLS
    return 0;
}
