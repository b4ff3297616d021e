/* rtload.c: a Socket.IO load generator for rtd and the Node.js reference server.
 *
 *   rtload --scenario fanout|ingest|idle|mixed [--clients N] [--senders N] [--rate R] ...
 *
 * A run is a sequence of bounded phases, each with a deadline:
 *   connect  N clients (WebSocket, a fraction over long-polling) from 127.0.0.1..N, paced
 *   setup    identify/join acknowledged, then a settle pause and the server's RSS read
 *   warmup   the senders send, nothing is recorded
 *   measure  the senders send; counters are snapshotted at both ends, latencies recorded
 *   drain    nothing sent; waits for outstanding acks and deliveries
 * Scenarios:
 *   fanout   the first --senders clients send to everyone; every client receives
 *   ingest   each sender joins its own room and sends to it (acks after the server's commit)
 *   idle     connections only, answering heartbeats, for the server's memory per connection
 *   mixed    clients spread over --rooms rooms, a polling fraction, senders alternate between
 *            everyone and one room
 * Laravel Echo (bench/laravel.sh): --subscribe CHANNEL makes every client emit Echo's subscribe
 * and count (event, CHANNEL, data) as deliveries; --redis-publish replaces the senders by one
 * Redis connection publishing as Laravel's RedisBroadcaster (rtload_redis.c); --eio 3 speaks
 * socket.io-client 2.x's protocol, the only one laravel-echo-server 1.6.3 knows.
 * Rate 0 sends as fast as acks allow: each sender keeps --window messages in flight, and all
 * pause while the receivers are more than --max-lag messages behind on average (so the
 * server's queues stay bounded and the figure is a sustained rate). Each message's text
 * carries the send time; ack latency is measured at the sender, delivery latency at every
 * receiver. The report is a table on stdout and JSON (--json FILE). */
#define _GNU_SOURCE 1
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "tools/rtload.h"

#define MAX_EVENTS 1024
#define SETUP_TIMEOUT_NS (15 * 1000000000ll)
#define STALL_NS (2 * 1000000000ll)

struct config cfg;
struct state g;

static volatile sig_atomic_t stop_requested;

/* Server and client resource readings. */
struct proc_sample {
    long rss_kb, hwm_kb, threads;
    double cpu_s; /* user + system */
    bool ok;
};

static struct {
    struct proc_sample before, connected, m_start, m_end, end;
    double self_cpu_start, self_cpu_end;
    double mach_busy_start, mach_total_start, mach_busy_end, mach_total_end;
    int64_t t_measure_start, t_measure_end, t_connect_end;
    struct counters c_start, c_end;
    uint64_t unstarted;
    uint64_t ack_timeouts;
    uint64_t missing;
    unsigned ready_connected, ready_m_end; /* clients ready when the RSS was read */
} r;

/* ---- /proc readings ---- */

static void read_proc(int pid, struct proc_sample *ps)
{
    memset(ps, 0, sizeof *ps);
    if (pid <= 0)
        return;
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0)
            ps->rss_kb = strtol(line + 6, NULL, 10);
        else if (strncmp(line, "VmHWM:", 6) == 0)
            ps->hwm_kb = strtol(line + 6, NULL, 10);
        else if (strncmp(line, "Threads:", 8) == 0)
            ps->threads = strtol(line + 8, NULL, 10);
    }
    fclose(f);
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    f = fopen(path, "r");
    if (!f)
        return;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!p)
        return;
    /* Fields after ")": state(3) ... utime(14) stime(15). */
    unsigned long long ut = 0, st = 0;
    int field = 2;
    for (char *tok = strtok(p + 1, " "); tok; tok = strtok(NULL, " ")) {
        field++;
        if (field == 14)
            ut = strtoull(tok, NULL, 10);
        else if (field == 15) {
            st = strtoull(tok, NULL, 10);
            break;
        }
    }
    ps->cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
    ps->ok = true;
}

/* All CPUs' busy and total time in seconds, from the first line of /proc/stat. */
static void read_machine(double *busy, double *total)
{
    *busy = *total = 0;
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return;
    unsigned long long v[10] = {0};
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                   &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]);
    fclose(f);
    if (n < 8)
        return;
    double hz = (double)sysconf(_SC_CLK_TCK);
    /* user nice system idle iowait irq softirq steal (guest time is inside user) */
    unsigned long long b = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    *busy = (double)b / hz;
    *total = (double)(b + v[3] + v[4]) / hz;
}

static double self_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ---- options ---- */

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: rtload [OPTION]...\n"
            "Socket.IO load generator (Engine.IO v4 + Socket.IO v5 over WebSocket and polling).\n"
            "\n"
            "  --host ADDR              server IPv4 address (127.0.0.1)\n"
            "  --port N                 server port (3001)\n"
            "  --path PATH              Engine.IO path (/socket.io/)\n"
            "  --scenario S             fanout, ingest, idle or mixed (fanout)\n"
            "  --clients N              clients (fanout/mixed 1000, ingest 100, idle 10000)\n"
            "  --senders N              sending clients (fanout 1, ingest = clients, mixed 10)\n"
            "  --rate R                 messages/s over all senders, 0: as fast as acks allow\n"
            "                           (mixed 1000, others 0)\n"
            "  --window N               messages in flight per sender (16)\n"
            "  --max-lag N              rate 0: pause while receivers are N messages behind\n"
            "                           on average, 0: never (64)\n"
            "  --duration S             measured seconds (10)\n"
            "  --warmup S               seconds of traffic before measuring (1)\n"
            "  --drain S                most seconds to wait for outstanding acks/deliveries (3)\n"
            "  --settle S               pause after connecting before reading RSS (1, idle 3)\n"
            "  --connect-rate R         connections started per second, 0: unpaced (0)\n"
            "  --connect-concurrency N  handshakes in progress at most (200)\n"
            "  --connect-timeout S      deadline of the connect phase (60)\n"
            "  --handshake-timeout S    deadline of one connection's handshake (15)\n"
            "  --polling-fraction F     share of clients on long-polling, 0..1 (mixed 0.1, else 0)\n"
            "  --payload-bytes N        length of each message's text (64, at least 17)\n"
            "  --rooms N                mixed: rooms the clients are spread over (10)\n"
            "  --identify               each client emits identify (acknowledged) when ready\n"
            "  --eio N                  Engine.IO protocol 4, or 3 (socket.io-client 2.x;\n"
            "                           WebSocket only, the clients ping) (4)\n"
            "  --subscribe CHANNEL      Laravel Echo: each client emits subscribe {channel};\n"
            "                           its events (name, CHANNEL, data) are the deliveries\n"
            "  --redis-publish H:P      with --subscribe: publish through Redis at H:P (IPv4) as\n"
            "                           Laravel's RedisBroadcaster does, instead of senders\n"
            "  --redis-key KEY          the Redis channel (laravel_database_CHANNEL)\n"
            "  --source-addrs N         bind clients to 127.0.0.1..127.0.0.N (50; 0: no bind)\n"
            "  --server-pid PID         read the server's RSS and CPU time from /proc/PID\n"
            "  --json FILE              write the report as JSON to FILE\n"
            "  --label TEXT             a name for the run, copied into the report\n"
            "  --quiet                  no progress lines or error samples on stderr\n"
            "  --help                   this help\n");
}

