/* sendpool.c: helper threads that share the loop thread's writev calls (see sendpool.h).
 *
 * On loopback and on fast networks a socket write costs microseconds of kernel time
 * (the TCP stack, and on loopback the receiver's side too), so a broadcast to a few hundred
 * sockets keeps one thread busy for a millisecond. The loop thread hands such a batch to
 * this pool: the caller and the helpers claim jobs one at a time from a shared counter, so
 * a helper that is slow to wake or is preempted costs at most the one job it holds, and the
 * caller never waits for a helper that has not started.
 *
 * The claim counter holds the batch number in its high 32 bits and the next job index in
 * its low 32 bits; a helper claims with compare-and-swap only while the batch number is the
 * one it woke for. A helper that wakes after its batch ended can therefore claim nothing
 * of the next one, and the caller returns only when every claimed job has finished. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "rtd/net/sendpool.h"

struct sendpool {
    pthread_t *threads;
    unsigned nthreads;
    pthread_mutex_t mu;
    pthread_cond_t go;       /* a new batch, or stop */
    pthread_cond_t done;     /* the last job of the batch finished */
    uint32_t gen;            /* batch number, under mu */
    bool stop;               /* under mu */
    struct send_job *jobs;   /* the current batch, under mu */
    uint32_t njobs;
    _Atomic uint64_t claim;  /* gen << 32 | next index */
    _Atomic uint32_t finished;
};

static void run_job(struct send_job *j)
{
    ssize_t r;
    do
        r = writev(j->fd, j->iov, j->iovcnt);
    while (r < 0 && errno == EINTR);
    j->result = r;
    j->err = r < 0 ? errno : 0;
}

/* Claims and runs jobs of batch `gen` until none is left. Returns how many it ran. */
static uint32_t work(sendpool *p, uint32_t gen, struct send_job *jobs, uint32_t n)
{
    uint32_t ran = 0;
    uint64_t v = atomic_load_explicit(&p->claim, memory_order_acquire);
    for (;;) {
        if ((uint32_t)(v >> 32) != gen || (uint32_t)v >= n)
            return ran;
        if (!atomic_compare_exchange_weak_explicit(&p->claim, &v, v + 1, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue;
        run_job(&jobs[(uint32_t)v]);
        ran++;
        if (atomic_fetch_add_explicit(&p->finished, 1, memory_order_acq_rel) + 1 == n) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
        v = atomic_load_explicit(&p->claim, memory_order_acquire);
    }
}

static void *helper_main(void *arg)
{
    sendpool *p = arg;
    uint32_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->gen == seen)
            pthread_cond_wait(&p->go, &p->mu);
        if (p->stop)
            break;
        seen = p->gen;
        struct send_job *jobs = p->jobs;
        uint32_t n = p->njobs;
        pthread_mutex_unlock(&p->mu);
        work(p, seen, jobs, n);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

sendpool *sendpool_new(unsigned helpers)
{
    if (helpers == 0)
        helpers = 1;
    sendpool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->threads = calloc(helpers, sizeof *p->threads);
    if (!p->threads) {
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done, NULL);
    for (unsigned i = 0; i < helpers; i++) {
        if (pthread_create(&p->threads[i], NULL, helper_main, p) != 0) {
            sendpool_free(p);
            return NULL;
        }
        p->nthreads++;
    }
    return p;
}

void sendpool_run(sendpool *p, struct send_job *jobs, size_t n)
{
    if (n == 0)
        return;
    pthread_mutex_lock(&p->mu);
    uint32_t gen = ++p->gen;
    p->jobs = jobs;
    p->njobs = (uint32_t)n;
    atomic_store_explicit(&p->finished, 0, memory_order_relaxed);
    atomic_store_explicit(&p->claim, (uint64_t)gen << 32, memory_order_release);
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);

    work(p, gen, jobs, (uint32_t)n);

    if (atomic_load_explicit(&p->finished, memory_order_acquire) < n) {
        pthread_mutex_lock(&p->mu);
        while (atomic_load_explicit(&p->finished, memory_order_acquire) < n)
            pthread_cond_wait(&p->done, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
}

void sendpool_free(sendpool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->go);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    free(p->threads);
    free(p);
}
