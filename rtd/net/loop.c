/* loop.c: epoll event loop with a timer heap (see loop.h).
 *
 * File handlers are kept in an array indexed by fd, sized at start for the process' file
 * limit, so dispatch is one load. Each registration of an fd number gets a new generation,
 * carried in its epoll events: an event fetched for a descriptor that a handler closed in
 * the same turn is dropped even if the number was reused meanwhile (a new connection must
 * not get the old one's hang-up). The timer heap orders by (when, seq); arming and stopping
 * are O(log n) and never allocate after the heap has grown to the number of live timers. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "rtd/net/loop.h"

struct fd_slot {
    loop_fd_fn *fn;
    void *ud;
    int mask;
    uint32_t gen;   /* bumped by each new registration of this fd number */
};

static uint64_t ev_data(int fd, uint32_t gen)
{
    return (uint64_t)gen << 32 | (uint32_t)fd;
}

struct sleep_limit {
    loop_sleep_fn *fn;
    void *ud;
};

struct loop {
    int epfd;
    int wakefd;
    int max_fds;
    struct fd_slot *fds;
    struct epoll_event *events;
    int nevents;
    uint64_t now;
    uint64_t seq;
    loop_timer **heap;
    size_t nheap, capheap;
    loop_hook_fn *before_sleep;
    void *before_sleep_ud;
    loop_hook_fn *wake_fn;
    void *wake_ud;
    struct sleep_limit limits[4];
    int nlimits;
    int sigfd;
    sigset_t sigs;
    struct {
        int signo;
        loop_signal_fn *fn;
        void *ud;
    } sighandlers[8];
    int nsig;
    volatile int stop;
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void wake_read(loop *l, int fd, void *ud, int mask)
{
    uint64_t v;
    while (read(fd, &v, sizeof v) > 0) {
    }
    if (l->wake_fn)
        l->wake_fn(l, l->wake_ud);
}

loop *loop_new(int max_fds)
{
    loop *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->max_fds = max_fds;
    l->nevents = 1024;
    l->fds = calloc((size_t)max_fds, sizeof *l->fds);
    l->events = calloc((size_t)l->nevents, sizeof *l->events);
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!l->fds || !l->events || l->epfd < 0 || l->wakefd < 0 ||
        loop_add_fd(l, l->wakefd, LOOP_READ, wake_read, NULL) < 0) {
        loop_free(l);
        return NULL;
    }
    l->now = mono_ms();
    l->sigfd = -1;
    sigemptyset(&l->sigs);
    return l;
}

void loop_free(loop *l)
{
    if (!l)
        return;
    if (l->epfd >= 0)
        close(l->epfd);
    if (l->wakefd >= 0)
        close(l->wakefd);
    if (l->sigfd >= 0)
        close(l->sigfd);
    free(l->fds);
    free(l->events);
    free(l->heap);
    free(l);
}

static uint32_t to_epoll(int mask)
{
    uint32_t ev = EPOLLRDHUP;
    if (mask & LOOP_READ)
        ev |= EPOLLIN;
    if (mask & LOOP_WRITE)
        ev |= EPOLLOUT;
    return ev;
}

int loop_add_fd(loop *l, int fd, int mask, loop_fd_fn *fn, void *ud)
{
    if (fd < 0 || fd >= l->max_fds) {
        errno = EMFILE;
        return -1;
    }
    bool fresh = !l->fds[fd].fn;
    uint32_t gen = l->fds[fd].gen + (fresh ? 1 : 0); /* replacing keeps the generation */
    struct epoll_event ev = {.events = to_epoll(mask), .data.u64 = ev_data(fd, gen)};
    if (epoll_ctl(l->epfd, fresh ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev) < 0)
        return -1;
    l->fds[fd] = (struct fd_slot){fn, ud, mask, gen};
    return 0;
}

int loop_mod_fd(loop *l, int fd, int mask)
{
    if (fd < 0 || fd >= l->max_fds || !l->fds[fd].fn) {
        errno = EBADF;
        return -1;
    }
    if (l->fds[fd].mask == mask)
        return 0;
    struct epoll_event ev = {.events = to_epoll(mask), .data.u64 = ev_data(fd, l->fds[fd].gen)};
    if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
        return -1;
    l->fds[fd].mask = mask;
    return 0;
}

void loop_del_fd(loop *l, int fd)
{
    if (fd < 0 || fd >= l->max_fds || !l->fds[fd].fn)
        return;
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
    l->fds[fd] = (struct fd_slot){.gen = l->fds[fd].gen};
}

uint64_t loop_now(loop *l)
{
    return l->now;
}

/* ---- timer heap ---- */

static bool earlier(const loop_timer *a, const loop_timer *b)
{
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static void heap_set(loop *l, size_t i, loop_timer *t)
{
    l->heap[i] = t;
    t->slot = i + 1;
}

static void sift_up(loop *l, size_t i)
{
    loop_timer *t = l->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!earlier(t, l->heap[parent]))
            break;
        heap_set(l, i, l->heap[parent]);
        i = parent;
    }
    heap_set(l, i, t);
}

static void sift_down(loop *l, size_t i)
{
    loop_timer *t = l->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= l->nheap)
            break;
        if (c + 1 < l->nheap && earlier(l->heap[c + 1], l->heap[c]))
            c++;
        if (!earlier(l->heap[c], t))
            break;
        heap_set(l, i, l->heap[c]);
        i = c;
    }
    heap_set(l, i, t);
}

