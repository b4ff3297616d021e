/* eio_polling.h: the long-polling transport's entry points, for the server front
 * (eio_server.c). The session drives it through eio_polling_ops. */
#ifndef RTD_EIO_POLLING_H
#define RTD_EIO_POLLING_H

#include <stdbool.h>

#include "rtd/engine/eio_session.h"

extern const struct eio_transport_ops eio_polling_ops;

/* A GET or POST of an open polling session. */
void eio_polling_request(eio_session *s, http_request *req);
/* Writes the handshake answer of a new polling session. */
void eio_polling_open(eio_session *s, http_request *req);
/* Answers the held GET with what is queued (end of turn). */
void eio_polling_flush(eio_session *s);
/* A GET for a session that closed gracefully and lingers with its last packets. */
void eio_polling_linger_answer(eio_session *s, http_request *req);

#endif
