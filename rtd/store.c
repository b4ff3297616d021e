/* rtd/store.c: not written yet. */
typedef int placeholder_store;