static double num_arg(const char *opt, const char *v, double lo, double hi)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end || !(d >= lo && d <= hi)) {
        fprintf(stderr, "rtload: %s wants a number from %g to %g (got %s)\n", opt, lo, hi, v);
        exit(2);
    }
    return d;
}

static const char *scenario_name(enum scenario s)
{
    switch (s) {
    case SC_FANOUT:
        return "fanout";
    case SC_INGEST:
        return "ingest";
    case SC_IDLE:
        return "idle";
    case SC_MIXED:
        return "mixed";
    }
    return "?";
}

static void parse_options(int argc, char **argv)
{
    enum {
        O_HOST = 256, O_PORT, O_PATH, O_SCENARIO, O_CLIENTS, O_SENDERS, O_RATE, O_WINDOW,
        O_MAXLAG, O_DURATION, O_WARMUP, O_DRAIN, O_SETTLE, O_CRATE, O_CCONC, O_CTIMEOUT,
        O_HTIMEOUT, O_POLLING, O_PAYLOAD, O_ROOMS, O_IDENTIFY, O_SRC, O_PID, O_JSON, O_LABEL,
        O_QUIET, O_HELP, O_EIO, O_SUBSCRIBE, O_RPUB, O_RKEY
    };
    static const struct option opts[] = {
        {"host", required_argument, NULL, O_HOST},
        {"port", required_argument, NULL, O_PORT},
        {"path", required_argument, NULL, O_PATH},
        {"scenario", required_argument, NULL, O_SCENARIO},
        {"clients", required_argument, NULL, O_CLIENTS},
        {"senders", required_argument, NULL, O_SENDERS},
        {"rate", required_argument, NULL, O_RATE},
        {"window", required_argument, NULL, O_WINDOW},
        {"max-lag", required_argument, NULL, O_MAXLAG},
        {"duration", required_argument, NULL, O_DURATION},
        {"warmup", required_argument, NULL, O_WARMUP},
        {"drain", required_argument, NULL, O_DRAIN},
        {"settle", required_argument, NULL, O_SETTLE},
        {"connect-rate", required_argument, NULL, O_CRATE},
        {"connect-concurrency", required_argument, NULL, O_CCONC},
        {"connect-timeout", required_argument, NULL, O_CTIMEOUT},
        {"handshake-timeout", required_argument, NULL, O_HTIMEOUT},
        {"polling-fraction", required_argument, NULL, O_POLLING},
        {"payload-bytes", required_argument, NULL, O_PAYLOAD},
        {"rooms", required_argument, NULL, O_ROOMS},
        {"identify", no_argument, NULL, O_IDENTIFY},
        {"eio", required_argument, NULL, O_EIO},
        {"subscribe", required_argument, NULL, O_SUBSCRIBE},
        {"redis-publish", required_argument, NULL, O_RPUB},
        {"redis-key", required_argument, NULL, O_RKEY},
        {"source-addrs", required_argument, NULL, O_SRC},
        {"server-pid", required_argument, NULL, O_PID},
        {"json", required_argument, NULL, O_JSON},
        {"label", required_argument, NULL, O_LABEL},
        {"quiet", no_argument, NULL, O_QUIET},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    long clients = -1, senders = -1, settle = -1;
    double rate = -1, polling = -1;
    cfg.host = "127.0.0.1";
    cfg.port = 3001;
    cfg.path = "/socket.io/";
    cfg.scenario = SC_FANOUT;
    cfg.duration_s = 10;
    cfg.warmup_s = 1;
    cfg.drain_s = 3;
    cfg.connect_concurrency = 200;
    cfg.connect_timeout_s = 60;
    cfg.handshake_timeout_s = 15;
    cfg.payload_bytes = 64;
    cfg.window = 16;
    cfg.max_lag = 64;
    cfg.rooms = 10;
    cfg.source_addrs = 50;
    cfg.eio = 4;
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case O_HOST: cfg.host = optarg; break;
        case O_PORT: cfg.port = (unsigned)num_arg("--port", optarg, 1, 65535); break;
        case O_PATH: cfg.path = optarg; break;
        case O_SCENARIO:
            if (strcmp(optarg, "fanout") == 0) cfg.scenario = SC_FANOUT;
            else if (strcmp(optarg, "ingest") == 0) cfg.scenario = SC_INGEST;
            else if (strcmp(optarg, "idle") == 0) cfg.scenario = SC_IDLE;
            else if (strcmp(optarg, "mixed") == 0) cfg.scenario = SC_MIXED;
            else {
                fprintf(stderr, "rtload: unknown scenario %s\n", optarg);
                exit(2);
            }
            break;
        case O_CLIENTS: clients = (long)num_arg("--clients", optarg, 1, 1000000); break;
        case O_SENDERS: senders = (long)num_arg("--senders", optarg, 0, 1000000); break;
        case O_RATE: rate = num_arg("--rate", optarg, 0, 1e8); break;
        case O_WINDOW: cfg.window = (unsigned)num_arg("--window", optarg, 1, 65536); break;
        case O_MAXLAG: cfg.max_lag = (unsigned)num_arg("--max-lag", optarg, 0, 1e6); break;
        case O_DURATION: cfg.duration_s = num_arg("--duration", optarg, 0.1, 86400); break;
        case O_WARMUP: cfg.warmup_s = num_arg("--warmup", optarg, 0, 3600); break;
        case O_DRAIN: cfg.drain_s = num_arg("--drain", optarg, 0, 3600); break;
        case O_SETTLE: settle = (long)(num_arg("--settle", optarg, 0, 3600) * 1000); break;
        case O_CRATE: cfg.connect_rate = num_arg("--connect-rate", optarg, 0, 1e7); break;
        case O_CCONC:
            cfg.connect_concurrency = (unsigned)num_arg("--connect-concurrency", optarg, 1, 1e6);
            break;
        case O_CTIMEOUT: cfg.connect_timeout_s = num_arg("--connect-timeout", optarg, 0.1, 3600); break;
        case O_HTIMEOUT: cfg.handshake_timeout_s = num_arg("--handshake-timeout", optarg, 0.1, 3600); break;
        case O_POLLING: polling = num_arg("--polling-fraction", optarg, 0, 1); break;
        case O_PAYLOAD: cfg.payload_bytes = (unsigned)num_arg("--payload-bytes", optarg, 17, 1 << 19); break;
        case O_ROOMS: cfg.rooms = (unsigned)num_arg("--rooms", optarg, 1, 100000); break;
        case O_IDENTIFY: cfg.identify = true; break;
        case O_EIO: cfg.eio = (unsigned)num_arg("--eio", optarg, 3, 4); break;
        case O_SUBSCRIBE:
            if (!*optarg || strlen(optarg) > 200 || strpbrk(optarg, "\"\\")) {
                fprintf(stderr, "rtload: --subscribe wants a channel name (no quotes or backslashes)\n");
                exit(2);
            }
            cfg.subscribe = optarg;
            break;
        case O_RPUB: cfg.redis_publish = optarg; break;
        case O_RKEY:
            if (!*optarg || strlen(optarg) > 250) {
                fprintf(stderr, "rtload: --redis-key wants a channel name up to 250 bytes\n");
                exit(2);
            }
            cfg.redis_key = optarg;
            break;
        case O_SRC: cfg.source_addrs = (unsigned)num_arg("--source-addrs", optarg, 0, 254); break;
        case O_PID: cfg.server_pid = (int)num_arg("--server-pid", optarg, 1, 1 << 30); break;
        case O_JSON: cfg.json_path = optarg; break;
        case O_LABEL: cfg.label = optarg; break;
        case O_QUIET: cfg.quiet = true; break;
        case O_HELP: usage(stdout); exit(0);
        default: usage(stderr); exit(2);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "rtload: unexpected argument %s\n", argv[optind]);
        exit(2);
    }
    switch (cfg.scenario) {
    case SC_FANOUT:
        cfg.clients = clients > 0 ? (unsigned)clients : 1000;
        cfg.senders = senders >= 0 ? (unsigned)senders : 1;
        break;
    case SC_INGEST:
        cfg.clients = clients > 0 ? (unsigned)clients : 100;
        cfg.senders = senders >= 0 ? (unsigned)senders : cfg.clients;
        break;
    case SC_IDLE:
        cfg.clients = clients > 0 ? (unsigned)clients : 10000;
        cfg.senders = 0;
        break;
    case SC_MIXED:
        cfg.clients = clients > 0 ? (unsigned)clients : 1000;
        cfg.senders = senders >= 0 ? (unsigned)senders : 10;
        break;
    }
    if (cfg.senders > cfg.clients)
        cfg.senders = cfg.clients;
    cfg.rate = rate >= 0 ? rate : (cfg.scenario == SC_MIXED ? 1000 : 0);
    cfg.polling_fraction = polling >= 0 ? polling : (cfg.scenario == SC_MIXED ? 0.1 : 0);
    cfg.settle_s = settle >= 0 ? (double)settle / 1000 : (cfg.scenario == SC_IDLE ? 3 : 1);
    if (cfg.scenario == SC_IDLE)
        cfg.warmup_s = 0;
    if (cfg.redis_publish && !cfg.subscribe) {
        fprintf(stderr, "rtload: --redis-publish needs --subscribe CHANNEL\n");
        exit(2);
    }
    if (cfg.redis_publish && !cfg.redis_key) {
        static char key[256];
        snprintf(key, sizeof key, "laravel_database_%s", cfg.subscribe);
        cfg.redis_key = key;
    }
    if (cfg.eio == 3 && cfg.polling_fraction > 0) {
        fprintf(stderr, "rtload: --eio 3 speaks WebSocket only (no --polling-fraction)\n");
        exit(2);
    }
}

