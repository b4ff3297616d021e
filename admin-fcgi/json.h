/* json.h: the little JSON admin-fcgi writes (/admin/stats.json) is built in C, not through
 * a template; this is its string escaping. Output is appended to an sbuf owned by the
 * caller. */
#ifndef ADMIN_JSON_H
#define ADMIN_JSON_H

#include "admin-fcgi/sbuf.h"

/* Appends s as a JSON string with its quotes. Control characters, quotes and backslashes
 * are escaped; so are '<', '>', '&' and U+2028/U+2029 (safe even inside HTML); bytes that
 * are not valid UTF-8 become U+FFFD. */
void json_str(struct sbuf *out, const char *s);

#endif
