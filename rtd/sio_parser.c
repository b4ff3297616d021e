/* rtd/sio_parser.c: not written yet. */
typedef int placeholder_sio_parser;