void loop_timer_stop(loop *l, loop_timer *t)
{
    if (!t->slot)
        return;
    size_t i = t->slot - 1;
    t->slot = 0;
    l->nheap--;
    if (i == l->nheap)
        return;
    l->heap[i] = l->heap[l->nheap];
    l->heap[i]->slot = i + 1;
    if (i > 0 && earlier(l->heap[i], l->heap[(i - 1) / 2]))
        sift_up(l, i);
    else
        sift_down(l, i);
}

void loop_timer_start(loop *l, loop_timer *t, uint64_t delay_ms, loop_timer_fn *fn, void *ud)
{
    loop_timer_stop(l, t);
    if (l->nheap == l->capheap) {
        size_t cap = l->capheap ? l->capheap * 2 : 256;
        loop_timer **h = realloc(l->heap, cap * sizeof *h);
        if (!h)
            abort(); /* a timer that silently never fires would be worse */
        l->heap = h;
        l->capheap = cap;
    }
    t->when = l->now + delay_ms;
    t->seq = l->seq++;
    t->fn = fn;
    t->ud = ud;
    l->heap[l->nheap] = t;
    t->slot = ++l->nheap;
    sift_up(l, l->nheap - 1);
}

static void run_timers(loop *l)
{
    /* Only timers due at the start of this pass run, so a timer re-armed with delay 0 waits
     * for the next turn instead of starving the loop. */
    uint64_t now = l->now;
    uint64_t limit = l->seq;
    while (l->nheap > 0) {
        loop_timer *t = l->heap[0];
        if (t->when > now || t->seq >= limit)
            break;
        loop_timer_stop(l, t);
        t->fn(l, t->ud);
    }
}

void loop_set_before_sleep(loop *l, loop_hook_fn *fn, void *ud)
{
    l->before_sleep = fn;
    l->before_sleep_ud = ud;
}

int loop_add_sleep_limit(loop *l, loop_sleep_fn *fn, void *ud)
{
    if (l->nlimits == (int)(sizeof l->limits / sizeof l->limits[0]))
        return -1;
    l->limits[l->nlimits++] = (struct sleep_limit){fn, ud};
    return 0;
}

void loop_set_wake(loop *l, loop_hook_fn *fn, void *ud)
{
    l->wake_fn = fn;
    l->wake_ud = ud;
}

void loop_wake(loop *l)
{
    uint64_t one = 1;
    ssize_t r = write(l->wakefd, &one, sizeof one);
    (void)r;
}

static void signal_read(loop *l, int fd, void *ud, int mask)
{
    struct signalfd_siginfo si;
    while (read(fd, &si, sizeof si) == (ssize_t)sizeof si) {
        for (int i = 0; i < l->nsig; i++)
            if (l->sighandlers[i].signo == (int)si.ssi_signo)
                l->sighandlers[i].fn(l, (int)si.ssi_signo, l->sighandlers[i].ud);
    }
}

int loop_on_signal(loop *l, int signo, loop_signal_fn *fn, void *ud)
{
    if (l->nsig == (int)(sizeof l->sighandlers / sizeof l->sighandlers[0]))
        return -1;
    sigaddset(&l->sigs, signo);
    if (sigprocmask(SIG_BLOCK, &l->sigs, NULL) < 0)
        return -1;
    int fd = signalfd(l->sigfd, &l->sigs, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        return -1;
    if (l->sigfd < 0) {
        l->sigfd = fd;
        if (loop_add_fd(l, fd, LOOP_READ, signal_read, NULL) < 0)
            return -1;
    }
    l->sighandlers[l->nsig].signo = signo;
    l->sighandlers[l->nsig].fn = fn;
    l->sighandlers[l->nsig].ud = ud;
    l->nsig++;
    return 0;
}

void loop_stop(loop *l)
{
    l->stop = 1;
}

void loop_run(loop *l)
{
    l->stop = 0;
    while (!l->stop) {
        if (l->before_sleep)
            l->before_sleep(l, l->before_sleep_ud);
        int64_t timeout = -1;
        l->now = mono_ms();
        if (l->nheap > 0)
            timeout = l->heap[0]->when > l->now ? (int64_t)(l->heap[0]->when - l->now) : 0;
        for (int i = 0; i < l->nlimits; i++) {
            int64_t t = l->limits[i].fn(l, l->limits[i].ud);
            if (t >= 0 && (timeout < 0 || t < timeout))
                timeout = t;
        }
        if (timeout > 60000)
            timeout = 60000;
        int n = epoll_wait(l->epfd, l->events, l->nevents, (int)timeout);
        l->now = mono_ms();
        if (n < 0 && errno != EINTR)
            break;
        for (int i = 0; i < n; i++) {
            int fd = (int)(uint32_t)l->events[i].data.u64;
            uint32_t gen = (uint32_t)(l->events[i].data.u64 >> 32);
            uint32_t e = l->events[i].events;
            struct fd_slot *s = &l->fds[fd];
            if (!s->fn || s->gen != gen)
                continue; /* removed (and maybe its number reused) by an earlier handler */
            int mask = 0;
            if (e & EPOLLIN)
                mask |= LOOP_READ;
            if (e & EPOLLOUT)
                mask |= LOOP_WRITE;
            if (e & (EPOLLERR | EPOLLHUP | EPOLLRDHUP))
                mask |= LOOP_HUP;
            s->fn(l, fd, s->ud, mask);
        }
        run_timers(l);
    }
}
