# admin-fcgi/local.mk: the admin site's part of the build (included by Makefile.am).
