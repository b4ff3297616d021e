/* main.c: admin-fcgi's entry point: flags, the database check, then one of three ways to
 * serve: a FastCGI responder on --listen (a unix socket path or host:port) with a few
 * worker threads; a FastCGI responder on the socket a FastCGI server passed as stdin; or,
 * started by hand or by a CGI server, one request answered as plain CGI from the
 * environment and stdin. --create-admin is a command instead of a server. */
#include "config.h"

#include <errno.h>
#include <fcgiapp.h>
#include <getopt.h>
#include <grp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "admin-fcgi/admin.h"
#include "admin-fcgi/auth.h"
#include "admin-fcgi/tmpl.h"

extern char **environ;

static const char *const all_templates[] = {
    "page.tpl",      "error.tpl",    "landing.tpl",     "login.tpl",
    "dashboard.tpl", "messages.tpl", "connections.tpl",
};

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: admin-fcgi --db FILE|URL [options]\n"
            "       admin-fcgi --db FILE|URL --create-admin NAME   (password on stdin)\n"
            "Serves the landing page and the admin site of the platform over FastCGI.\n"
            "Without --listen and not started by a FastCGI server, answers one CGI request.\n"
            "\n"
            "  --db FILE|URL           the platform's SQLite database (created if missing), or\n"
            "                          a PostgreSQL URL (postgresql://USER@HOST/DB; PG* vars)\n"
            "  --listen ADDR           FastCGI socket: a unix socket path or host:port\n"
            "  --socket-mode MODE      permissions of a unix socket (octal, default 0660)\n"
            "  --socket-group GROUP    group of a unix socket (default: the process's)\n"
            "  --workers N             FastCGI worker threads (default 4)\n"
            "  --templates DIR         template folder (default %s/templates)\n"
            "  --site-name TEXT        name shown on the pages (default \"APG Socket\")\n"
            "  --launch-date TIME      countdown target, e.g. 2027-01-01T00:00:00Z\n"
            "  --session-ttl SECONDS   admin session lifetime (default 43200)\n"
            "  --page-size N           rows per history page (default 50)\n"
            "  --scan-rows N           rows a text search reads per page (default 100000)\n"
            "  --login-failures N      failed logins of an address for one name that lock it,\n"
            "                          and of a name after which it slows down (default 5)\n"
            "  --login-address-failures N  failed logins that lock an address (default 20)\n"
            "  --login-window SECONDS  ... when within this time (default 900)\n"
            "  --login-lockout SECONDS how long a lock lasts (default 900)\n"
            "  --subscribe-limit N     subscriptions per client address (default 10) ...\n"
            "  --subscribe-window SECONDS  ... within this time (default 900)\n"
            "  --body-max BYTES        largest form body accepted (default 65536)\n"
            "  --busy-timeout MS       how long a write waits for the database (default 5000)\n"
            "  --refresh SECONDS       dashboard refresh interval (default 5)\n"
            "  --create-admin NAME     create the admin NAME or reset its password\n"
            "  --help, --version\n",
            RTD_DATADIR);
}

enum {
    OPT_DB = 256,
    OPT_LISTEN,
    OPT_SOCKET_MODE,
    OPT_SOCKET_GROUP,
    OPT_WORKERS,
    OPT_TEMPLATES,
    OPT_SITE_NAME,
    OPT_LAUNCH,
    OPT_TTL,
    OPT_PAGE_SIZE,
    OPT_SCAN_ROWS,
    OPT_LOGIN_FAILURES,
    OPT_LOGIN_ADDR_FAILURES,
    OPT_LOGIN_WINDOW,
    OPT_LOGIN_LOCKOUT,
    OPT_SUBSCRIBE_LIMIT,
    OPT_SUBSCRIBE_WINDOW,
    OPT_BODY_MAX,
    OPT_BUSY,
    OPT_REFRESH,
    OPT_CREATE_ADMIN,
    OPT_HELP,
    OPT_VERSION,
};

