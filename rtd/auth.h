/* auth.h: verification of the HS256 JSON Web Tokens that clients present in the Socket.IO
 * handshake (auth.token) when rtd runs with --auth-secret. Verification is libjwt's; this
 * file adds the policy: HS256 only, exp and nbf honoured, sub required. */
#ifndef RTD_AUTH_H
#define RTD_AUTH_H

#include <stddef.h>
#include <stdint.h>

/* Reads the secret from path (trailing newlines trimmed). Returns a malloc'ed buffer and
 * its length, or NULL with a malloc'ed *err. */
char *auth_load_secret(const char *path, size_t *len, char **err);

/* Checks token against secret at time now_s (seconds since the epoch). On success returns 0
 * and a malloc'ed copy of the token's subject (the caller frees it). On failure returns -1
 * and a static reason. */
int auth_verify(const char *secret, size_t secret_len, const char *token, int64_t now_s,
                char **subject, const char **reason);

#endif
