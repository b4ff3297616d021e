/* loop.h: rtd's event loop, in the manner of redis' ae.
 *
 * One thread runs the loop and owns everything registered with it: file descriptors
 * (epoll, level-triggered), timers (a binary heap of caller-owned loop_timer structs, so
 * arming a timer never allocates), a before-sleep hook (where output is flushed, one writev
 * per socket per turn) and a wake-up eventfd that other threads may signal.
 * Nothing here is thread-safe except loop_wake(). */
#ifndef RTD_LOOP_H
#define RTD_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct loop loop;

enum { LOOP_READ = 1, LOOP_WRITE = 2, LOOP_HUP = 4 };

/* mask: LOOP_READ/LOOP_WRITE readiness; LOOP_HUP when the peer hung up or the fd errored. */
typedef void loop_fd_fn(loop *l, int fd, void *ud, int mask);
typedef void loop_timer_fn(loop *l, void *ud);
typedef void loop_hook_fn(loop *l, void *ud);
/* Returns the longest the loop may sleep in ms (-1: no limit), e.g. libmicrohttpd's timeout. */
typedef int64_t loop_sleep_fn(loop *l, void *ud);

/* A timer lives inside its owner's struct; zero-initialise it. */
typedef struct loop_timer {
    uint64_t when;   /* ms on the loop clock */
    uint64_t seq;    /* insertion order, to keep equal deadlines FIFO */
    size_t slot;     /* index in the heap + 1; 0 when not armed */
    loop_timer_fn *fn;
    void *ud;
} loop_timer;

loop *loop_new(int max_fds);
void loop_free(loop *l);

/* Registers fd (replacing any earlier registration). mask is LOOP_READ|LOOP_WRITE.
 * Returns 0 or -1 with errno. */
int loop_add_fd(loop *l, int fd, int mask, loop_fd_fn *fn, void *ud);
int loop_mod_fd(loop *l, int fd, int mask);
void loop_del_fd(loop *l, int fd);

/* Monotonic milliseconds, cached once per loop turn. */
uint64_t loop_now(loop *l);

/* (Re)arms t to fire once after delay_ms. */
void loop_timer_start(loop *l, loop_timer *t, uint64_t delay_ms, loop_timer_fn *fn, void *ud);
void loop_timer_stop(loop *l, loop_timer *t);
static inline bool loop_timer_armed(const loop_timer *t)
{
    return t->slot != 0;
}

/* Called each turn just before the loop sleeps. */
void loop_set_before_sleep(loop *l, loop_hook_fn *fn, void *ud);
/* Asked each turn how long the loop may sleep (several may be registered, up to 4). */
int loop_add_sleep_limit(loop *l, loop_sleep_fn *fn, void *ud);
/* fn runs on the loop thread after another thread calls loop_wake(). */
void loop_set_wake(loop *l, loop_hook_fn *fn, void *ud);
/* Thread-safe: makes the loop run its wake hook soon. */
void loop_wake(loop *l);

/* Delivers signo through the loop (signalfd): fn runs on the loop thread. The signal is
 * blocked for the calling thread, so call this before starting other threads. Up to 8. */
typedef void loop_signal_fn(loop *l, int signo, void *ud);
int loop_on_signal(loop *l, int signo, loop_signal_fn *fn, void *ud);

/* Runs until loop_stop(). */
void loop_run(loop *l);
void loop_stop(loop *l);

#endif
