/* auth.c: HS256 handshake tokens (see auth.h). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jwt.h>

#include "rtd/auth.h"

char *auth_load_secret(const char *path, size_t *len, char **err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        char msg[512];
        snprintf(msg, sizeof msg, "cannot read --auth-secret %s: %s", path, strerror(errno));
        *err = strdup(msg);
        return NULL;
    }
    char *secret = malloc(4097);
    size_t n = secret ? fread(secret, 1, 4097, f) : 0;
    fclose(f);
    if (!secret || n > 4096) {
        free(secret);
        *err = strdup("--auth-secret: the secret must be at most 4096 bytes");
        return NULL;
    }
    while (n > 0 && (secret[n - 1] == '\n' || secret[n - 1] == '\r'))
        n--;
    if (n < 16) {
        free(secret);
        *err = strdup("--auth-secret: the secret must be at least 16 bytes");
        return NULL;
    }
    secret[n] = '\0';
    *len = n;
    return secret;
}

int auth_verify(const char *secret, size_t secret_len, const char *token, int64_t now_s,
                char **subject, const char **reason)
{
    *subject = NULL;
    if (!token || !*token || strlen(token) > 8192) {
        *reason = "missing token";
        return -1;
    }
    jwt_t *jwt = NULL;
    if (jwt_decode(&jwt, token, (const unsigned char *)secret, (int)secret_len) != 0 || !jwt) {
        *reason = "bad signature or malformed token";
        return -1;
    }
    int rc = -1;
    if (jwt_get_alg(jwt) != JWT_ALG_HS256) {
        *reason = "algorithm must be HS256";
        goto out;
    }
    errno = 0;
    long exp = jwt_get_grant_int(jwt, "exp");
    if (errno != ENOENT && (errno != 0 || exp <= now_s)) {
        *reason = "token expired";
        goto out;
    }
    errno = 0;
    long nbf = jwt_get_grant_int(jwt, "nbf");
    if (errno != ENOENT && (errno != 0 || nbf > now_s)) {
        *reason = "token not yet valid";
        goto out;
    }
    const char *sub = jwt_get_grant(jwt, "sub");
    if (!sub || !*sub || strlen(sub) > 128) {
        *reason = "token has no subject";
        goto out;
    }
    *subject = strdup(sub);
    rc = *subject ? 0 : -1;
out:
    jwt_free(jwt);
    return rc;
}
