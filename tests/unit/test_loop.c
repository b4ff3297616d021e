/* test_loop.c: unit tests for the event loop of rtd/net/loop.c: timer order (deadline, then
 * FIFO), stop and restart, zero-delay re-arming without starving the loop, a heap of 10 000
 * timers with random stops and restarts, fd readiness on pipes, the sleep limits, loop_wake
 * from another thread and signals delivered through the loop. Every test arms a watchdog
 * timer so that a broken loop fails the test instead of hanging it. */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rtd/lib/util.h"
#include "rtd/net/loop.h"

/* ---- helpers -------------------------------------------------------------------------- */

static uint64_t rng_state = 0xD1B54A32D192ED03ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static bool watchdog_fired;

static void watchdog_fn(loop *l, void *ud)
{
    watchdog_fired = true;
    loop_stop(l);
}

/* A loop with a watchdog that stops it after ms. */
static loop *new_loop(loop_timer *watchdog, uint64_t ms)
{
    loop *l = loop_new(1024);
    assert_non_null(l);
    watchdog_fired = false;
    *watchdog = (loop_timer){0};
    loop_timer_start(l, watchdog, ms, watchdog_fn, NULL);
    return l;
}

static void stop_fn(loop *l, void *ud)
{
    loop_stop(l);
}

/* Runs l for about ms (a timer stops it), with the watchdog left as it is. */
static void run_for(loop *l, uint64_t ms)
{
    loop_timer t = {0};
    loop_timer_start(l, &t, ms, stop_fn, NULL);
    loop_run(l);
    loop_timer_stop(l, &t);
}

static void make_pipe(int fds[2])
{
    assert_int_equal(pipe(fds), 0);
    for (int i = 0; i < 2; i++) {
        int fl = fcntl(fds[i], F_GETFL);
        assert_int_equal(fcntl(fds[i], F_SETFL, fl | O_NONBLOCK), 0);
    }
}

/* ---- timers --------------------------------------------------------------------------- */

struct rec {
    loop_timer t;
    int id;
    uint64_t delay;
    uint64_t armed_at;
};

static int order[64];
static int norder;
static int expect_fires;

static void record_fn(loop *l, void *ud)
{
    struct rec *r = ud;
    assert_false(loop_timer_armed(&r->t));
    /* Never early, on the loop clock nor on the real one. */
    assert_true(loop_now(l) >= r->armed_at + r->delay);
    assert_true(mono_ms() >= r->armed_at + r->delay);
    assert_true(norder < 64);
    order[norder++] = r->id;
    if (norder == expect_fires)
        loop_stop(l);
}

static void arm(loop *l, struct rec *r, int id, uint64_t delay)
{
    r->id = id;
    r->delay = delay;
    r->armed_at = loop_now(l);
    loop_timer_start(l, &r->t, delay, record_fn, r);
    assert_true(loop_timer_armed(&r->t));
}

static void test_timer_deadline_order(void **state)
{
    loop_timer wd;
    loop *l = new_loop(&wd, 5000);
    static const uint64_t delays[] = {30, 10, 45, 0, 20, 5, 1, 38};
    static const int want[] = {3, 6, 5, 1, 4, 0, 7, 2};
    struct rec r[8];
    memset(r, 0, sizeof r);
    norder = 0;
    expect_fires = 8;
    for (int i = 0; i < 8; i++)
        arm(l, &r[i], i, delays[i]);
    loop_run(l);
    assert_false(watchdog_fired);
    assert_int_equal(norder, 8);
    assert_memory_equal(order, want, sizeof want);
    loop_free(l);
}