static const struct option options[] = {
    {"db", required_argument, NULL, OPT_DB},
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"socket-mode", required_argument, NULL, OPT_SOCKET_MODE},
    {"socket-group", required_argument, NULL, OPT_SOCKET_GROUP},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {"templates", required_argument, NULL, OPT_TEMPLATES},
    {"site-name", required_argument, NULL, OPT_SITE_NAME},
    {"launch-date", required_argument, NULL, OPT_LAUNCH},
    {"session-ttl", required_argument, NULL, OPT_TTL},
    {"page-size", required_argument, NULL, OPT_PAGE_SIZE},
    {"scan-rows", required_argument, NULL, OPT_SCAN_ROWS},
    {"login-failures", required_argument, NULL, OPT_LOGIN_FAILURES},
    {"login-address-failures", required_argument, NULL, OPT_LOGIN_ADDR_FAILURES},
    {"login-window", required_argument, NULL, OPT_LOGIN_WINDOW},
    {"login-lockout", required_argument, NULL, OPT_LOGIN_LOCKOUT},
    {"subscribe-limit", required_argument, NULL, OPT_SUBSCRIBE_LIMIT},
    {"subscribe-window", required_argument, NULL, OPT_SUBSCRIBE_WINDOW},
    {"body-max", required_argument, NULL, OPT_BODY_MAX},
    {"busy-timeout", required_argument, NULL, OPT_BUSY},
    {"refresh", required_argument, NULL, OPT_REFRESH},
    {"create-admin", required_argument, NULL, OPT_CREATE_ADMIN},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

struct flags {
    struct app_config cfg;
    const char *listen;
    const char *create_admin;
    const char *socket_group;
    unsigned workers;
    mode_t socket_mode;
};

static int number(const char *flag, const char *arg, long long min, long long max, long long *out)
{
    if (util_parse_ll(arg, min, max, out) < 0) {
        fprintf(stderr, "admin-fcgi: %s wants a number from %lld to %lld, not \"%s\"\n", flag, min,
                max, arg);
        return -1;
    }
    return 0;
}

static int parse_flags(int argc, char **argv, struct flags *f)
{
    memset(f, 0, sizeof *f);
    app_config_defaults(&f->cfg);
    f->workers = 4;
    f->socket_mode = 0660;
    int opt;
    long long v;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        const char *name = options[opt >= OPT_DB && opt <= OPT_VERSION ? opt - OPT_DB : 0].name;
        char flag[40];
        snprintf(flag, sizeof flag, "--%s", name);
        switch (opt) {
        case OPT_DB:
            f->cfg.db_path = optarg;
            break;
        case OPT_LISTEN:
            f->listen = optarg;
            break;
        case OPT_SOCKET_MODE: {
            char *end;
            unsigned long m = strtoul(optarg, &end, 8);
            if (*end || !*optarg || m > 0777) {
                fprintf(stderr, "admin-fcgi: --socket-mode wants an octal mode like 0660\n");
                return -1;
            }
            f->socket_mode = (mode_t)m;
            break;
        }
        case OPT_SOCKET_GROUP:
            f->socket_group = optarg;
            break;
        case OPT_WORKERS:
            if (number(flag, optarg, 1, 64, &v) < 0)
                return -1;
            f->workers = (unsigned)v;
            break;
        case OPT_TEMPLATES:
            f->cfg.templates_dir = optarg;
            break;
        case OPT_SITE_NAME:
            f->cfg.site_name = optarg;
            break;
        case OPT_LAUNCH: {
            int64_t ms;
            if (util_parse_ts(optarg, &ms, NULL) < 0) {
                fprintf(stderr,
                        "admin-fcgi: --launch-date wants a UTC time like "
                        "2027-01-01T00:00:00Z, not \"%s\"\n",
                        optarg);
                return -1;
            }
            f->cfg.launch_ms = ms;
            break;
        }
        case OPT_TTL:
            if (number(flag, optarg, 60, 90LL * 86400, &v) < 0)
                return -1;
            f->cfg.session_ttl = (long)v;
            break;
        case OPT_PAGE_SIZE:
            if (number(flag, optarg, 1, 1000, &v) < 0)
                return -1;
            f->cfg.page_size = (unsigned)v;
            break;
        case OPT_SCAN_ROWS:
            if (number(flag, optarg, 1000, 100000000, &v) < 0)
                return -1;
            f->cfg.scan_rows = (unsigned)v;
            break;
        case OPT_LOGIN_FAILURES:
            if (number(flag, optarg, 1, 1000, &v) < 0)
                return -1;
            f->cfg.login_max_failures = (unsigned)v;
            break;
        case OPT_LOGIN_ADDR_FAILURES:
            if (number(flag, optarg, 1, 100000, &v) < 0)
                return -1;
            f->cfg.login_addr_failures = (unsigned)v;
            break;
        case OPT_LOGIN_WINDOW:
            if (number(flag, optarg, 1, 86400, &v) < 0)
                return -1;
            f->cfg.login_window = (long)v;
            break;
        case OPT_LOGIN_LOCKOUT:
            if (number(flag, optarg, 1, 86400, &v) < 0)
                return -1;
            f->cfg.login_lockout = (long)v;
            break;
        case OPT_SUBSCRIBE_LIMIT:
            if (number(flag, optarg, 1, 100000, &v) < 0)
                return -1;
            f->cfg.subscribe_limit = (unsigned)v;
            break;
        case OPT_SUBSCRIBE_WINDOW:
            if (number(flag, optarg, 1, 86400, &v) < 0)
                return -1;
            f->cfg.subscribe_window = (long)v;
            break;
        case OPT_BODY_MAX:
            if (number(flag, optarg, 1024, 16 * 1024 * 1024, &v) < 0)
                return -1;
            f->cfg.body_max = (size_t)v;
            break;
        case OPT_BUSY:
            if (number(flag, optarg, 0, 600000, &v) < 0)
                return -1;
            f->cfg.busy_timeout_ms = (int)v;
            break;
        case OPT_REFRESH:
            if (number(flag, optarg, 1, 3600, &v) < 0)
                return -1;
            f->cfg.refresh_seconds = (unsigned)v;
            break;
        case OPT_CREATE_ADMIN:
            f->create_admin = optarg;
            break;
        case OPT_HELP:
            usage(stdout);
            exit(0);
        case OPT_VERSION:
            printf("admin-fcgi %s\n", PACKAGE_VERSION);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "admin-fcgi: unexpected argument \"%s\"\n", argv[optind]);
        return -1;
    }
    if (!f->cfg.db_path) {
        fprintf(stderr, "admin-fcgi: --db FILE|URL is required (see --help)\n");
        return -1;
    }
    return 0;
}

