/* auth.h: admin logins, sessions, CSRF tokens and login throttling.
 *
 * Passwords are yescrypt hashes made and checked by libcrypt (libxcrypt) and compared in
 * constant time. A session is 32 bytes from OpenSSL's CSPRNG, sent as a cookie (HttpOnly,
 * SameSite=Strict, Secure over https, Path=/admin) and stored only as its SHA-256, with an
 * expiry and its own CSRF token. Anonymous forms (the landing page's subscription, the login
 * form) use a double-submit token: a random cookie repeated in a hidden field.
 * Throttling (table login_failures, see auth.c): failures lock an address for a name
 * (login_max_failures) or for every name (login_addr_failures) for login_lockout; a name
 * failed too often from anywhere only slows down the addresses that failed, so a correct
 * password from an address that has not failed is always checked. Each attempt is counted
 * before its password is hashed, so concurrent attempts cannot pass the limits.
 *
 * Everything here works on the ctx of the current request; results that carry text are
 * written into caller-provided buffers; *err strings are malloc'ed for the caller to free. */
#ifndef ADMIN_AUTH_H
#define ADMIN_AUTH_H

#include <stdbool.h>


#include "admin-fcgi/admin.h"

/* Fills c->session from the session cookie when it names a live session. Returns 0 (also
 * when there is none), or -1 and *err when the database failed. */
int auth_load_session(struct ctx *c, char **err);

/* The token for an anonymous form: the request's CSRF cookie when it has a well-formed one,
 * or a fresh one that is also queued as a cookie. Never NULL (an empty string when the
 * random generator failed, which no check accepts). */
const char *auth_anon_csrf(struct ctx *c);
/* The POST's "csrf" field against the session's token (session true) or the CSRF cookie. */
bool auth_check_csrf(struct ctx *c, bool session);

enum auth_result { AUTH_OK, AUTH_BAD, AUTH_LOCKED, AUTH_ERROR };
/* Checks name and password and on success starts a session: the cookie is queued on the
 * response. AUTH_LOCKED (the password was not checked) sets *retry_after (seconds).
 * AUTH_ERROR sets *err. */
enum auth_result auth_login(struct ctx *c, const char *user, const char *password,
                            long *retry_after, char **err);
/* Counts one request of the anonymous form `what` (e.g. "subscribe") from the client's
 * address (an IPv6 address as its /64) against `limit` per `window_s` seconds, in table
 * rate_limits. Returns 0 (go ahead), 1 (over the limit; *retry_after set, seconds), -2 when
 * the database stayed locked, or -1 and *err. */
int auth_rate_limit(struct ctx *c, const char *what, unsigned limit, long window_s,
                    long *retry_after, char **err);

/* Ends the current session (deletes its row and the cookie). Returns 0 or -1 and *err. */
int auth_logout(struct ctx *c, char **err);

/* Creates the admin `name` or resets its password (ending its sessions). *created tells
 * which. Returns 0, or -1 and *err (bad name, short password, database failure). */
int auth_set_admin(struct dbi *rw, const char *name, const char *password, bool *created, char **err);

/* yescrypt hash of password as a malloc'ed string, or NULL. */
char *auth_hash_password(const char *password);
/* true when password matches the stored hash (constant-time comparison). */
bool auth_verify_password(const char *password, const char *hash);

#endif