/* ---- scenario callbacks ---- */

static uint64_t setup_waiting;

static int32_t planned_room(const struct conn *c)
{
    if (cfg.scenario == SC_INGEST)
        return c->snd ? (int32_t)c->snd->idx : -1;
    if (cfg.scenario == SC_MIXED)
        return (int32_t)(c->id % cfg.rooms);
    return -1;
}

void on_ready(struct conn *c, int64_t now)
{
    (void)now;
    g.ready++;
    c->base_all = g.bcast_all;
    c->recv = 0;
    char pkt[256];
    if (cfg.identify) {
        int n = snprintf(pkt, sizeof pkt,
                         "42%d[\"identify\",{\"userId\":\"u%u\",\"platform\":\"web\","
                         "\"appVersion\":\"rtload\"}]",
                         ACK_IDENTIFY, c->id);
        c->setup_pending++;
        setup_waiting++;
        conn_send_packet(c, pkt, (size_t)n);
    }
    if (cfg.subscribe) { /* no answer: laravel-echo-server joins a public channel silently */
        int n = snprintf(pkt, sizeof pkt,
                         "42[\"subscribe\",{\"channel\":\"%s\",\"auth\":{\"headers\":{}}}]",
                         cfg.subscribe);
        if (n > 0 && (size_t)n < sizeof pkt)
            conn_send_packet(c, pkt, (size_t)n);
    }
    int32_t room = planned_room(c);
    if (room >= 0 && c->state == CS_READY) {
        int n = snprintf(pkt, sizeof pkt, "42%d[\"join\",{\"room\":\"r%d\"}]", ACK_JOIN, room);
        c->setup_pending++;
        setup_waiting++;
        conn_send_packet(c, pkt, (size_t)n);
    }
}

void on_setup_ack(struct conn *c, uint64_t id, bool ok)
{
    if (c->setup_pending == 0) {
        g.n.parse_errors++;
        return;
    }
    c->setup_pending--;
    setup_waiting--;
    g.setup_done++;
    if (!ok) {
        g.n.setup_errors++;
        return;
    }
    if (id == ACK_JOIN) {
        int32_t room = planned_room(c);
        c->room = room;
        g.room_members[room]++;
        c->base_room = g.room_msgs[room];
    }
}

