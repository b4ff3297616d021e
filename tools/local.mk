# tools/local.mk: rtload, the Socket.IO load generator, and tcpfloor (included by Makefile.am).
#
# bench/run.sh runs it against rtd and against the Node.js reference server
# (bench/reference/server.mjs); docs/BENCHMARKS.md has the figures.

noinst_PROGRAMS += tools/rtload
tools_rtload_SOURCES = tools/rtload.c tools/rtload_proto.c tools/rtload_hist.c tools/rtload_redis.c \
	tools/rtload.h
tools_rtload_CFLAGS = $(AM_CFLAGS) $(CRYPTO_CFLAGS) $(HIREDIS_CFLAGS)
tools_rtload_LDADD = $(CRYPTO_LIBS) $(HIREDIS_LIBS)

# tcpfloor: the cost of one loopback TCP write and read on this machine, rtd aside.
noinst_PROGRAMS += tools/tcpfloor
tools_tcpfloor_SOURCES = tools/tcpfloor.c
tools_tcpfloor_CFLAGS = $(AM_CFLAGS) $(PTHREAD_CFLAGS)
tools_tcpfloor_LDADD = $(PTHREAD_LIBS)

EXTRA_DIST += bench/run.sh bench/report.mjs bench/reference/server.mjs \
	bench/reference/package.json bench/reference/package-lock.json