static void test_timer_equal_deadlines_fifo(void **state)
{
    loop_timer wd;
    loop *l = new_loop(&wd, 5000);
    struct rec r[40];
    memset(r, 0, sizeof r);
    norder = 0;
    expect_fires = 40;
    /* The loop clock does not move between these calls: one deadline for all. */
    for (int i = 0; i < 40; i++)
        arm(l, &r[i], i, 15);
    loop_run(l);
    assert_false(watchdog_fired);
    assert_int_equal(norder, 40);
    for (int i = 0; i < 40; i++)
        assert_int_equal(order[i], i);

    /* Re-arming one with the same deadline sends it to the back of its group. */
    norder = 0;
    expect_fires = 4;
    for (int i = 0; i < 4; i++)
        arm(l, &r[i], i, 5);
    arm(l, &r[1], 1, 5);
    arm(l, &r[0], 0, 5);
    loop_run(l);
    assert_false(watchdog_fired);
    assert_memory_equal(order, ((const int[]){2, 3, 1, 0}), 4 * sizeof(int));
    loop_free(l);
}

static struct rec *victim;

static void stop_victim_fn(loop *l, void *ud)
{
    loop_timer_stop(l, &victim->t);
    assert_false(loop_timer_armed(&victim->t));
    record_fn(l, ud);
}

static void restart_self_fn(loop *l, void *ud)
{
    struct rec *r = ud;
    record_fn(l, ud);
    if (r->id == 100)
        arm(l, r, 101, 10); /* fires once more, as 101 */
}

static void test_timer_stop_restart(void **state)
{
    loop_timer wd;
    loop *l = new_loop(&wd, 5000);
    struct rec r[6];
    memset(r, 0, sizeof r);

    /* Stopping an unarmed timer does nothing; stopping twice is fine. */
    loop_timer_stop(l, &r[0].t);
    assert_false(loop_timer_armed(&r[0].t));

    /* A stopped timer never fires; the others keep their order. */
    norder = 0;
    expect_fires = 3;
    arm(l, &r[0], 0, 5);
    arm(l, &r[1], 1, 10);
    arm(l, &r[2], 2, 15);
    arm(l, &r[3], 3, 20);
    loop_timer_stop(l, &r[1].t);
    loop_timer_stop(l, &r[1].t);
    assert_false(loop_timer_armed(&r[1].t));
    loop_run(l);
    run_for(l, 30); /* r[1] stays silent afterwards too */
    assert_false(watchdog_fired);
    assert_int_equal(norder, 3);
    assert_memory_equal(order, ((const int[]){0, 2, 3}), 3 * sizeof(int));
    for (int i = 0; i < 4; i++)
        assert_false(loop_timer_armed(&r[i].t));

    /* Re-arming an armed timer moves its deadline instead of adding a second one. */
    norder = 0;
    expect_fires = 2;
    arm(l, &r[0], 0, 5);
    arm(l, &r[1], 1, 15);
    arm(l, &r[0], 0, 25);
    loop_run(l);
    run_for(l, 20);
    assert_int_equal(norder, 2);
    assert_memory_equal(order, ((const int[]){1, 0}), 2 * sizeof(int));

    /* A timer stopped by the callback of another one due in the same turn does not run. */
    norder = 0;
    expect_fires = 2;
    victim = &r[2];
    r[1].id = 1;
    r[1].delay = 5;
    r[1].armed_at = loop_now(l);
    loop_timer_start(l, &r[1].t, 5, stop_victim_fn, &r[1]);
    arm(l, &r[2], 2, 5);
    arm(l, &r[3], 3, 5);
    loop_run(l);
    run_for(l, 20);
    assert_int_equal(norder, 2);
    assert_memory_equal(order, ((const int[]){1, 3}), 2 * sizeof(int));

    /* A timer re-armed from its own callback fires again. */
    norder = 0;
    expect_fires = 2;
    r[4].id = 100;
    r[4].delay = 5;
    r[4].armed_at = loop_now(l);
    loop_timer_start(l, &r[4].t, 5, restart_self_fn, &r[4]);
    loop_run(l);
    assert_false(watchdog_fired);
    assert_int_equal(norder, 2);
    assert_memory_equal(order, ((const int[]){100, 101}), 2 * sizeof(int));
    loop_free(l);
}

