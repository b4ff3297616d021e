/* test_sendpool.c: the send pool's helpers run each job of a batch exactly once, report
 * writev's result and errno per job, and never touch a batch after sendpool_run returned,
 * over thousands of batches in a row (the claim counter's batch number). Real pipes. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rtd/net/sendpool.h"

#define NPIPES 64

struct pipes {
    int r[NPIPES], w[NPIPES];
};

static void open_pipes(struct pipes *p, int n)
{
    for (int i = 0; i < n; i++) {
        int fd[2];
        assert_int_equal(pipe2(fd, O_NONBLOCK | O_CLOEXEC), 0);
        p->r[i] = fd[0];
        p->w[i] = fd[1];
    }
}

static void close_pipes(struct pipes *p, int n)
{
    for (int i = 0; i < n; i++) {
        close(p->r[i]);
        close(p->w[i]);
    }
}

/* Every job of every batch runs once: each pipe holds exactly the bytes written to it, in
 * batch order; a batch's buffers are rewritten right after it returns, so a helper still
 * writing from an old batch would show up as a wrong byte. */
static void test_every_job_once(void **state)
{
    (void)state;
    sendpool *sp = sendpool_new(3);
    assert_non_null(sp);
    static struct pipes p;
    open_pipes(&p, NPIPES);
    static struct send_job jobs[NPIPES];
    static struct iovec iov[NPIPES][2];
    static unsigned char data[NPIPES][2][8];
    for (int batch = 0; batch < 3000; batch++) {
        int n = 1 + batch % NPIPES;
        for (int i = 0; i < n; i++) {
            memset(data[i][0], 'a' + batch % 26, sizeof data[i][0]);
            memset(data[i][1], (unsigned char)i, sizeof data[i][1]);
            iov[i][0] = (struct iovec){data[i][0], 3};
            iov[i][1] = (struct iovec){data[i][1], 2};
            jobs[i] = (struct send_job){.fd = p.w[i], .iovcnt = 2, .iov = iov[i], .total = 5,
                                        .result = -2};
        }
        sendpool_run(sp, jobs, (size_t)n);
        for (int i = 0; i < n; i++) {
            assert_int_equal(jobs[i].result, 5);
            assert_int_equal(jobs[i].err, 0);
            unsigned char got[16];
            assert_int_equal(read(p.r[i], got, sizeof got), 5);
            assert_int_equal(got[0], 'a' + batch % 26);
            assert_int_equal(got[2], 'a' + batch % 26);
            assert_int_equal(got[3], (unsigned char)i);
            assert_int_equal(got[4], (unsigned char)i);
            /* and nothing more: the job ran once */
            assert_int_equal(read(p.r[i], got, sizeof got), -1);
            assert_int_equal(errno, EAGAIN);
        }
        /* scribble over the finished batch */
        memset(data, 0xEE, sizeof data);
        memset(jobs, 0, sizeof jobs);
    }
    close_pipes(&p, NPIPES);
    sendpool_free(sp);
}

/* Per-job results: a full pipe (EAGAIN), a partial write, a closed descriptor (EBADF), and
 * a reader gone (EPIPE; SIGPIPE is ignored as rtd does) side by side with good jobs. */
static void test_results_and_errors(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    sendpool *sp = sendpool_new(1);
    assert_non_null(sp);
    static struct pipes p;
    open_pipes(&p, 5);
    int cap = fcntl(p.w[1], F_GETPIPE_SZ);
    assert_true(cap > 0);
    static unsigned char big[1 << 20];
    memset(big, 'z', sizeof big);
    /* pipe 0: full already */
    while (write(p.w[0], big, sizeof big) > 0) {
    }
    close(p.r[3]); /* pipe 3: nobody reads */
    int badfd = dup(p.w[4]);
    close(badfd);
    struct iovec one = {big, 100};
    struct iovec many = {big, (size_t)cap * 2};
    struct send_job jobs[5] = {
        {.fd = p.w[0], .iovcnt = 1, .iov = &one, .total = 100},
        {.fd = p.w[1], .iovcnt = 1, .iov = &many, .total = (size_t)cap * 2},
        {.fd = p.w[2], .iovcnt = 1, .iov = &one, .total = 100},
        {.fd = p.w[3], .iovcnt = 1, .iov = &one, .total = 100},
        {.fd = badfd, .iovcnt = 1, .iov = &one, .total = 100},
    };
    sendpool_run(sp, jobs, 5);
    assert_int_equal(jobs[0].result, -1);
    assert_int_equal(jobs[0].err, EAGAIN);
    assert_int_equal(jobs[1].result, cap); /* partial: what the pipe holds */
    assert_int_equal(jobs[1].err, 0);
    assert_int_equal(jobs[2].result, 100);
    assert_int_equal(jobs[3].result, -1);
    assert_int_equal(jobs[3].err, EPIPE);
    assert_int_equal(jobs[4].result, -1);
    assert_int_equal(jobs[4].err, EBADF);
    p.r[3] = open("/dev/null", O_RDONLY); /* close_pipes closes it again */
    close_pipes(&p, 5);
    sendpool_free(sp);
}

/* An empty batch returns at once; a pool that never ran a batch stops cleanly, and
 * sendpool_free(NULL) is a no-op; zero helpers means one. */
static void test_edges(void **state)
{
    (void)state;
    sendpool *sp = sendpool_new(2);
    assert_non_null(sp);
    sendpool_run(sp, NULL, 0);
    sendpool_free(sp);
    sendpool_free(NULL);
    sp = sendpool_new(0);
    assert_non_null(sp);
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    struct iovec v = {"x", 1};
    struct send_job j = {.fd = fd[1], .iovcnt = 1, .iov = &v, .total = 1};
    sendpool_run(sp, &j, 1);
    assert_int_equal(j.result, 1);
    close(fd[0]);
    close(fd[1]);
    sendpool_free(sp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_job_once),
        cmocka_unit_test(test_results_and_errors),
        cmocka_unit_test(test_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
