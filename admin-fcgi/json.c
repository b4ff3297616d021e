/* json.c: JSON string escaping (see json.h). */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "admin-fcgi/json.h"

/* Length of the valid UTF-8 sequence at p (1-4), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *p)
{
    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xC2 && p[0] <= 0xDF)
        return (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (p[0] >= 0xE0 && p[0] <= 0xEF) {
        if ((p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
            return 0;
        if (p[0] == 0xE0 && p[1] < 0xA0)
            return 0; /* overlong */
        if (p[0] == 0xED && p[1] >= 0xA0)
            return 0; /* surrogate */
        return 3;
    }
    if (p[0] >= 0xF0 && p[0] <= 0xF4) {
        if ((p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return 0;
        if ((p[0] == 0xF0 && p[1] < 0x90) || (p[0] == 0xF4 && p[1] >= 0x90))
            return 0;
        return 4;
    }
    return 0;
}

void json_str(struct sbuf *out, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    sbuf_putc(out, '"');
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    while (*p) {
        unsigned char ch = *p;
        if (ch == '"' || ch == '\\') {
            char e[2] = {'\\', (char)ch};
            sbuf_append(out, e, 2);
            p++;
        } else if (ch < 0x20 || ch == '<' || ch == '>' || ch == '&') {
            char e[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
            sbuf_append(out, e, 6);
            p++;
        } else if (ch < 0x80) {
            sbuf_putc(out, (char)ch);
            p++;
        } else {
            size_t n = utf8_len(p);
            if (!n) {
                sbuf_puts(out, "\\ufffd");
                p++;
            } else if (n == 3 && p[0] == 0xE2 && p[1] == 0x80 && (p[2] == 0xA8 || p[2] == 0xA9)) {
                sbuf_puts(out, p[2] == 0xA8 ? "\\u2028" : "\\u2029");
                p += 3;
            } else {
                sbuf_append(out, p, n);
                p += n;
            }
        }
    }
    sbuf_putc(out, '"');
}