/* Zero-delay re-arming: each run lands on the next turn, and fds keep being served. */
static int turn;
static int zturns[200];
static int nz;
static int fd_turn;
static loop_timer other0;
static int other0_turn;

static void count_turn(loop *l, void *ud)
{
    turn++;
}

static void other0_fn(loop *l, void *ud)
{
    other0_turn = turn;
}

static void zero_fn(loop *l, void *ud)
{
    loop_timer *t = ud;
    zturns[nz++] = turn;
    if (nz == 1)
        loop_timer_start(l, &other0, 0, other0_fn, NULL);
    if (nz < 200)
        loop_timer_start(l, t, 0, zero_fn, t);
    else
        loop_stop(l);
}

static void pipe_read_fn(loop *l, int fd, void *ud, int mask)
{
    char c;
    while (read(fd, &c, 1) == 1) {
    }
    if (!fd_turn)
        fd_turn = turn;
}

static void write_pipe_fn(loop *l, void *ud)
{
    int fd = *(int *)ud;
    assert_int_equal(write(fd, "x", 1), 1);
}

static void test_timer_zero_delay_no_starvation(void **state)
{
    loop_timer wd;
    loop *l = new_loop(&wd, 10000);
    int p[2];
    make_pipe(p);
    assert_int_equal(loop_add_fd(l, p[0], LOOP_READ, pipe_read_fn, NULL), 0);
    turn = nz = fd_turn = other0_turn = 0;
    other0 = (loop_timer){0};
    loop_set_before_sleep(l, count_turn, NULL);
    loop_timer t = {0};
    loop_timer_start(l, &t, 0, zero_fn, &t);
    /* Data arrives on the pipe a few turns in (from a timer scheduled in the same way). */
    loop_timer w = {0};
    loop_timer_start(l, &w, 0, write_pipe_fn, &p[1]);
    loop_run(l);
    assert_false(watchdog_fired);
    assert_int_equal(nz, 200);
    assert_true(zturns[0] >= 1);
    for (int i = 1; i < 200; i++)
        assert_int_equal(zturns[i], zturns[i - 1] + 1);
    /* The zero-delay timer started in the first run ran on the turn after it. */
    assert_int_equal(other0_turn, zturns[0] + 1);
    /* The fd was served while the timer kept re-arming itself. */
    assert_true(fd_turn > 0);
    assert_true(fd_turn <= zturns[0] + 2);
    loop_del_fd(l, p[0]);
    close(p[0]);
    close(p[1]);
    loop_free(l);
}

/* 10 000 timers with random delays, a third stopped before the loop runs, and callbacks that
 * stop or restart other timers at random. The firing order must be (deadline, arming order)
 * throughout, every timer left armed fires exactly once, and none fires early. */
#define NT 10000

struct ht {
    loop_timer t;
    int idx;
    int fired;
    bool expect; /* armed and not yet fired */
};

static struct ht hts[NT];
static int harmed;
static uint64_t last_when, last_seq;
static int nfired;
static bool order_ok, early_ok, once_ok;

static void heap_fn(loop *l, void *ud);

static void harm(loop *l, struct ht *h, uint64_t delay)
{
    if (!h->expect)
        harmed++;
    h->expect = true;
    loop_timer_start(l, &h->t, delay, heap_fn, h);
}

static void hstop(loop *l, struct ht *h)
{
    assert_int_equal(loop_timer_armed(&h->t), h->expect);
    if (h->expect)
        harmed--;
    h->expect = false;
    loop_timer_stop(l, &h->t);
}

