/* eio_transport.h: what an Engine.IO transport offers the session core (eio.c).
 *
 * A session holds its active transport and, while upgrading, the probe as {ops, t} pairs
 * and drives them only through these calls: the session core includes no transport's
 * header. A transport reports back through the session's interface (eio_session.h):
 * packets in, its end, the probe's progress, an output overflow. The server front
 * (eio_server.c) is the one place that knows both transports by name: it routes requests
 * to them and flushes them at the end of each loop turn.
 *
 * The long-polling transport keeps its state in the session (the held GET and the packets
 * waiting for the next one), so its t is NULL; the WebSocket transport's t is its wsconn. */
#ifndef RTD_EIO_TRANSPORT_H
#define RTD_EIO_TRANSPORT_H

#include <stdbool.h>

#include "rtd/engine/eio_packet.h"

typedef struct eio_session eio_session;

/* How the session ends its use of a transport. */
enum eio_transport_end {
    EIO_END_CLIENT,   /* the client asked to close: a clean goodbye */
    EIO_END_SERVER,   /* the server closed it, or the transport failed */
    EIO_END_GRACEFUL, /* the application closed it: what is queued goes out first */
};

struct eio_transport_ops {
    const char *name; /* "polling", "websocket" */
    /* Queues one packet, taking a reference. Returns -1 when the transport is closing or
     * its output went over --max-buffered (the session is then closed this turn). */
    int (*send)(eio_session *s, void *t, eio_packet *p);
    /* An upgrade is under way: let a held request go now with a noop, so that the client
     * moves on to the new transport. Nothing for a transport that holds no request. */
    void (*pause)(eio_session *s, void *t);
    /* The session is done with the transport. With EIO_END_GRACEFUL (offered only when
     * can_linger), the transport still delivers what is queued and then the close packet,
     * and ends the session's lingering itself (eio_session_linger_end). */
    void (*close)(eio_session *s, void *t, enum eio_transport_end how);
    /* Server shutdown: drop it at once. */
    void (*abort)(eio_session *s, void *t);
    bool can_linger;
};

struct eio_transport_ref {
    const struct eio_transport_ops *ops; /* NULL: none */
    void *t;
};

#endif
