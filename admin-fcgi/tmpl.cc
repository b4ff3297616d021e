// tmpl.cc: ctemplate behind a C interface (see tmpl.h); the project's only C++ file.
//
// A tmpl_dict is a ctemplate::TemplateDictionary. Templates are cached by ctemplate after
// their first use (parsed once per process, so a FastCGI worker parses each template once);
// expansion is thread-safe. Whitespace: blank lines are stripped, everything else is kept
// so <pre> and inline text render as written.
#include "config.h"

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include <ctemplate/template.h>

#include "admin-fcgi/tmpl.h"

using ctemplate::TemplateDictionary;

static TemplateDictionary *cast(tmpl_dict *d)
{
    return reinterpret_cast<TemplateDictionary *>(d);
}

static const TemplateDictionary *ccast(const tmpl_dict *d)
{
    return reinterpret_cast<const TemplateDictionary *>(d);
}

static tmpl_dict *wrap(TemplateDictionary *d)
{
    return reinterpret_cast<tmpl_dict *>(d);
}

extern "C" int tmpl_init(const char *dir)
{
    try {
        return ctemplate::mutable_default_template_cache()->SetTemplateRootDirectory(dir) ? 0 : -1;
    } catch (...) {
        return -1;
    }
}

extern "C" int tmpl_check(const char *name)
{
    try {
        return ctemplate::Template::GetTemplate(name, ctemplate::STRIP_BLANK_LINES) ? 0 : -1;
    } catch (...) {
        return -1;
    }
}

extern "C" tmpl_dict *tmpl_dict_new(void)
{
    try {
        return wrap(new TemplateDictionary("page"));
    } catch (...) {
        return nullptr;
    }
}

extern "C" void tmpl_dict_free(tmpl_dict *d)
{
    delete cast(d);
}

extern "C" void tmpl_set(tmpl_dict *d, const char *key, const char *value)
{
    tmpl_set_len(d, key, value ? value : "", value ? std::strlen(value) : 0);
}

extern "C" void tmpl_set_len(tmpl_dict *d, const char *key, const char *value, size_t len)
{
    if (!d)
        return;
    try {
        cast(d)->SetValue(key, ctemplate::TemplateString(value ? value : "", value ? len : 0));
    } catch (...) {
    }
}

extern "C" void tmpl_set_int(tmpl_dict *d, const char *key, long long value)
{
    char num[32];
    std::snprintf(num, sizeof num, "%lld", value);
    tmpl_set(d, key, num);
}

extern "C" void tmpl_setf(tmpl_dict *d, const char *key, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = std::vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof small) {
        tmpl_set_len(d, key, small, (size_t)n);
        return;
    }
    char *big = static_cast<char *>(std::malloc((size_t)n + 1));
    if (!big)
        return;
    va_start(ap, fmt);
    std::vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    tmpl_set_len(d, key, big, (size_t)n);
    std::free(big);
}

extern "C" void tmpl_show(tmpl_dict *d, const char *section)
{
    if (!d)
        return;
    try {
        cast(d)->ShowSection(section);
    } catch (...) {
    }
}

extern "C" tmpl_dict *tmpl_add_section(tmpl_dict *d, const char *section)
{
    if (!d)
        return nullptr;
    try {
        return wrap(cast(d)->AddSectionDictionary(section));
    } catch (...) {
        return nullptr;
    }
}

extern "C" tmpl_dict *tmpl_add_include(tmpl_dict *d, const char *name, const char *file)
{
    if (!d)
        return nullptr;
    try {
        TemplateDictionary *inc = cast(d)->AddIncludeDictionary(name);
        inc->SetFilename(file);
        return wrap(inc);
    } catch (...) {
        return nullptr;
    }
}

extern "C" char *tmpl_render(const char *file, const tmpl_dict *d, size_t *len)
{
    if (!d)
        return nullptr;
    try {
        std::string out;
        if (!ctemplate::ExpandTemplate(file, ctemplate::STRIP_BLANK_LINES, ccast(d), &out))
            return nullptr;
        char *p = static_cast<char *>(std::malloc(out.size() + 1));
        if (!p)
            return nullptr;
        std::memcpy(p, out.data(), out.size());
        p[out.size()] = '\0';
        if (len)
            *len = out.size();
        return p;
    } catch (...) {
        return nullptr;
    }
}
