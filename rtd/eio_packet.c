/* rtd/eio_packet.c: not written yet. */
typedef int placeholder_eio_packet;
