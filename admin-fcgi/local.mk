# admin-fcgi/local.mk: the admin site's part of the build (included by Makefile.am).
#
# Everything but main.c goes into admin-fcgi/libadmin.a so the route tests and the
# benchmark call the same request handler in-process. tmpl.cc (ctemplate) is the only C++;
# the nodist_EXTRA_*_SOURCES lines name a C++ file that is never built only so automake
# links each program with the C++ linker.

ADMIN_DEP_CFLAGS = $(CTEMPLATE_CFLAGS) $(FCGI_CFLAGS) $(SQLITE_CFLAGS) $(LIBPQ_CFLAGS) \
	$(LIBCRYPT_CFLAGS) $(CRYPTO_CFLAGS)
ADMIN_DEP_LIBS = admin-fcgi/libadmin.a common/libcommon.a $(CTEMPLATE_LIBS) $(FCGI_LIBS) \
	$(SQLITE_LIBS) $(LIBPQ_LIBS) $(LIBCRYPT_LIBS) $(CRYPTO_LIBS) $(PTHREAD_LIBS)

noinst_LIBRARIES += admin-fcgi/libadmin.a
admin_fcgi_libadmin_a_CFLAGS = $(AM_CFLAGS) $(ADMIN_DEP_CFLAGS)
admin_fcgi_libadmin_a_CXXFLAGS = $(AM_CXXFLAGS) $(CTEMPLATE_CFLAGS)
admin_fcgi_libadmin_a_SOURCES = \
	admin-fcgi/admin.h \
	admin-fcgi/auth.c admin-fcgi/auth.h \
	admin-fcgi/cmd.c \
	admin-fcgi/db.c \
	admin-fcgi/dbi.c admin-fcgi/dbi.h admin-fcgi/dbi-impl.h \
	admin-fcgi/dbi-sqlite.c admin-fcgi/dbi-pg.c \
	admin-fcgi/http.c admin-fcgi/http.h \
	admin-fcgi/json.c admin-fcgi/json.h \
	admin-fcgi/query.c admin-fcgi/query.h \
	admin-fcgi/sbuf.c admin-fcgi/sbuf.h \
	admin-fcgi/stats.c admin-fcgi/stats.h \
	admin-fcgi/tmpl.cc admin-fcgi/tmpl.h \
	admin-fcgi/ui-pages.h \
	admin-fcgi/ui-shared.c admin-fcgi/ui-shared.h \
	admin-fcgi/ui-landing.c \
	admin-fcgi/ui-login.c \
	admin-fcgi/ui-dashboard.c \
	admin-fcgi/ui-messages.c \
	admin-fcgi/ui-connections.c \
	admin-fcgi/util.c admin-fcgi/util.h

bin_PROGRAMS += admin-fcgi/admin-fcgi
admin_fcgi_admin_fcgi_SOURCES = admin-fcgi/main.c
nodist_EXTRA_admin_fcgi_admin_fcgi_SOURCES = admin-fcgi/link-as-cxx.cc
admin_fcgi_admin_fcgi_CFLAGS = $(AM_CFLAGS) $(PTHREAD_CFLAGS) $(ADMIN_DEP_CFLAGS)
admin_fcgi_admin_fcgi_LDADD = $(ADMIN_DEP_LIBS)

# Templates and static files, installed for the program and for nginx.
admintemplatesdir = $(pkgdatadir)/templates
dist_admintemplates_DATA = \
	templates/page.tpl templates/error.tpl templates/landing.tpl templates/login.tpl \
	templates/dashboard.tpl templates/messages.tpl templates/connections.tpl
adminstaticdir = $(pkgdatadir)/static
dist_adminstatic_DATA = static/site.css static/site.js static/icon.svg
dist_man_MANS += man/admin-fcgi.8

# Helpers: a database filler shared by the tests, the benchmark and admin-seed.
ADMIN_FILL = tools/dbfill.c tools/dbfill.h

noinst_PROGRAMS += tools/admin-seed tools/admin-bench
tools_admin_seed_SOURCES = tools/admin-seed.c $(ADMIN_FILL)
tools_admin_seed_CFLAGS = $(AM_CFLAGS) $(ADMIN_DEP_CFLAGS)
tools_admin_seed_LDADD = common/libcommon.a $(SQLITE_LIBS)
tools_admin_bench_SOURCES = tools/admin-bench.c $(ADMIN_FILL)
nodist_EXTRA_tools_admin_bench_SOURCES = tools/link-as-cxx.cc
tools_admin_bench_CFLAGS = $(AM_CFLAGS) $(ADMIN_DEP_CFLAGS)
tools_admin_bench_LDADD = $(ADMIN_DEP_LIBS)
EXTRA_DIST += tools/bench-admin.sh tools/admin-bench-pg.sql

# Tests: every route in-process and through the CGI binary, then nginx end to end and a
# real browser (both skip when nginx, Node's packages or Chromium are missing).
check_PROGRAMS += tests/admin/test_admin_routes
tests_admin_test_admin_routes_SOURCES = tests/admin/test_admin_routes.c $(ADMIN_FILL)
nodist_EXTRA_tests_admin_test_admin_routes_SOURCES = tests/admin/link-as-cxx.cc
tests_admin_test_admin_routes_CFLAGS = $(AM_CFLAGS) $(ADMIN_DEP_CFLAGS) $(CMOCKA_CFLAGS) \
	-DADMIN_TEMPLATES_DIR='"$(abs_top_srcdir)/templates"' \
	-DADMIN_BIN='"$(abs_top_builddir)/admin-fcgi/admin-fcgi"'
tests_admin_test_admin_routes_LDADD = $(ADMIN_DEP_LIBS) $(CMOCKA_LIBS)
# e2e-pg.sh runs the site on a throwaway PostgreSQL with two rtd nodes (skips only when the
# PostgreSQL binaries, nginx or curl are missing).
TESTS += tests/admin/test_admin_routes tests/admin/e2e-nginx.sh tests/admin/e2e-login.sh \
	tests/admin/e2e-site-conf.sh tests/admin/browser.sh tests/admin/e2e-pg.sh
EXTRA_DIST += tests/admin/e2e-nginx.sh tests/admin/e2e-login.sh tests/admin/e2e-site-conf.sh \
	tests/admin/e2e-pg.sh \
	tests/admin/browser.sh \
	tests/admin/browser.test.mjs tests/admin/lib.sh scripts/admin-nginx-conf.sh scripts/run-admin-stack.sh \
	deploy/nginx/site.conf deploy/systemd/rtd.service deploy/systemd/admin-fcgi.service
