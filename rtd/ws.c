/* rtd/ws.c: not written yet. */
typedef int placeholder_ws;