/* A client went away: what it was still owed no longer counts as outstanding. */
void on_gone(struct conn *c, bool was_ready)
{
    setup_waiting -= c->setup_pending;
    c->setup_pending = 0;
    if (!was_ready) {
        g.handshaking--;
        return;
    }
    g.ready--;
    uint64_t owed = g.bcast_all - c->base_all;
    if (c->room >= 0) {
        owed += g.room_msgs[c->room] - c->base_room;
        g.room_members[c->room]--;
        c->room = -1;
    }
    if (owed > c->recv)
        g.lost += owed - c->recv;
    if (c->snd && g.phase != PH_DONE) { /* at the end, what is in flight is an ack timeout */
        g.n.ack_lost += c->snd->inflight;
        c->snd->inflight = 0;
    }
}

/* ---- sending ---- */

static uint64_t msg_seq;

static int32_t target_room(const struct sender *sd)
{
    if (cfg.scenario == SC_INGEST)
        return (int32_t)sd->idx;
    if (cfg.scenario == SC_MIXED && (msg_seq & 1))
        return (int32_t)((msg_seq / 2) % cfg.rooms);
    return -1;
}

static bool send_one(struct sender *sd, int64_t now)
{
    int32_t room = target_room(sd);
    if (room >= 0 && sd->c->room != room && cfg.scenario == SC_INGEST)
        return false; /* its room is not joined (refused join) */
    if (!sender_send(sd, now, room))
        return false;
    msg_seq++;
    if (room < 0) {
        g.bcast_all++;
        g.expected += g.ready;
    } else {
        g.room_msgs[room]++;
        g.expected += g.room_members[room];
    }
    return true;
}

static uint64_t outstanding(void)
{
    uint64_t done = g.n.delivered + g.lost;
    return g.expected > done ? g.expected - done : 0;
}

static int64_t t_sched0;
static uint64_t scheduled;
static unsigned rr;
static uint64_t last_delivered;
static int64_t t_last_progress;

static bool lag_blocked(int64_t now)
{
    if (cfg.rate > 0 || cfg.max_lag == 0)
        return false;
    uint64_t out = outstanding();
    uint64_t limit = (uint64_t)cfg.max_lag * (g.ready ? g.ready : 1);
    if (g.n.delivered != last_delivered) {
        last_delivered = g.n.delivered;
        t_last_progress = now;
    }
    if (out <= limit)
        return false;
    if (now - t_last_progress > STALL_NS) {
        /* Nothing arrived for a while: count the backlog as lost and go on. */
        g.lost += out;
        g.n.lag_resets++;
        t_last_progress = now;
        proto_log_limit("receivers stalled: backlog estimate reset", NULL, 0);
        return false;
    }
    return true;
}

/* --redis-publish: each PUBLISH is a broadcast to every subscribed client. */
static bool publish_one(int64_t now)
{
    if (!redis_pub_send(now))
        return false;
    msg_seq++;
    g.bcast_all++;
    g.expected += g.ready;
    return true;
}

static void run_senders(int64_t now)
{
    if (cfg.redis_publish) {
        if (cfg.rate <= 0) {
            while (!lag_blocked(now) && publish_one(now)) {
            }
            return;
        }
        uint64_t due = (uint64_t)((double)(now - t_sched0) * cfg.rate / 1e9);
        while (scheduled < due && publish_one(now))
            scheduled++;
        uint64_t cap = (uint64_t)(cfg.rate * 0.1) + 1;
        if (due > scheduled + cap) {
            g.n.rate_shortfall += due - scheduled - cap;
            scheduled = due - cap;
        }
        return;
    }
    if (g.nsenders == 0)
        return;
    if (cfg.rate <= 0) {
        for (unsigned k = 0; k < g.nsenders; k++) {
            struct sender *sd = &g.senders[(rr + k) % g.nsenders];
            while (sd->c->state == CS_READY && sd->inflight < cfg.window) {
                if (lag_blocked(now))
                    goto out;
                if (!send_one(sd, now))
                    break;
            }
        }
    out:
        rr = (rr + 1) % g.nsenders;
        return;
    }
    uint64_t due_total = (uint64_t)((double)(now - t_sched0) * cfg.rate / 1e9);
    while (scheduled < due_total) {
        bool sent = false;
        for (unsigned k = 0; k < g.nsenders && !sent; k++) {
            struct sender *sd = &g.senders[rr];
            rr = (rr + 1) % g.nsenders;
            sent = send_one(sd, now);
        }
        if (!sent)
            break;
        scheduled++;
    }
    /* Every window full: after 100 ms behind schedule, the backlog is given up. */
    uint64_t cap = (uint64_t)(cfg.rate * 0.1) + 1;
    if (due_total > scheduled + cap) {
        g.n.rate_shortfall += due_total - scheduled - cap;
        scheduled = due_total - cap;
    }
}

static int64_t next_send_due(void)
{
    if (cfg.rate <= 0)
        return INT64_MAX;
    return t_sched0 + (int64_t)((double)(scheduled + 1) * 1e9 / cfg.rate);
}

/* ---- set-up of the clients ---- */

static int setup_clients(void)
{
    g.conns = calloc(cfg.clients, sizeof *g.conns);
    g.nrooms = cfg.scenario == SC_INGEST ? cfg.senders : cfg.rooms;
    g.room_msgs = calloc(g.nrooms ? g.nrooms : 1, sizeof *g.room_msgs);
    g.room_members = calloc(g.nrooms ? g.nrooms : 1, sizeof *g.room_members);
    g.senders = calloc(cfg.senders ? cfg.senders : 1, sizeof *g.senders);
    if (!g.conns || !g.room_msgs || !g.room_members || !g.senders)
        return -1;
    double f = cfg.polling_fraction;
    for (unsigned i = 0; i < cfg.clients; i++) {
        struct conn *c = &g.conns[i];
        c->id = i;
        c->s[0].fd = c->s[1].fd = -1;
        c->room = -1;
        c->src = i;
        /* every 1/f-th client polls, spread evenly */
        c->kind = (uint64_t)((i + 1) * f) > (uint64_t)(i * f) ? K_POLL : K_WS;
    }
    unsigned ring = 1;
    while (ring < cfg.window)
        ring <<= 1;
    size_t pad = cfg.payload_bytes - 17;
    for (unsigned i = 0; i < cfg.senders; i++) {
        struct sender *sd = &g.senders[i];
        sd->idx = i;
        sd->c = &g.conns[i];
        g.conns[i].snd = sd;
        sd->next_ack = ACK_FIRST_MESSAGE;
        sd->mask = ring - 1;
        sd->ts = calloc(ring, sizeof *sd->ts);
        sd->prefix_len = (uint32_t)snprintf(sd->prefix, sizeof sd->prefix,
                                            "[\"send-message\",{\"sender\":\"s%u\",\"text\":\"T",
                                            i);
        sd->suffix = malloc(pad + 2);
        if (!sd->ts || !sd->suffix)
            return -1;
        memset(sd->suffix, 'x', pad);
        sd->suffix[pad] = '"';
        sd->suffix_len = (uint32_t)pad + 1;
    }
    g.nsenders = cfg.senders;
    return 0;
}

