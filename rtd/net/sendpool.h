/* sendpool.h: helper threads that run a batch of writev calls for the loop thread.
 *
 * Ownership: the loop thread owns the pool and every socket in a batch. During
 * sendpool_run it and the helpers only call writev on the jobs' descriptors with the jobs'
 * iovecs; nothing else is touched. The results are read by the loop thread after the call
 * returns, so everything that acts on them (advancing output queues, releasing packets,
 * closing sockets) stays on the loop thread. */
#ifndef RTD_SENDPOOL_H
#define RTD_SENDPOOL_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

typedef struct sendpool sendpool;

struct send_job {
    int fd;
    int iovcnt;
    const struct iovec *iov;
    size_t total;   /* the iovecs' length, for the caller's bookkeeping */
    ssize_t result; /* out: writev's return value */
    int err;        /* out: its errno when result < 0 */
};

/* Starts `helpers` threads (at least 1). Returns NULL on failure. */
sendpool *sendpool_new(unsigned helpers);
/* Runs every job once: the helpers and the calling thread take jobs in turn until none is
 * left; returns when all have finished. */
void sendpool_run(sendpool *p, struct send_job *jobs, size_t n);
/* Stops and joins the helpers. NULL is ignored. */
void sendpool_free(sendpool *p);

#endif