static void heap_fn(loop *l, void *ud)
{
    struct ht *h = ud;
    if (!h->expect)
        once_ok = false;
    h->expect = false;
    harmed--;
    h->fired++;
    nfired++;
    if (h->t.when < last_when || (h->t.when == last_when && h->t.seq < last_seq))
        order_ok = false;
    last_when = h->t.when;
    last_seq = h->t.seq;
    if (loop_now(l) < h->t.when)
        early_ok = false;
    uint64_t r = rng() % 10;
    if (r < 2) {
        hstop(l, &hts[rng() % NT]);
    } else if (r == 2) {
        struct ht *o = &hts[rng() % NT];
        if (o->fired == 0)
            harm(l, o, rng() % 20);
    }
    if (harmed == 0)
        loop_stop(l);
}

static void test_timer_heap_many(void **state)
{
    loop_timer wd;
    loop *l = new_loop(&wd, 20000);
    memset(hts, 0, sizeof hts);
    harmed = nfired = 0;
    last_when = last_seq = 0;
    order_ok = early_ok = once_ok = true;
    for (int i = 0; i < NT; i++) {
        hts[i].idx = i;
        harm(l, &hts[i], rng() % 40);
    }
    for (int i = 0; i < NT; i++)
        if (rng() % 3 == 0)
            hstop(l, &hts[rng() % NT]);
    /* Restart some with new deadlines before the loop starts. */
    for (int i = 0; i < NT / 10; i++)
        harm(l, &hts[rng() % NT], rng() % 40);
    int expected_min = harmed;
    loop_run(l);
    assert_false(watchdog_fired);
    assert_int_equal(harmed, 0);
    assert_true(order_ok);
    assert_true(early_ok);
    assert_true(once_ok);
    assert_true(nfired >= expected_min / 2);
    for (int i = 0; i < NT; i++) {
        assert_false(loop_timer_armed(&hts[i].t));
        assert_false(hts[i].expect);
        assert_true(hts[i].fired <= 1);
    }
    /* Nothing left over: the loop now only has the watchdog, which is still pending. */
    assert_true(loop_timer_armed(&wd));
    loop_free(l);
}

/* ---- file descriptors ----------------------------------------------------------------- */

struct fdrec {
    int calls;
    int mask;
    int fd;
    void *ud;
    char data[16];
    size_t len;
    bool stop;
};

static void fd_fn(loop *l, int fd, void *ud, int mask)
{
    struct fdrec *r = ud;
    r->calls++;
    r->mask |= mask;
    r->fd = fd;
    r->ud = ud;
    if (mask & LOOP_READ) {
        ssize_t n;
        while ((n = read(fd, r->data + r->len, sizeof r->data - 1 - r->len)) > 0)
            r->len += (size_t)n;
    }
    if (r->stop)
        loop_stop(l);
}

