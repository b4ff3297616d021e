/* log.c: the guide's log line format on stderr or a reopenable file (see log.h). */
#include "config.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "rtd/lib/buf.h"
#include "rtd/lib/log.h"
#include "rtd/lib/util.h"

static enum rlog_level cur_level = RLOG_INFO;
static int log_fd = 2;
static char log_path[4096];

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

int rlog_init(enum rlog_level level, const char *path)
{
    cur_level = level;
    if (!path) {
        log_path[0] = '\0';
        log_fd = 2;
        return 0;
    }
    if (strlen(path) >= sizeof log_path)
        return -1;
    strcpy(log_path, path);
    return rlog_reopen();
}

int rlog_reopen(void)
{
    if (!log_path[0])
        return 0;
    int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    if (log_fd <= 2) {
        log_fd = fd; /* at start, before any other thread */
        return 0;
    }
    /* The store's threads write to log_fd without a lock: the new file takes the place of
     * the old one under the same number in one step (dup3), so no write ever goes to a
     * number that is closed, or reused by a socket or the database in between. */
    int r = dup3(fd, log_fd, O_CLOEXEC);
    close(fd);
    return r < 0 ? -1 : 0;
}

void rlog_close(void)
{
    if (log_fd > 2)
        close(log_fd);
    log_fd = 2;
}

int rlog_parse_level(const char *s, enum rlog_level *out)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (enum rlog_level)i;
            return 0;
        }
    return -1;
}

bool rlog_enabled(enum rlog_level level)
{
    return level <= cur_level;
}

static void emit(enum rlog_level level, const char *msg, const char *data)
{
    char ts[25];
    util_format_iso_time(util_wall_ms(), ts);
    char line[2048];
    int n = snprintf(line, sizeof line, "[%s] [%s] %s%s%s\n", ts, level_names[level], msg,
                     data && *data ? " " : "", data ? data : "");
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line) {
        n = sizeof line - 1;
        line[n - 1] = '\n';
    }
    ssize_t w = write(log_fd, line, (size_t)n);
    (void)w;
}

void rlog(enum rlog_level level, const char *msg, const char *data)
{
    if (rlog_enabled(level))
        emit(level, msg, data);
}

const char *rlog_esc(const char *s)
{
    enum { SLOTS = 4, CAP = 320, LIMIT = 300 };
    static _Thread_local char slots[SLOTS][CAP];
    static _Thread_local unsigned next;
    char *out = slots[next++ % SLOTS];
    size_t o = 0;
    static const char hex[] = "0123456789abcdef";
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (o >= LIMIT && (*p & 0xC0) != 0x80)
            break; /* cut before a character's first byte, never inside one */
        if (o + 6 >= CAP) {
            if ((*p & 0xC0) == 0x80) { /* cut inside a character: drop its first bytes */
                while (o > 0 && ((unsigned char)out[o - 1] & 0xC0) == 0x80)
                    o--;
                if (o > 0)
                    o--;
            }
            break;
        }
        if (*p == '"' || *p == '\\') {
            out[o++] = '\\';
            out[o++] = (char)*p;
        } else if (*p < 0x20) {
            out[o++] = '\\';
            out[o++] = 'u';
            out[o++] = '0';
            out[o++] = '0';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        } else {
            out[o++] = (char)*p;
        }
    }
    out[o] = 0;
    return out;
}

void rlogf(enum rlog_level level, const char *msg, const char *data_fmt, ...)
{
    if (!rlog_enabled(level))
        return;
    char data[1536];
    va_list ap;
    va_start(ap, data_fmt);
    vsnprintf(data, sizeof data, data_fmt, ap);
    va_end(ap);
    emit(level, msg, data);
}
