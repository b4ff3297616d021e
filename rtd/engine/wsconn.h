/* wsconn.h: the WebSocket transport's entry points, for the server front (eio_server.c).
 * The session drives a connection through eio_wsconn_ops. */
#ifndef RTD_WSCONN_H
#define RTD_WSCONN_H

#include "rtd/engine/eio_session.h"

extern const struct eio_transport_ops eio_wsconn_ops;

/* A WebSocket request: a new session (hs set, s NULL) or a probe for s's upgrade. */
void eio_websocket_request(eio_server *srv, eio_session *s, struct eio_handshake *hs,
                           http_request *req);
/* End of turn: writes every connection's output, then frees the connections released. */
void wsconn_flush_all(eio_server *srv);
void wsconn_free_dead(eio_server *srv);
/* Server shutdown: releases and frees every connection still open (detached ones too). */
void wsconn_release_all(eio_server *srv);

#endif