static void test_fd_pipe_read(void **state)
{
    loop_timer wd;
    loop *l = new_loop(&wd, 5000);
    int p[2];
    make_pipe(p);
    struct fdrec r = {.stop = true};
    assert_int_equal(loop_add_fd(l, p[0], LOOP_READ, fd_fn, &r), 0);
    /* Nothing to read: no call. */
    run_for(l, 20);
    assert_int_equal(r.calls, 0);
    /* Written from a timer: readable. */
    loop_timer w = {0};
    loop_timer_start(l, &w, 10, write_pipe_fn, &p[1]);
    loop_run(l);
    assert_false(watchdog_fired);
    assert_int_equal(r.calls, 1);
    assert_true(r.mask & LOOP_READ);
    assert_false(r.mask & LOOP_HUP);
    assert_int_equal(r.fd, p[0]);
    assert_ptr_equal(r.ud, &r);
    assert_int_equal(r.len, 1);
    assert_int_equal(r.data[0], 'x');

    /* Re-registering replaces the handler; an interest mask of 0 silences the fd, and
     * LOOP_READ again reports the data that came meanwhile. */
    struct fdrec lazy = {0};
    assert_int_equal(loop_add_fd(l, p[0], LOOP_WRITE, fd_fn, &lazy), 0); /* replaces */
    assert_int_equal(loop_mod_fd(l, p[0], 0), 0);
    assert_int_equal(write(p[1], "ab", 2), 2);
    run_for(l, 20);
    assert_int_equal(lazy.calls, 0); /* mask 0: not interested */
    assert_int_equal(loop_mod_fd(l, p[0], LOOP_READ), 0);
    lazy.stop = true;
    loop_run(l);
    assert_int_equal(lazy.calls, 1);
    assert_int_equal(lazy.len, 2);
    assert_memory_equal(lazy.data, "ab", 2);
    assert_int_equal(r.calls, 1); /* the old registration is gone */

    /* Removed: silent even when readable. */
    loop_del_fd(l, p[0]);
    loop_del_fd(l, p[0]); /* twice is fine */
    assert_int_equal(write(p[1], "c", 1), 1);
    run_for(l, 20);
    assert_int_equal(lazy.calls, 1);

    /* The write end closed: the read end reports a hang-up. */
    struct fdrec h = {.stop = true};
    assert_int_equal(loop_add_fd(l, p[0], LOOP_READ, fd_fn, &h), 0);
    close(p[1]);
    loop_run(l);
    assert_false(watchdog_fired);
    assert_true(h.calls >= 1);
    loop_del_fd(l, p[0]);
    close(p[0]);
    /* Read "c", then EOF: the hang-up shows up as LOOP_HUP. */
    assert_true(h.mask & LOOP_HUP);
    loop_free(l);
}

static void test_fd_pipe_write(void **state)
{
    loop_timer wd;
    loop *l = new_loop(&wd, 5000);
    int p[2];
    make_pipe(p);
    struct fdrec r = {.stop = true};
    assert_int_equal(loop_add_fd(l, p[1], LOOP_WRITE, fd_fn, &r), 0);
    loop_run(l);
    assert_false(watchdog_fired);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.mask & (LOOP_READ | LOOP_WRITE), LOOP_WRITE);
    /* Fill the pipe: no longer writable, until the reader drains it. */
    char chunk[4096];
    memset(chunk, 'z', sizeof chunk);
    while (write(p[1], chunk, sizeof chunk) > 0) {
    }
    assert_int_equal(errno, EAGAIN);
    r = (struct fdrec){.stop = true};
    run_for(l, 20);
    assert_int_equal(r.calls, 0);
    while (read(p[0], chunk, sizeof chunk) > 0) {
    }
    loop_run(l);
    assert_false(watchdog_fired);
    assert_int_equal(r.calls, 1);
    assert_true(r.mask & LOOP_WRITE);
    /* Reader gone: the writer sees the error as a hang-up. */
    close(p[0]);
    r = (struct fdrec){.stop = true};
    loop_run(l);
    assert_true(r.mask & LOOP_HUP);
    loop_del_fd(l, p[1]);
    close(p[1]);
    loop_free(l);
}

/* Level-triggered: a handler that reads one byte per call is called again while data is
 * left. */
static int one_byte_calls;
static char one_byte_got[4];

static void one_byte_fn(loop *l, int fd, void *ud, int mask)
{
    assert_int_equal(read(fd, &one_byte_got[one_byte_calls], 1), 1);
    if (++one_byte_calls == 3)
        loop_stop(l);
}

static void test_fd_level_triggered(void **state)
{
    loop_timer wd;
    loop *l = new_loop(&wd, 5000);
    int p[2];
    make_pipe(p);
    one_byte_calls = 0;
    assert_int_equal(loop_add_fd(l, p[0], LOOP_READ, one_byte_fn, NULL), 0);
    assert_int_equal(write(p[1], "abc", 3), 3);
    loop_run(l);
    assert_false(watchdog_fired);
    assert_int_equal(one_byte_calls, 3);
    assert_memory_equal(one_byte_got, "abc", 3);
    loop_del_fd(l, p[0]);
    close(p[0]);
    close(p[1]);
    loop_free(l);
}

