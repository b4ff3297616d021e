/* validate.h: the checks on the platform's event payloads, as pure functions.
 *
 * platform.c calls these before anything is stored or broadcast; the fuzz target
 * tests/fuzz/fuzz_platform.c drives them with arbitrary JSON. Every function reads a json-c
 * value the caller owns and fills a struct whose strings point into that value (valid while
 * it is) or into the struct itself. On refusal it returns -1 and fills a validate_error
 * with a machine code and a message for the client. */
#ifndef RTD_VALIDATE_H
#define RTD_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#define VALIDATE_MAX_SENDER_CHARS 100
#define VALIDATE_MAX_ROOM_BYTES 128
#define VALIDATE_MAX_USER_ID_BYTES 128
#define VALIDATE_MAX_APP_VERSION_BYTES 64
#define VALIDATE_MAX_PLATFORM_BYTES 32
#define VALIDATE_HISTORY_DEFAULT 50
#define VALIDATE_HISTORY_MAX 200

struct validate_error {
    const char *code; /* e.g. "invalid_sender" */
    char message[128];
};

/* A short platform token: [a-z0-9._-]{1,32} after lower-casing. */
bool validate_platform_token(const char *s);

/* identify {userId, platform, appVersion}: every member optional; userId may be a number. */
struct identify_input {
    bool has_user, has_platform, has_version;
    const char *user; /* points into the JSON, or into user_buf for a number */
    size_t user_len;
    char user_buf[24];
    char platform[VALIDATE_MAX_PLATFORM_BYTES + 1]; /* lower-cased */
    const char *version;
    size_t version_len;
};
int validate_identify(struct json_object *arg, struct identify_input *out,
                      struct validate_error *err);

/* send-message {sender, text, platform?, room?}. */
struct message_input {
    const char *sender;
    size_t sender_len;
    const char *text;
    size_t text_len;
    bool has_platform;
    char platform[VALIDATE_MAX_PLATFORM_BYTES + 1]; /* lower-cased, when has_platform */
    const char *room; /* NULL: everyone */
    size_t room_len;
};
int validate_message(struct json_object *arg, size_t max_text_bytes, struct message_input *out,
                     struct validate_error *err);

/* join/leave: {room} or a bare string. */
int validate_room(struct json_object *arg, const char **room, size_t *len,
                  struct validate_error *err);

/* get-messages {limit?, before?, room?} (the argument itself may be absent or null). */
struct history_input {
    int limit;
    int64_t before; /* 0: from the newest */
    const char *room;
    size_t room_len;
};
int validate_history(struct json_object *arg, struct history_input *out,
                     struct validate_error *err);

#endif
