/* rtd/eio_polling.c: not written yet. */
typedef int placeholder_eio_polling;
