/* sio_recovery.c: the socket side of connection-state recovery (see sio.h).
 *
 * A restoring socket is in its namespace and rooms under its old id, but the client has no
 * CONNECT answer yet: what is sent to it meanwhile (live broadcasts) is held, referenced, in
 * order. sio_recovery_done answers CONNECT after the replayed events, as Node.js puts the
 * missed packets first, then releases the held packets, skipping the events the replay
 * already carried (a message committed while the replay was read reaches both). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "rtd/socketio/sio_internal.h"

void sio_set_recovery_hooks(sio_server *srv, sio_restore_fn *restore, sio_close_hook *close,
                            void *ud)
{
    srv->restore = restore;
    srv->close_hook = close;
    srv->recovery_ud = ud;
}

bool sio_socket_restoring(const sio_socket *s)
{
    return s->restoring;
}

bool sio_reason_recoverable(const char *reason)
{
    static const char *const ok[] = {"transport error", "transport close", "forced close",
                                     "ping timeout", "server shutting down",
                                     "forced server close"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (strcmp(reason, ok[i]) == 0)
            return true;
    return false;
}

int sio_recovery_hold(sio_socket *s, sio_packet *p)
{
    if (s->nheld == s->capheld) {
        size_t cap = s->capheld ? s->capheld * 2 : 16;
        sio_packet **h = realloc(s->held, cap * sizeof *h);
        if (!h)
            return -1;
        s->held = h;
        s->capheld = cap;
    }
    p->refs++;
    s->held[s->nheld++] = p;
    return 0;
}

void sio_recovery_free(sio_socket *s)
{
    for (size_t i = 0; i < s->nheld; i++)
        sio_packet_unref(s->held[i]);
    free(s->held);
    s->held = NULL;
    s->nheld = s->capheld = 0;
}

int sio_recovery_replay(sio_socket *s, sio_packet *p)
{
    bool r = s->restoring;
    s->restoring = false;
    int rc = sio_send(s, p);
    s->restoring = r;
    return rc;
}

void sio_recovery_done(sio_socket *s, bool recovered, int64_t last_offset)
{
    if (!s->restoring)
        return;
    s->restoring = false;
    if (!recovered)
        util_random_id(s->pid);
    sio_send_connect(s);
    for (size_t i = 0; i < s->nheld; i++)
        if (!(s->held[i]->offset > 0 && s->held[i]->offset <= last_offset))
            sio_send(s, s->held[i]);
    sio_recovery_free(s);
}