/* A handler that removes another fd ready in the same turn: that one is not called. */
static int removed_calls;

static void remove_other_fn(loop *l, int fd, void *ud, int mask)
{
    removed_calls++;
    loop_del_fd(l, *(int *)ud);
    loop_stop(l);
}

static void test_fd_removed_in_same_turn(void **state)
{
    loop_timer wd;
    loop *l = new_loop(&wd, 5000);
    int a[2], b[2];
    make_pipe(a);
    make_pipe(b);
    removed_calls = 0;
    assert_int_equal(loop_add_fd(l, a[0], LOOP_READ, remove_other_fn, &b[0]), 0);
    assert_int_equal(loop_add_fd(l, b[0], LOOP_READ, remove_other_fn, &a[0]), 0);
    assert_int_equal(write(a[1], "1", 1), 1);
    assert_int_equal(write(b[1], "2", 1), 1);
    loop_run(l);
    assert_false(watchdog_fired);
    assert_int_equal(removed_calls, 1);
    loop_del_fd(l, a[0]);
    loop_del_fd(l, b[0]);
    for (int i = 0; i < 2; i++) {
        close(a[i]);
        close(b[i]);
    }
    loop_free(l);
}

/* A handler that closes another fd ready in the same turn, whose number is at once taken by
 * a new descriptor (as accept() would give it to a new connection): the old fd's event of
 * this batch must not be delivered to the new registration. */
static int innocent_calls, closer_calls;
static loop_timer stop_timer;

struct reuse {
    int other;  /* the fd to close and reuse */
    int writer; /* the new pipe's write end, kept open so that the new fd stays quiet */
};

static void innocent_fn(loop *l, int fd, void *ud, int mask)
{
    innocent_calls++;
}

static void close_and_reuse_fn(loop *l, int fd, void *ud, int mask)
{
    struct reuse *r = ud;
    closer_calls++;
    loop_del_fd(l, fd);
    loop_del_fd(l, r->other);
    close(r->other);
    int np[2];
    assert_int_equal(pipe(np), 0);
    if (np[0] != r->other) {
        assert_int_equal(dup2(np[0], r->other), r->other);
        close(np[0]);
    }
    r->writer = np[1];
    assert_int_equal(loop_add_fd(l, r->other, LOOP_READ, innocent_fn, NULL), 0);
    loop_timer_start(l, &stop_timer, 0, stop_fn, NULL); /* after this batch */
}

static void test_fd_reused_in_same_turn(void **state)
{
    loop_timer wd;
    loop *l = new_loop(&wd, 5000);
    int a[2], b[2];
    make_pipe(a);
    make_pipe(b);
    innocent_calls = closer_calls = 0;
    stop_timer = (loop_timer){0};
    struct reuse ra = {.other = b[0], .writer = -1}, rb = {.other = a[0], .writer = -1};
    assert_int_equal(loop_add_fd(l, a[0], LOOP_READ, close_and_reuse_fn, &ra), 0);
    assert_int_equal(loop_add_fd(l, b[0], LOOP_READ, close_and_reuse_fn, &rb), 0);
    /* both ready in the same batch: one hung up, one readable */
    close(a[1]);
    assert_int_equal(write(b[1], "x", 1), 1);
    loop_run(l);
    assert_false(watchdog_fired);
    assert_int_equal(closer_calls, 1);
    assert_int_equal(innocent_calls, 0);
    loop_del_fd(l, a[0]);
    loop_del_fd(l, b[0]);
    close(a[0]);
    close(b[0]);
    close(b[1]);
    if (ra.writer >= 0)
        close(ra.writer);
    if (rb.writer >= 0)
        close(rb.writer);
    loop_free(l);
}

