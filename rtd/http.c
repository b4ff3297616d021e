/* rtd/http.c: not written yet. */
typedef int placeholder_http;
