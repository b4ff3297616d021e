/* store_harness.h: what the store's unit tests (test_store.c, test_store_pg.c) share:
 * driving rtd's loop until a condition holds, and recording each message's completion.
 * Header-only (static functions), included once per test program after cmocka.h. */
#ifndef RTD_TEST_STORE_HARNESS_H
#define RTD_TEST_STORE_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "rtd/net/loop.h"

/* ---- driving the loop ---- */

struct waiter {
    bool (*cond)(void *);
    void *ud;
    uint64_t deadline;
    uint64_t every;
    bool met;
    loop_timer t;
};

static void waiter_tick(loop *l, void *ud)
{
    struct waiter *w = ud;
    if (w->cond(w->ud)) {
        w->met = true;
        loop_stop(l);
    } else if (loop_now(l) >= w->deadline) {
        loop_stop(l);
    } else {
        loop_timer_start(l, &w->t, w->every, waiter_tick, w);
    }
}

/* Runs the loop until cond(ud) holds (checked every poll_ms) or timeout_ms passes. */
static bool run_until(loop *l, bool (*cond)(void *), void *ud, int timeout_ms, int poll_ms)
{
    struct waiter w = {.cond = cond, .ud = ud, .every = (uint64_t)poll_ms};
    w.deadline = loop_now(l) + (uint64_t)timeout_ms;
    loop_timer_start(l, &w.t, 0, waiter_tick, &w);
    loop_run(l);
    loop_timer_stop(l, &w.t);
    return w.met;
}

/* ---- acks ---- */

struct ack {
    bool done, ok;
    int64_t id;
    char error[256];
    int *pending;
};

static void on_ack(void *ud, bool ok, int64_t id, const char *error)
{
    struct ack *a = ud;
    assert_false(a->done); /* exactly one completion per message */
    a->done = true;
    a->ok = ok;
    a->id = id;
    snprintf(a->error, sizeof a->error, "%s", error ? error : "");
    if (a->pending)
        (*a->pending)--;
}

static bool int_is_zero(void *ud)
{
    return *(int *)ud == 0;
}

#endif
