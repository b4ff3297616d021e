/* rtd/wsconn.c: not written yet. */
typedef int placeholder_wsconn;
