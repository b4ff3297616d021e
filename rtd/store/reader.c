/* reader.c: the history reader thread. Pages of get-messages run on the backend's own read
 * connection (SQLite's read-only one sees the last commit and neither waits for nor delays
 * the writer). The backend builds each page as the JSON array the platform sends back. */
#include "config.h"

#include "rtd/store/store_internal.h"

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
            st->be->query(st, list);
            pthread_mutex_lock(&st->rmu);
            st->rdepth--;
            pthread_mutex_unlock(&st->rmu);
            store_post_done(st, list, list);
            list = next;
        }
    }
    return NULL;
}