/* ---- the report ---- */

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

static double secs(int64_t ns)
{
    return (double)ns / 1e9;
}

static void json_lat(FILE *f, const char *name, const hist *h, bool comma)
{
    fprintf(f,
            "    \"%s\": {\"count\": %llu, \"p50\": %.4f, \"p99\": %.4f, \"p999\": %.4f, "
            "\"max\": %.4f, \"mean\": %.4f}%s\n",
            name, (unsigned long long)h->count, ms(hist_quantile(h, 0.5)),
            ms(hist_quantile(h, 0.99)), ms(hist_quantile(h, 0.999)), ms(h->count ? h->max : 0),
            hist_mean(h) / 1e6, comma ? "," : "");
}

#define D(field) ((unsigned long long)(r.c_end.field - r.c_start.field))
#define T(field) ((unsigned long long)g.n.field)

static double rss_per_conn(const struct proc_sample *at, unsigned conns)
{
    if (!at->ok || !r.before.ok || conns == 0)
        return 0;
    return (double)(at->rss_kb - r.before.rss_kb) * 1024.0 / conns;
}

struct figures {
    double window, connect_rate, sent_rate, acked_rate, deliv_rate;
    double srv_cpu, srv_cpu_pct, ns_per_delivery, self_cpu_s, self_cpu_pct;
    double rss_pc_connected, rss_pc_end;
    double cores, busy_pct, others_pct; /* the machine during the window, 100 % = one core */
};

static void compute(struct figures *fg)
{
    memset(fg, 0, sizeof *fg);
    fg->window = r.t_measure_end > r.t_measure_start
                     ? secs(r.t_measure_end - r.t_measure_start) : 0;
    int64_t cspan = g.t_last_ready - g.t_first_start;
    fg->connect_rate = cspan > 0 ? (double)g.n.established / secs(cspan) : 0;
    if (fg->window > 0) {
        fg->sent_rate = (double)D(sent) / fg->window;
        fg->acked_rate = (double)D(acked) / fg->window;
        fg->deliv_rate = (double)D(delivered) / fg->window;
        if (r.m_start.ok && r.m_end.ok) {
            fg->srv_cpu = r.m_end.cpu_s - r.m_start.cpu_s;
            fg->srv_cpu_pct = 100 * fg->srv_cpu / fg->window;
            if (D(delivered))
                fg->ns_per_delivery = fg->srv_cpu * 1e9 / (double)D(delivered);
        }
        fg->self_cpu_s = r.self_cpu_end - r.self_cpu_start;
        fg->self_cpu_pct = 100 * fg->self_cpu_s / fg->window;
        double busy = r.mach_busy_end - r.mach_busy_start;
        double total = r.mach_total_end - r.mach_total_start;
        if (total > 0) {
            fg->cores = total / fg->window;
            fg->busy_pct = 100 * busy / fg->window;
            fg->others_pct = fg->busy_pct - fg->srv_cpu_pct - fg->self_cpu_pct;
            if (fg->others_pct < 0)
                fg->others_pct = 0;
        }
    }
    fg->rss_pc_connected = rss_per_conn(&r.connected, r.ready_connected);
    fg->rss_pc_end = rss_per_conn(&r.m_end, r.ready_m_end);
}