static void test_fd_bad_args(void **state)
{
    loop *l = loop_new(64);
    assert_non_null(l);
    struct fdrec r = {0};
    errno = 0;
    assert_int_equal(loop_add_fd(l, 64, LOOP_READ, fd_fn, &r), -1);
    assert_int_equal(errno, EMFILE);
    assert_int_equal(loop_add_fd(l, -1, LOOP_READ, fd_fn, &r), -1);
    errno = 0;
    assert_int_equal(loop_mod_fd(l, 5, LOOP_READ), -1); /* not registered */
    assert_int_equal(errno, EBADF);
    assert_int_equal(loop_mod_fd(l, 1000, LOOP_READ), -1);
    loop_del_fd(l, 1000);
    loop_del_fd(l, -1);
    loop_free(l);
    loop_free(NULL);
}

/* ---- clocks and sleep limits ---------------------------------------------------------- */

static uint64_t seen_now[2];

static void cached_now_fn(loop *l, void *ud)
{
    seen_now[0] = loop_now(l);
    uint64_t until = mono_ms() + 15;
    while (mono_ms() < until) {
    }
    seen_now[1] = loop_now(l);
    loop_stop(l);
}

static void test_clock(void **state)
{
    loop_timer wd;
    loop *l = new_loop(&wd, 5000);
    loop_timer t = {0};
    loop_timer_start(l, &t, 1, cached_now_fn, NULL);
    loop_run(l);
    assert_int_equal(seen_now[0], seen_now[1]); /* cached for the turn */
    uint64_t m = mono_ms();
    assert_true(seen_now[0] <= m && m - seen_now[0] < 1000);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t wall = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    int64_t lw = util_wall_ms();
    assert_true(lw >= wall && lw - wall < 1000);
    loop_free(l);
}

static int limit_calls;

static int64_t limit_fn(loop *l, void *ud)
{
    limit_calls++;
    return *(int64_t *)ud;
}

static void test_sleep_limit(void **state)
{
    loop_timer wd;
    loop *l = new_loop(&wd, 5000);
    turn = 0;
    loop_set_before_sleep(l, count_turn, NULL);
    /* No limit: the loop sleeps until its one timer. */
    run_for(l, 100);
    assert_true(turn <= 3);
    /* -1 means no limit, 5 ms wakes the loop every 5 ms, the smallest one wins. */
    int64_t none = -1, five = 5, big = 1000;
    assert_int_equal(loop_add_sleep_limit(l, limit_fn, &none), 0);
    assert_int_equal(loop_add_sleep_limit(l, limit_fn, &big), 0);
    turn = 0;
    run_for(l, 100);
    assert_true(turn <= 3);
    assert_int_equal(loop_add_sleep_limit(l, limit_fn, &five), 0);
    assert_int_equal(loop_add_sleep_limit(l, limit_fn, &none), 0);
    assert_int_equal(loop_add_sleep_limit(l, limit_fn, &five), -1); /* 4 at most */
    turn = limit_calls = 0;
    run_for(l, 200); /* about 40 turns; 8 leaves room for a loaded machine */
    assert_true(turn >= 8);
    assert_int_equal(limit_calls, 4 * turn);
    assert_false(watchdog_fired);
    loop_free(l);
}

/* ---- wake-ups from other threads ------------------------------------------------------ */

static int wake_calls;
static pthread_t loop_thread;
static bool wake_on_loop_thread;
static void *wake_ud_seen;

static void wake_fn(loop *l, void *ud)
{
    wake_calls++;
    wake_ud_seen = ud;
    wake_on_loop_thread = pthread_equal(pthread_self(), loop_thread);
    loop_stop(l);
}

static void *waker(void *arg)
{
    struct timespec ts = {0, 20 * 1000000};
    nanosleep(&ts, NULL);
    loop_wake(arg);
    return NULL;
}

static void *waker_many(void *arg)
{
    for (int i = 0; i < 100; i++)
        loop_wake(arg);
    return NULL;
}

