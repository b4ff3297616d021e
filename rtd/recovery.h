/* recovery.h: connection-state recovery for "/" (--recovery-window; README, rtd(8)).
 *
 * Offsets are ids in the store's message log: receive-message carries its row's id as a
 * string, its last argument. A socket that drops for a recoverable reason leaves a session
 * (pid, socket id, rooms, identity, the time it left, the newest offset then) here; a
 * client that comes back within the window with auth {pid, offset} gets the same socket id,
 * its rooms and identity, and the messages after its offset (of everyone and of its rooms,
 * read from the store, oldest first) before the CONNECT answer and live delivery. Without an
 * offset (it got no event before it dropped) it recovers from the time it left. A session
 * is used once; a replay longer than max_events becomes a fresh session. Sessions are also
 * rows of recovery_sessions (written at connect, join, leave, identify and drop; loaded at
 * start), so they survive a restart, SIGKILL included. With the shared PostgreSQL store no
 * session is kept in memory: a pid this node does not have live is claimed from the store
 * (DELETE ... RETURNING on the reader thread, so one node gets it), whichever node wrote it,
 * and replayed from the shared message log. Loop thread only. */
#ifndef RTD_RECOVERY_H
#define RTD_RECOVERY_H

#include <stdbool.h>
#include <stdint.h>

#include "rtd/socketio/sio.h"
#include "rtd/store/store.h"

typedef struct recovery recovery;

struct recovery_config {
    unsigned window_ms;  /* how long a session waits for its client */
    unsigned max_events; /* longest replay; beyond it the client starts afresh */
};

/* The identity the platform keeps for s (identify's userId, may be NULL; platform). */
typedef void recovery_who_fn(sio_socket *s, const char **user_id, const char **platform,
                             void *ud);
/* Gives a restored socket its identity back (called from recovery_begin). */
typedef void recovery_restore_fn(sio_socket *s, const char *user_id, const char *platform,
                                 void *ud);

recovery *recovery_new(sio_server *srv, sio_namespace *root, store *st,
                       const struct recovery_config *cfg, recovery_who_fn *who,
                       recovery_restore_fn *restore, void *ud);
/* A session claimed from the shared store may still have a live socket on another node
 * (its transport died unnoticed there, or a second tab): kick asks the cluster to close it,
 * so that one socket per pid lives cluster-wide. */
typedef void recovery_kick_fn(void *ud, const char *sid);
void recovery_set_kick(recovery *r, recovery_kick_fn *kick, void *ud);
/* Marks it dead; the store's last completion for it frees it. */
void recovery_free(recovery *r);
/* A stored message was broadcast with offset id. */
void recovery_note(recovery *r, int64_t id);
/* Records s (connected) in the store as it is now: at connect, and after it joined, left or
 * identified, so that its session survives a SIGKILL. */
void recovery_live(recovery *r, sio_socket *s);
/* For a socket the connection callback finds restoring: rejoins its rooms, gives its
 * identity back, and starts the replay. */
void recovery_begin(recovery *r, sio_socket *s);

struct recovery_stats {
    uint64_t tried;     /* CONNECTs that carried a pid */
    uint64_t succeeded; /* sessions restored (recovered: true) */
    uint64_t replayed;  /* missed events sent */
    uint64_t claimed;   /* sessions taken from the shared store (another node's, or left
                         * there by this node before a restart) */
};
void recovery_get_stats(const recovery *r, struct recovery_stats *out);

#endif