static void write_json(FILE *f, const struct figures *fg, unsigned ready_at_end)
{
    fprintf(f, "{\n  \"tool\": \"rtload\",\n  \"label\": \"%s\",\n  \"scenario\": \"%s\",\n",
            cfg.label ? cfg.label : "", scenario_name(cfg.scenario));
    fprintf(f,
            "  \"config\": {\"clients\": %u, \"senders\": %u, \"rate\": %.1f, \"window\": %u, "
            "\"max_lag\": %u, \"duration_s\": %.3f, \"warmup_s\": %.3f, \"payload_bytes\": %u, "
            "\"polling_fraction\": %.3f, \"rooms\": %u, \"identify\": %s, \"source_addrs\": %u, "
            "\"port\": %u, \"eio\": %u, \"subscribe\": \"%s\", \"redis_publish\": %s},\n",
            cfg.clients, cfg.senders, cfg.rate, cfg.window, cfg.max_lag, cfg.duration_s,
            cfg.warmup_s, cfg.payload_bytes, cfg.polling_fraction,
            cfg.scenario == SC_MIXED ? cfg.rooms : 0, cfg.identify ? "true" : "false",
            cfg.source_addrs, cfg.port, cfg.eio, cfg.subscribe ? cfg.subscribe : "",
            cfg.redis_publish ? "true" : "false");
    fprintf(f,
            "  \"connections\": {\"started\": %llu, \"established\": %llu, \"failed\": %llu, "
            "\"not_started\": %llu, \"handshake_timeouts\": %llu, \"ready_at_end\": %u, "
            "\"connect_rate\": %.1f, \"connect_seconds\": %.3f},\n",
            T(started), T(established), T(conn_failed), (unsigned long long)r.unstarted,
            T(handshake_timeouts), ready_at_end, fg->connect_rate,
            g.t_last_ready > g.t_first_start ? secs(g.t_last_ready - g.t_first_start) : 0.0);
    fprintf(f,
            "  \"messages\": {\"window_s\": %.3f, \"sent\": %llu, \"acked\": %llu, "
            "\"delivered\": %llu, \"sent_per_s\": %.1f, \"acked_per_s\": %.1f, "
            "\"deliveries_per_s\": %.1f, \"total_sent\": %llu, \"total_acked\": %llu, "
            "\"total_delivered\": %llu, \"expected_deliveries\": %llu, \"missing_deliveries\": "
            "%llu, \"ack_timeouts\": %llu, \"rate_shortfall\": %llu},\n",
            fg->window, D(sent), D(acked), D(delivered), fg->sent_rate, fg->acked_rate,
            fg->deliv_rate, T(sent), T(acked), T(delivered), (unsigned long long)g.expected,
            (unsigned long long)r.missing, (unsigned long long)r.ack_timeouts, T(rate_shortfall));
    fprintf(f, "  \"latency_ms\": {\n");
    json_lat(f, "connect", &g.h_connect, true);
    json_lat(f, "ack", &g.h_ack, true);
    json_lat(f, "delivery", &g.h_deliver, false);
    fprintf(f, "  },\n");
    fprintf(f,
            "  \"heartbeats\": {\"ping_interval_ms\": %.0f, \"ping_timeout_ms\": %.0f, "
            "\"pings_answered\": %llu, \"late\": %llu, \"missed\": %llu, \"max_gap_ms\": %.3f, "
            "\"gap_p99_ms\": %.3f, \"gap_p999_ms\": %.3f},\n",
            ms((uint64_t)g.ping_interval_ns), ms((uint64_t)g.ping_timeout_ns), T(pings),
            T(pings_late), T(pings_missed), ms((uint64_t)g.max_ping_gap),
            ms(hist_quantile(&g.h_ping_gap, 0.99)), ms(hist_quantile(&g.h_ping_gap, 0.999)));
    /* Errors: what went wrong. Messages still unacknowledged or undelivered when the drain
     * deadline passed are a backlog (an overloaded server), reported apart. */
    unsigned long long errors = T(conn_failed) + T(closes) + T(parse_errors) + T(http_errors) +
                                T(error_events) + T(ack_errors) + T(setup_errors) + T(ack_lost);
    fprintf(f,
            "  \"errors\": {\"total\": %llu, \"conn_failed\": %llu, \"connect_errors\": %llu, "
            "\"handshake_timeouts\": %llu, \"closes\": %llu, \"ws_close_frames\": %llu, "
            "\"sio_disconnects\": %llu, \"parse_errors\": %llu, \"http_errors\": %llu, "
            "\"error_events\": %llu, \"ack_errors\": %llu, \"ack_lost\": %llu, "
            "\"ack_timeouts\": %llu, \"setup_errors\": %llu, \"lag_resets\": %llu, "
            "\"post_retries\": %llu, \"unmarked\": %llu, \"other_events\": %llu},\n",
            errors, T(conn_failed), T(connect_errors), T(handshake_timeouts), T(closes),
            T(ws_close_frames), T(sio_disconnects), T(parse_errors), T(http_errors),
            T(error_events), T(ack_errors), T(ack_lost), (unsigned long long)r.ack_timeouts,
            T(setup_errors), T(lag_resets), T(post_retries), T(unmarked), T(other_events));
    fprintf(f,
            "  \"server\": {\"pid\": %d, \"rss_before_kb\": %ld, \"rss_connected_kb\": %ld, "
            "\"rss_end_kb\": %ld, \"hwm_kb\": %ld, \"threads\": %ld, "
            "\"rss_per_conn_bytes\": %.0f, \"rss_per_conn_end_bytes\": %.0f, "
            "\"cpu_s\": %.3f, \"cpu_pct\": %.1f, \"cpu_ns_per_delivery\": %.1f},\n",
            cfg.server_pid, r.before.rss_kb, r.connected.rss_kb, r.m_end.rss_kb,
            r.end.hwm_kb ? r.end.hwm_kb : r.m_end.hwm_kb, r.m_end.threads, fg->rss_pc_connected,
            fg->rss_pc_end, fg->srv_cpu, fg->srv_cpu_pct, fg->ns_per_delivery);
    fprintf(f,
            "  \"client\": {\"cpu_s\": %.3f, \"cpu_pct\": %.1f, \"bytes_in\": %llu, "
            "\"bytes_out\": %llu, \"turn_p99_ms\": %.3f, \"turn_max_ms\": %.3f},\n",
            fg->self_cpu_s, fg->self_cpu_pct, T(bytes_in), T(bytes_out),
            ms(hist_quantile(&g.h_turn, 0.99)), ms(g.h_turn.count ? g.h_turn.max : 0));
    fprintf(f, "  \"machine\": {\"cores\": %.2f, \"busy_pct\": %.1f, \"others_pct\": %.1f}\n}\n",
            fg->cores, fg->busy_pct, fg->others_pct);
}

static void print_lat(const char *name, const hist *h)
{
    if (h->count == 0) {
        printf("  %-22s -\n", name);
        return;
    }
    printf("  %-22s p50 %8.3f   p99 %8.3f   p99.9 %8.3f   max %8.3f ms  (%llu)\n", name,
           ms(hist_quantile(h, 0.5)), ms(hist_quantile(h, 0.99)), ms(hist_quantile(h, 0.999)),
           ms(h->max), (unsigned long long)h->count);
}

static void print_table(const struct figures *fg, unsigned ready_at_end)
{
    unsigned npoll = 0;
    for (unsigned i = 0; i < cfg.clients; i++)
        npoll += g.conns[i].kind == K_POLL;
    printf("rtload %s%s%s: %u clients (%u WebSocket, %u polling), %u senders, rate %s, "
           "payload %u B, window %.1f s\n",
           scenario_name(cfg.scenario), cfg.label ? " " : "", cfg.label ? cfg.label : "",
           cfg.clients, cfg.clients - npoll, npoll, cfg.senders,
           cfg.rate > 0 ? "fixed" : "max", cfg.payload_bytes, fg->window);
    if (cfg.rate > 0)
        printf("  target rate            %.0f msg/s\n", cfg.rate);
    printf("  connections            %llu established, %llu failed, %llu not started, "
           "%u at the end\n",
           T(established), T(conn_failed), (unsigned long long)r.unstarted, ready_at_end);
    printf("  connect rate           %.0f /s\n", fg->connect_rate);
    print_lat("connect latency", &g.h_connect);
    if (cfg.senders) {
        printf("  messages sent          %llu (%.0f/s), acked %llu (%.0f/s)\n", D(sent),
               fg->sent_rate, D(acked), fg->acked_rate);
        printf("  deliveries             %llu (%.0f/s)\n", D(delivered), fg->deliv_rate);
        print_lat("ack latency", &g.h_ack);
        print_lat("delivery latency", &g.h_deliver);
        printf("  missing deliveries     %llu (of %llu expected), ack timeouts %llu\n",
               (unsigned long long)r.missing, (unsigned long long)g.expected,
               (unsigned long long)r.ack_timeouts);
    }
    printf("  heartbeats             %llu answered, %llu late, %llu missed, max gap %.1f ms "
           "(interval %.0f ms)\n",
           T(pings), T(pings_late), T(pings_missed), ms((uint64_t)g.max_ping_gap),
           ms((uint64_t)g.ping_interval_ns));
    printf("  errors                 closes %llu, conn failed %llu, timeouts %llu, parse %llu, "
           "http %llu, error events %llu, ack errors %llu\n",
           T(closes), T(conn_failed), T(handshake_timeouts), T(parse_errors), T(http_errors),
           T(error_events), T(ack_errors));
    if (cfg.server_pid) {
        printf("  server RSS             %ld kB before, %ld kB connected, %ld kB at the end "
               "(peak %ld kB)\n",
               r.before.rss_kb, r.connected.rss_kb, r.m_end.rss_kb,
               r.end.hwm_kb ? r.end.hwm_kb : r.m_end.hwm_kb);
        printf("  server RSS/connection  %.0f B connected, %.0f B at the end\n",
               fg->rss_pc_connected, fg->rss_pc_end);
        printf("  server CPU             %.2f s (%.0f %%)", fg->srv_cpu, fg->srv_cpu_pct);
        if (fg->ns_per_delivery > 0)
            printf(", %.0f ns per delivery", fg->ns_per_delivery);
        printf("\n");
    }
    printf("  rtload CPU             %.2f s (%.0f %%), loop turn p99 %.3f ms, max %.3f ms\n",
           fg->self_cpu_s, fg->self_cpu_pct, ms(hist_quantile(&g.h_turn, 0.99)),
           ms(g.h_turn.count ? g.h_turn.max : 0));
    if (fg->cores > 0)
        printf("  machine                %.0f %% busy of %.0f %% (%.0f %% by other processes)\n",
               fg->busy_pct, 100 * fg->cores, fg->others_pct);
    fflush(stdout);
}

