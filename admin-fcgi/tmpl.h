/* tmpl.h: the C interface to ctemplate, admin-fcgi's only C++ (tmpl.cc).
 *
 * Every page is rendered from templates/ with ctemplate's HTML auto-escaping: each template
 * starts with {{%AUTOESCAPE context="HTML"}}, so a value set here is escaped for the place
 * it lands in (text, attribute, URL) and stored text can never become markup or script.
 * Nothing in admin-fcgi writes HTML by hand.
 *
 * Ownership: tmpl_dict_new returns a root dictionary the caller frees with tmpl_dict_free.
 * Section and include dictionaries belong to their parent and die with the root. Values are
 * copied when set. No function throws; C++ exceptions stop at this boundary. */
#ifndef ADMIN_TMPL_H
#define ADMIN_TMPL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tmpl_dict tmpl_dict;

/* Sets the folder templates are read from (once, before any render; not thread-safe). */
int tmpl_init(const char *dir);
/* Loads and parses one template now so a broken one is reported at start-up.
 * Returns 0, or -1 when it is missing or invalid (ctemplate logs why on stderr). */
int tmpl_check(const char *name);

tmpl_dict *tmpl_dict_new(void);
void tmpl_dict_free(tmpl_dict *d);

/* Variables: {{KEY}}. value NULL sets "". */
void tmpl_set(tmpl_dict *d, const char *key, const char *value);
void tmpl_set_len(tmpl_dict *d, const char *key, const char *value, size_t len);
void tmpl_set_int(tmpl_dict *d, const char *key, long long value);
void tmpl_setf(tmpl_dict *d, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Shows {{#SECTION}}...{{/SECTION}} once with the parent's values. */
void tmpl_show(tmpl_dict *d, const char *section);
/* Adds one more repetition of a section and returns its dictionary (owned by d). */
tmpl_dict *tmpl_add_section(tmpl_dict *d, const char *section);
/* Fills {{>NAME}} with template file `file`; returns the included template's dictionary. */
tmpl_dict *tmpl_add_include(tmpl_dict *d, const char *name, const char *file);

/* Expands template `file` with d. Returns a malloc'ed NUL-terminated string the caller frees
 * and its length in *len, or NULL when the template could not be loaded or memory ran out. */
char *tmpl_render(const char *file, const tmpl_dict *d, size_t *len);

#ifdef __cplusplus
}
#endif

#endif
