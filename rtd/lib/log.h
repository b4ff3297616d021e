/* log.h: the daemon's log, in the guide's format:
 *   [2024-11-08T12:00:00.000Z] [INFO] Client connected {"socketId":"..."}
 * One line per call, written with a single write(2) so lines from the writer thread never
 * interleave with the loop's. Goes to stderr, or to a file that SIGHUP reopens. */
#ifndef RTD_LOG_H
#define RTD_LOG_H

#include <stdbool.h>

enum rlog_level { RLOG_ERROR = 0, RLOG_WARN = 1, RLOG_INFO = 2, RLOG_DEBUG = 3 };

/* path NULL: stderr. Returns 0, or -1 if the file cannot be opened. */
int rlog_init(enum rlog_level level, const char *path);
/* Reopens the log file (after rotation), keeping its descriptor number, so that other
 * threads may log meanwhile. Loop thread only. Returns 0 or -1. */
int rlog_reopen(void);
void rlog_close(void);
/* Parses "error", "warn", "info", "debug". Returns 0 or -1. */
int rlog_parse_level(const char *s, enum rlog_level *out);
bool rlog_enabled(enum rlog_level level);
/* msg is plain text; data, if not NULL, is a JSON object's text appended after a space. */
void rlog(enum rlog_level level, const char *msg, const char *data);
/* data built from a printf format (the caller writes valid JSON). */
void rlogf(enum rlog_level level, const char *msg, const char *data_fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* s escaped for a JSON string in rlogf's data (quotes, backslashes, control bytes), cut
 * to at most about 300 bytes on a character boundary. The result lives in one of four
 * per-thread buffers, so at most four may be used in one call. NULL gives "". */
const char *rlog_esc(const char *s);

#endif