/* ---- the loop ---- */

static void on_signal(int sig)
{
    (void)sig;
    if (stop_requested)
        _exit(130);
    stop_requested = 1;
}

static const char *phase_name(enum phase p)
{
    static const char *names[] = {"connect", "setup", "warmup", "measure", "drain", "done"};
    return names[p];
}

static void progress(int64_t now, int64_t *t_last, uint64_t *last_deliv, uint64_t *last_sent)
{
    if (cfg.quiet || now - *t_last < 1000000000)
        return;
    double dt = secs(now - *t_last);
    fprintf(stderr,
            "rtload: %-7s ready %6u  handshaking %5u  failed %5llu  sent/s %8.0f  "
            "deliveries/s %10.0f  pings %llu\n",
            phase_name(g.phase), g.ready, g.handshaking, T(conn_failed),
            (double)(g.n.sent - *last_sent) / dt, (double)(g.n.delivered - *last_deliv) / dt,
            T(pings));
    *t_last = now;
    *last_deliv = g.n.delivered;
    *last_sent = g.n.sent;
}

static void check_handshakes(int64_t now)
{
    int64_t limit = (int64_t)(cfg.handshake_timeout_s * 1e9);
    for (unsigned i = 0; i < cfg.clients; i++) {
        struct conn *c = &g.conns[i];
        /* Engine.IO 3: the client pings every pingInterval, the server answers "3" */
        if (cfg.eio == 3 && c->state == CS_READY && g.ping_interval_ns &&
            now - c->t_ping >= g.ping_interval_ns) {
            c->t_ping = now;
            g.n.pings++;
            conn_send_packet(c, "2", 1);
        }
        if ((c->state == CS_HTTP || c->state == CS_EIO_OPEN || c->state == CS_SIO_WAIT) &&
            now - c->t_start > limit) {
            g.n.handshake_timeouts++;
            conn_fail(c, "handshake timeout");
        }
    }
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rlim_t need = (rlim_t)cfg.clients + (rlim_t)(cfg.clients * cfg.polling_fraction) + 64;
        if (rl.rlim_cur < need && !cfg.quiet)
            fprintf(stderr,
                    "rtload: warning: the open-file limit (%llu) is below the %llu descriptors "
                    "this run needs\n",
                    (unsigned long long)rl.rlim_cur, (unsigned long long)need);
    }
}

