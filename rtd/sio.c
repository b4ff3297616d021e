/* rtd/sio.c: not written yet. */
typedef int placeholder_sio;