/* ---- --create-admin ------------------------------------------------------------------ */

static int read_password(char *out, size_t n)
{
    bool tty = isatty(STDIN_FILENO);
    struct termios old, quiet;
    if (tty) {
        fprintf(stderr, "Password: ");
        tcgetattr(STDIN_FILENO, &old);
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    char *line = fgets(out, (int)n, stdin);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fprintf(stderr, "\n");
    }
    if (!line)
        return -1;
    size_t len = strlen(out);
    if (len == n - 1 && out[len - 1] != '\n')
        return -1; /* longer than we take */
    while (len && (out[len - 1] == '\n' || out[len - 1] == '\r'))
        out[--len] = '\0';
    return 0;
}

static int create_admin(const struct flags *f)
{
    char password[1100];
    if (read_password(password, sizeof password) < 0) {
        fprintf(stderr, "admin-fcgi: no password on stdin (one line, at most 1024 bytes)\n");
        return 1;
    }
    struct app a;
    char *err = NULL;
    if (app_open(&a, &f->cfg, &err) < 0) {
        fprintf(stderr, "admin-fcgi: %s\n", err);
        free(err);
        return 1;
    }
    struct dbi *rw = app_rw(&a, &err);
    bool created = false;
    int rc = rw ? auth_set_admin(rw, f->create_admin, password, &created, &err) : -1;
    memset(password, 0, sizeof password);
    app_close(&a);
    if (rc < 0) {
        fprintf(stderr, "admin-fcgi: %s\n", err ? err : "failed");
        free(err);
        return 1;
    }
    fprintf(stderr, "admin-fcgi: admin \"%s\" %s\n", f->create_admin,
            created ? "created" : "updated (its sessions were ended)");
    return 0;
}

/* ---- CGI ----------------------------------------------------------------------------- */

static ssize_t stdin_read(void *ctx, char *p, size_t n)
{
    (void)ctx;
    size_t got = fread(p, 1, n, stdin);
    return got ? (ssize_t)got : (ferror(stdin) ? -1 : 0);
}

static int stdout_write(void *ctx, const char *p, size_t n)
{
    (void)ctx;
    return fwrite(p, 1, n, stdout) == n ? 0 : -1;
}

static int serve_cgi(const struct app_config *cfg)
{
    struct app a;
    char *err = NULL;
    if (app_open(&a, cfg, &err) < 0) {
        admin_log("%s", err);
        free(err);
        fputs("Status: 503 Service Unavailable\r\nContent-Type: text/plain\r\n\r\n"
              "503 Service Unavailable\n",
              stdout);
        return 1;
    }
    struct http_io io = {environ, stdin_read, stdout_write, NULL};
    app_handle(&a, &io);
    app_close(&a);
    return fflush(stdout) == 0 ? 0 : 1;
}

/* ---- FastCGI ------------------------------------------------------------------------- */

static pthread_mutex_t accept_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *volatile socket_path;

struct worker {
    pthread_t thread;
    int fd;
    const struct app_config *cfg;
};