int main(int argc, char **argv)
{
    parse_options(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    raise_nofile();
    rnd_seed();
    hist_init(&g.h_connect);
    hist_init(&g.h_ack);
    hist_init(&g.h_deliver);
    hist_init(&g.h_ping_gap);
    hist_init(&g.h_turn);
    g.ep = epoll_create1(EPOLL_CLOEXEC);
    if (g.ep < 0 || proto_init() < 0 || setup_clients() < 0) {
        fprintf(stderr, "rtload: cannot start: %s\n", strerror(errno));
        return 1;
    }
    if (cfg.redis_publish && redis_pub_open() < 0)
        return 1;
    read_proc(cfg.server_pid, &r.before);
    if (cfg.server_pid && !r.before.ok)
        fprintf(stderr, "rtload: warning: cannot read /proc/%d\n", cfg.server_pid);

    struct epoll_event *evs = calloc(MAX_EVENTS, sizeof *evs);
    if (!evs)
        return 1;
    int64_t t0 = now_ns();
    int64_t connect_deadline = t0 + (int64_t)(cfg.connect_timeout_s * 1e9);
    int64_t hard_deadline = connect_deadline + SETUP_TIMEOUT_NS +
                            (int64_t)((cfg.settle_s + cfg.warmup_s + cfg.duration_s +
                                       cfg.drain_s + 10) * 1e9);
    int64_t phase_end = 0, t_last_check = t0, t_prog = t0;
    uint64_t prog_deliv = 0, prog_sent = 0;
    unsigned next_conn = 0;
    g.phase = PH_CONNECT;

    while (g.phase != PH_DONE) {
        int64_t now = now_ns();
        /* timeout: the next due message, the next paced connection, else 50 ms */
        int64_t wake = now + 50000000;
        if (g.phase == PH_WARMUP || g.phase == PH_MEASURE) {
            int64_t d = next_send_due();
            if (d < wake)
                wake = d;
        }
        if (g.phase == PH_CONNECT && cfg.connect_rate > 0 && next_conn < cfg.clients) {
            int64_t d = t0 + (int64_t)((double)(next_conn + 1) * 1e9 / cfg.connect_rate);
            if (d < wake)
                wake = d;
        }
        if (phase_end && phase_end < wake)
            wake = phase_end;
        int64_t wait = wake > now ? wake - now : 0;
        struct timespec ts = {.tv_sec = wait / 1000000000, .tv_nsec = wait % 1000000000};
        int n = epoll_pwait2(g.ep, evs, MAX_EVENTS, &ts, NULL);
        if (n < 0 && errno != EINTR) {
            perror("rtload: epoll_pwait2");
            break;
        }
        int64_t t_turn = now_ns();
        for (int i = 0; i < n; i++) {
            uint64_t u = evs[i].data.u64;
            if (u == REDIS_PUB_TOKEN) {
                redis_pub_readable(now_ns());
                continue;
            }
            conn_event(&g.conns[u >> 1], (int)(u & 1), evs[i].events);
        }
        now = now_ns();

        if (stop_requested) {
            if (g.phase == PH_MEASURE || g.phase == PH_DRAIN) {
                if (g.phase == PH_MEASURE) {
                    r.t_measure_end = now;
                    r.c_end = g.n;
                    read_proc(cfg.server_pid, &r.m_end);
                r.ready_m_end = g.ready;
                    r.self_cpu_end = self_cpu();
                read_machine(&r.mach_busy_end, &r.mach_total_end);
                }
            }
            fprintf(stderr, "rtload: interrupted in phase %s\n", phase_name(g.phase));
            g.phase = PH_DONE;
            break;
        }
        if (now > hard_deadline) {
            fprintf(stderr, "rtload: hard deadline reached in phase %s\n", phase_name(g.phase));
            if (g.phase == PH_MEASURE) {
                r.t_measure_end = now;
                r.c_end = g.n;
                read_proc(cfg.server_pid, &r.m_end);
                r.ready_m_end = g.ready;
                r.self_cpu_end = self_cpu();
                read_machine(&r.mach_busy_end, &r.mach_total_end);
            }
            g.phase = PH_DONE;
            break;
        }
        if (now - t_last_check >= 100000000) {
            check_handshakes(now);
            t_last_check = now;
        }

        switch (g.phase) {
        case PH_CONNECT: {
            while (next_conn < cfg.clients && g.handshaking < cfg.connect_concurrency) {
                if (cfg.connect_rate > 0 &&
                    (double)next_conn >= secs(now - t0) * cfg.connect_rate + 1)
                    break;
                conn_start(&g.conns[next_conn++], now);
            }
            bool all = next_conn == cfg.clients && g.handshaking == 0;
            if (all || now >= connect_deadline) {
                if (!all) {
                    r.unstarted = cfg.clients - next_conn;
                    for (unsigned i = 0; i < cfg.clients; i++)
                        if (g.conns[i].state >= CS_HTTP && g.conns[i].state <= CS_SIO_WAIT) {
                            g.n.handshake_timeouts++;
                            conn_fail(&g.conns[i], "connect phase deadline");
                        }
                }
                r.t_connect_end = now;
                g.phase = PH_SETUP;
                phase_end = now + (int64_t)(cfg.settle_s * 1e9);
                if (!cfg.quiet)
                    fprintf(stderr, "rtload: %u connected in %.2f s, %llu failed\n", g.ready,
                            secs(now - t0), T(conn_failed));
            }
            break;
        }
        case PH_SETUP:
            if ((setup_waiting == 0 || now - r.t_connect_end > SETUP_TIMEOUT_NS) &&
                now >= phase_end) {
                read_proc(cfg.server_pid, &r.connected);
                r.ready_connected = g.ready;
                t_sched0 = now;
                scheduled = 0;
                t_last_progress = now;
                /* Echo receivers warm up too: another rtload may be publishing */
                if (cfg.warmup_s > 0 && (g.nsenders || cfg.subscribe)) {
                    g.phase = PH_WARMUP;
                    phase_end = now + (int64_t)(cfg.warmup_s * 1e9);
                } else {
                    phase_end = now; /* straight into measure below */
                    g.phase = PH_WARMUP;
                }
            }
            break;
        case PH_WARMUP:
            run_senders(now);
            if (now >= phase_end) {
                g.phase = PH_MEASURE;
                g.recording = true;
                r.t_measure_start = now;
                r.c_start = g.n;
                read_proc(cfg.server_pid, &r.m_start);
                r.self_cpu_start = self_cpu();
                read_machine(&r.mach_busy_start, &r.mach_total_start);
                phase_end = now + (int64_t)(cfg.duration_s * 1e9);
            }
            break;
        case PH_MEASURE:
            run_senders(now);
            if (now >= phase_end) {
                r.t_measure_end = now;
                r.c_end = g.n;
                read_proc(cfg.server_pid, &r.m_end);
                r.ready_m_end = g.ready;
                r.self_cpu_end = self_cpu();
                read_machine(&r.mach_busy_end, &r.mach_total_end);
                g.recording = false;
                g.phase = PH_DRAIN;
                phase_end = now + (int64_t)(cfg.drain_s * 1e9);
            }
            break;
        case PH_DRAIN: {
            unsigned inflight = 0;
            for (unsigned i = 0; i < g.nsenders; i++)
                inflight += g.senders[i].inflight;
            if (cfg.redis_publish)
                inflight += redis_pub_inflight();
            if ((inflight == 0 && outstanding() == 0) || now >= phase_end) {
                g.phase = PH_DONE;
                phase_end = 0;
            }
            break;
        }
        case PH_DONE:
            break;
        }
        conn_flush_dirty();
        if (n > 0)
            hist_add(&g.h_turn, (uint64_t)(now_ns() - t_turn));
        progress(now, &t_prog, &prog_deliv, &prog_sent);
    }

    for (unsigned i = 0; i < g.nsenders; i++)
        r.ack_timeouts += g.senders[i].inflight;
    if (cfg.redis_publish) {
        r.ack_timeouts += redis_pub_inflight();
        redis_pub_close();
    }
    r.missing = outstanding();
    if (!r.m_end.ok) {
        read_proc(cfg.server_pid, &r.m_end);
        r.ready_m_end = g.ready;
    }
    if (!r.connected.ok) {
        r.connected = r.m_end;
        r.ready_connected = r.ready_m_end;
    }
    read_proc(cfg.server_pid, &r.end);
    unsigned ready_at_end = g.ready;
    enum phase reached = g.phase;
    g.phase = PH_DONE;
    for (unsigned i = 0; i < cfg.clients; i++)
        conn_close(&g.conns[i]);
    (void)reached;

    struct figures fg;
    compute(&fg);
    print_table(&fg, ready_at_end);
    if (cfg.json_path) {
        FILE *f = strcmp(cfg.json_path, "-") == 0 ? stdout : fopen(cfg.json_path, "w");
        if (!f) {
            fprintf(stderr, "rtload: cannot write %s: %s\n", cfg.json_path, strerror(errno));
            return 1;
        }
        write_json(f, &fg, ready_at_end);
        if (f != stdout)
            fclose(f);
    }
    return stop_requested ? 130 : 0;
}
