/* tcpfloor.c: what one loopback TCP write and read cost on this machine, without rtd.
 *
 * One thread writes a round: one writev of FRAMES frames of BYTES bytes to each of SOCKETS
 * connected loopback sockets (TCP_NODELAY, as rtd's), ROUNDS times, GAP_US apart; another
 * thread reads them with epoll, as rtload does. It prints the CPU time per writev and per
 * read, and how long one round takes to leave. These are the kernel's costs that bound any
 * server's fan-out latency on the machine (docs/BENCHMARKS.md, "Latency").
 *
 *   tcpfloor [SOCKETS [FRAMES [BYTES [ROUNDS [GAP_US]]]]]     (100 7 100 2000 500) */
#define _GNU_SOURCE 1
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MAX_SOCKETS 4096
#define MAX_FRAMES 256

static int nsock;
static int wfd[MAX_SOCKETS], rfd[MAX_SOCKETS];
static atomic_bool stop;
static double read_cpu_ns_each;
static long reads;

static double thread_cpu(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double mono(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void *reader(void *arg)
{
    (void)arg;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    for (int i = 0; i < nsock; i++) {
        struct epoll_event e = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, rfd[i], &e);
    }
    static char buf[65536];
    struct epoll_event ev[256];
    double c0 = thread_cpu();
    while (!atomic_load(&stop)) {
        int n = epoll_wait(ep, ev, 256, 10);
        for (int i = 0; i < n; i++)
            if (read(rfd[ev[i].data.u32], buf, sizeof buf) > 0)
                reads++;
    }
    read_cpu_ns_each = reads ? (thread_cpu() - c0) * 1e9 / (double)reads : 0;
    close(ep);
    return NULL;
}

static int arg(int argc, char **argv, int i, int def, int lo, int hi)
{
    if (argc <= i)
        return def;
    char *end;
    long v = strtol(argv[i], &end, 10);
    if (*end || v < lo || v > hi) {
        fprintf(stderr, "tcpfloor: argument %d must be %d..%d\n", i, lo, hi);
        exit(2);
    }
    return (int)v;
}

int main(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        puts("usage: tcpfloor [SOCKETS [FRAMES [BYTES [ROUNDS [GAP_US]]]]]  (100 7 100 2000 500)");
        return 0;
    }
    nsock = arg(argc, argv, 1, 100, 1, MAX_SOCKETS);
    int frames = arg(argc, argv, 2, 7, 1, MAX_FRAMES);
    int bytes = arg(argc, argv, 3, 100, 1, 65536);
    int rounds = arg(argc, argv, 4, 2000, 1, 1000000);
    int gap_us = arg(argc, argv, 5, 500, 0, 1000000);

    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(ls, (struct sockaddr *)&a, &al) < 0 || listen(ls, 1024) < 0) {
        perror("tcpfloor: listen");
        return 1;
    }
    for (int i = 0; i < nsock; i++) {
        int one = 1;
        rfd[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (rfd[i] < 0 || connect(rfd[i], (struct sockaddr *)&a, sizeof a) < 0 ||
            (wfd[i] = accept4(ls, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) < 0) {
            perror("tcpfloor: connect");
            return 1;
        }
        setsockopt(wfd[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fcntl(rfd[i], F_SETFL, O_NONBLOCK);
    }
    close(ls);

    pthread_t t;
    pthread_create(&t, NULL, reader, NULL);
    char *frame = malloc((size_t)bytes);
    memset(frame, 'x', (size_t)bytes);
    struct iovec iov[MAX_FRAMES];
    for (int k = 0; k < frames; k++)
        iov[k] = (struct iovec){frame, (size_t)bytes};

    long writes = 0, short_writes = 0;
    double round_sum = 0, round_max = 0;
    double c0 = thread_cpu();
    for (int r = 0; r < rounds; r++) {
        double t0 = mono();
        for (int i = 0; i < nsock; i++) {
            ssize_t w = writev(wfd[i], iov, frames);
            writes++;
            if (w < (ssize_t)frames * bytes)
                short_writes++;
        }
        double d = mono() - t0;
        round_sum += d;
        if (d > round_max)
            round_max = d;
        if (gap_us)
            usleep((useconds_t)gap_us);
    }
    double wcpu = thread_cpu() - c0;
    usleep(200000);
    atomic_store(&stop, true);
    pthread_join(t, NULL);

    printf("tcpfloor: %d sockets, writev of %d x %d B, %d rounds %d us apart\n", nsock, frames,
           bytes, rounds, gap_us);
    printf("  writer   %.0f ns CPU per writev (%ld writes, %ld short)\n", wcpu * 1e9 / (double)writes,
           writes, short_writes);
    printf("  reader   %.0f ns CPU per read (%ld reads)\n", read_cpu_ns_each, reads);
    printf("  a round  %.1f us to write on average, %.1f us at most\n",
           round_sum * 1e6 / rounds, round_max * 1e6);
    for (int i = 0; i < nsock; i++) {
        close(wfd[i]);
        close(rfd[i]);
    }
    free(frame);
    return 0;
}