static ssize_t fcgi_read(void *ctx, char *p, size_t n)
{
    FCGX_Request *r = ctx;
    int got = FCGX_GetStr(p, n > 65536 ? 65536 : (int)n, r->in);
    return got < 0 ? -1 : got;
}

static int fcgi_write(void *ctx, const char *p, size_t n)
{
    FCGX_Request *r = ctx;
    while (n) {
        int chunk = n > 65536 ? 65536 : (int)n;
        if (FCGX_PutStr(p, chunk, r->out) != chunk)
            return -1;
        p += chunk;
        n -= (size_t)chunk;
    }
    return 0;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct app a;
    char *err = NULL;
    if (app_open(&a, w->cfg, &err) < 0) {
        admin_log("worker: %s", err);
        free(err);
        return NULL;
    }
    FCGX_Request req;
    if (FCGX_InitRequest(&req, w->fd, 0) != 0) {
        app_close(&a);
        return NULL;
    }
    for (;;) {
        pthread_mutex_lock(&accept_lock);
        int rc = FCGX_Accept_r(&req);
        pthread_mutex_unlock(&accept_lock);
        if (rc < 0)
            break;
        struct http_io io = {req.envp, fcgi_read, fcgi_write, &req};
        app_handle(&a, &io);
        FCGX_Finish_r(&req);
    }
    FCGX_Free(&req, 1);
    app_close(&a);
    return NULL;
}

static void on_signal(int sig)
{
    (void)sig;
    if (socket_path)
        unlink(socket_path);
    _exit(0);
}

static int serve_fcgi(const struct flags *f, bool inherited)
{
    for (size_t i = 0; i < sizeof all_templates / sizeof all_templates[0]; i++)
        if (tmpl_check(all_templates[i]) < 0) {
            admin_log("template %s/%s is missing or invalid", f->cfg.templates_dir,
                      all_templates[i]);
            return 1;
        }
    if (FCGX_Init() != 0) {
        admin_log("FCGX_Init failed");
        return 1;
    }
    int fd = 0;
    if (!inherited) {
        bool unix_path = !strchr(f->listen, ':');
        struct stat sb;
        if (unix_path && stat(f->listen, &sb) == 0 && S_ISSOCK(sb.st_mode))
            unlink(f->listen); /* a stale socket from an earlier run */
        fd = FCGX_OpenSocket(f->listen, 128);
        if (fd < 0) {
            admin_log("cannot listen on %s: %s", f->listen, strerror(errno));
            return 1;
        }
        if (unix_path) {
            socket_path = f->listen;
            if (f->socket_group) {
                struct group *g = getgrnam(f->socket_group);
                if (!g || chown(f->listen, (uid_t)-1, g->gr_gid) < 0) {
                    admin_log("cannot give %s to group %s: %s", f->listen, f->socket_group,
                              g ? strerror(errno) : "no such group");
                    unlink(f->listen);
                    return 1;
                }
            }
            if (chmod(f->listen, f->socket_mode) < 0)
                admin_log("chmod %s: %s", f->listen, strerror(errno));
        }
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    admin_log("serving FastCGI on %s with %u workers (database %s)",
              inherited ? "the inherited socket" : f->listen, f->workers, f->cfg.db_path);
    struct worker *w = calloc(f->workers, sizeof *w);
    if (!w)
        return 1;
    unsigned started = 0;
    for (unsigned i = 0; i < f->workers; i++) {
        w[i].fd = fd;
        w[i].cfg = &f->cfg;
        if (pthread_create(&w[i].thread, NULL, worker_main, &w[i]) == 0)
            started++;
    }
    for (unsigned i = 0; i < started; i++)
        pthread_join(w[i].thread, NULL);
    free(w);
    admin_log("all workers stopped");
    return 1;
}

int main(int argc, char **argv)
{
    struct flags f;
    if (parse_flags(argc, argv, &f) < 0)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    char *err = NULL;
    if (app_prepare_db(&f.cfg, &err) < 0) {
        admin_log("%s: %s", f.cfg.db_path, err ? err : "cannot prepare the database");
        free(err);
        return 1;
    }
    if (f.create_admin)
        return create_admin(&f);
    if (tmpl_init(f.cfg.templates_dir) < 0) {
        admin_log("cannot use the template folder %s", f.cfg.templates_dir);
        return 1;
    }
    if (f.listen)
        return serve_fcgi(&f, false);
    if (!FCGX_IsCGI())
        return serve_fcgi(&f, true);
    return serve_cgi(&f.cfg);
}
