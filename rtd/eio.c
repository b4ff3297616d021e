/* rtd/eio.c: not written yet. */
typedef int placeholder_eio;