static void test_wake_from_thread(void **state)
{
    loop_timer wd;
    loop *l = new_loop(&wd, 5000);
    int tag;
    loop_thread = pthread_self();
    wake_calls = 0;
    loop_set_wake(l, wake_fn, &tag);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, waker, l), 0);
    loop_run(l);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_false(watchdog_fired);
    assert_int_equal(wake_calls, 1);
    assert_true(wake_on_loop_thread);
    assert_ptr_equal(wake_ud_seen, &tag);

    /* Many wake-ups before the loop looks: one call to the hook. */
    wake_calls = 0;
    assert_int_equal(pthread_create(&th, NULL, waker_many, l), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    loop_run(l);
    assert_false(watchdog_fired);
    assert_int_equal(wake_calls, 1);
    run_for(l, 20);
    assert_int_equal(wake_calls, 1);
    loop_free(l);
}

/* ---- signals -------------------------------------------------------------------------- */

static int sig_seen[4];
static int nsig_seen;
static void *sig_ud_seen;

static void sig_fn(loop *l, int signo, void *ud)
{
    assert_true(nsig_seen < 4);
    sig_seen[nsig_seen++] = signo;
    sig_ud_seen = ud;
    loop_stop(l);
}

static void raise_usr1_fn(loop *l, void *ud)
{
    assert_int_equal(raise(SIGUSR1), 0);
}

static void test_signals(void **state)
{
    loop_timer wd;
    loop *l = new_loop(&wd, 5000);
    int tag;
    nsig_seen = 0;
    assert_int_equal(loop_on_signal(l, SIGUSR1, sig_fn, &tag), 0);
    /* Raised from a callback on the loop thread. */
    loop_timer t = {0};
    loop_timer_start(l, &t, 5, raise_usr1_fn, NULL);
    loop_run(l);
    assert_false(watchdog_fired);
    assert_int_equal(nsig_seen, 1);
    assert_int_equal(sig_seen[0], SIGUSR1);
    assert_ptr_equal(sig_ud_seen, &tag);

    /* A second signal added later, sent to the process before the loop runs. */
    assert_int_equal(loop_on_signal(l, SIGUSR2, sig_fn, NULL), 0);
    assert_int_equal(kill(getpid(), SIGUSR2), 0);
    loop_run(l);
    assert_false(watchdog_fired);
    assert_int_equal(nsig_seen, 2);
    assert_int_equal(sig_seen[1], SIGUSR2);
    assert_null(sig_ud_seen);
    /* And the first one still works. */
    assert_int_equal(raise(SIGUSR1), 0);
    loop_run(l);
    assert_false(watchdog_fired);
    assert_int_equal(nsig_seen, 3);
    assert_int_equal(sig_seen[2], SIGUSR1);
    /* The signals are blocked in this thread, so nothing is pending any more. */
    sigset_t pend;
    assert_int_equal(sigpending(&pend), 0);
    assert_false(sigismember(&pend, SIGUSR1));
    assert_false(sigismember(&pend, SIGUSR2));
    loop_free(l);
}

int main(void)
{
    /* loop_on_signal blocks its signals in the calling thread only; block them here, before
     * any thread exists, so that no other thread can take them with the default action. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timer_deadline_order),
        cmocka_unit_test(test_timer_equal_deadlines_fifo),
        cmocka_unit_test(test_timer_stop_restart),
        cmocka_unit_test(test_timer_zero_delay_no_starvation),
        cmocka_unit_test(test_timer_heap_many),
        cmocka_unit_test(test_fd_pipe_read),
        cmocka_unit_test(test_fd_pipe_write),
        cmocka_unit_test(test_fd_level_triggered),
        cmocka_unit_test(test_fd_removed_in_same_turn),
        cmocka_unit_test(test_fd_reused_in_same_turn),
        cmocka_unit_test(test_fd_bad_args),
        cmocka_unit_test(test_clock),
        cmocka_unit_test(test_sleep_limit),
        cmocka_unit_test(test_wake_from_thread),
        cmocka_unit_test(test_signals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
