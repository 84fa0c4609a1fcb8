/* SPDX-License-Identifier: MIT */
#include "validate.h"

#include <stdint.h>
#include <string.h>

static bool all_in(const char *s, size_t max, bool (*ok)(unsigned char c)) {
        size_t n = strnlen(s, max + 1);

        if (n == 0 || n > max)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!ok((unsigned char) s[i]))
                        return false;
        return true;
}

static bool is_alnum(unsigned char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool user_char(unsigned char c) {
        return is_alnum(c) || c == '.' || c == '_' || c == '-' || c == '$';
}

bool sg_valid_user(const char *s) {
        size_t n;

        if (!s || !all_in(s, SG_USER_MAX, user_char))
                return false;
        n = strlen(s);
        /* "-x" reads as an option to tools; "." and ".." as paths; "$" alone names nothing. */
        if (s[0] == '-' || s[0] == '$' || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
                return false;
        /* '$' only at the end (Samba machine accounts). */
        for (size_t i = 0; i + 1 < n; i++)
                if (s[i] == '$')
                        return false;
        return true;
}

static bool rhost_char(unsigned char c) {
        return is_alnum(c) || c == '.' || c == ':' || c == '%' || c == '_' || c == '-';
}

bool sg_valid_rhost(const char *s) {
        const char *pct;

        if (!s || !all_in(s, SG_RHOST_MAX, rhost_char))
                return false;
        /* '%' only as an IPv6 zone: one of them, after an address with ':', before a name. */
        pct = strchr(s, '%');
        if (!pct)
                return true;
        return strchr(pct + 1, '%') == NULL && pct[1] != '\0' && memchr(s, ':', (size_t) (pct - s)) != NULL &&
               strchr(pct + 1, ':') == NULL;
}

/* What PAM applications put in PAM_TTY: /dev/pts/0, pts/0, tty1, ssh, :0, :0.0, cron...
 * Nothing else (no quotes, '%', spaces or shell characters) is a terminal name, and no
 * path component is "." or "..": the daemon looks a terminal up under /dev (session.c). */
static bool tty_char(unsigned char c) {
        return is_alnum(c) || c == '/' || c == ':' || c == '.' || c == '_' || c == '-' || c == '@' || c == '+';
}

bool sg_valid_tty(const char *s) {
        if (!s)
                return false;
        if (!*s)
                return true;
        if (!all_in(s, SG_TTY_MAX, tty_char))
                return false;
        for (const char *c = s;;) { /* each path component */
                size_t len = strcspn(c, "/");

                if ((len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
                        return false;
                if (c[len] == '\0')
                        return true;
                c += len + 1;
        }
}

static bool service_char(unsigned char c) {
        return is_alnum(c) || c == '.' || c == '_' || c == '-';
}

bool sg_valid_service(const char *s) {
        return s && all_in(s, SG_SERVICE_MAX, service_char);
}

static bool lower_hex_char(unsigned char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

bool sg_valid_session_id(const char *s) {
        return s && strlen(s) == SG_SESSION_ID_LEN && all_in(s, SG_SESSION_ID_LEN, lower_hex_char);
}

static bool logind_char(unsigned char c) {
        return is_alnum(c) || c == '_' || c == '-';
}

bool sg_valid_logind_id(const char *s) {
        return s && all_in(s, 64, logind_char);
}

bool sg_no_control(const char *s, size_t len) {
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char) s[i];

                if (c < 0x20 || c == 0x7f)
                        return false;
        }
        return true;
}

/* One unit of escaped output (at most 6 bytes) for the input at s; returns how many input
 * bytes it stands for (>= 1). Units are never split, so truncation cannot cut an escape or a
 * UTF-8 sequence in half. */
typedef size_t (*escape_unit_fn)(const unsigned char *s, size_t avail, char unit[static 8], size_t *ret_n);

static const char hexdigits[] = "0123456789abcdef";

static size_t escape_with(escape_unit_fn unit_fn, const char *s, size_t len, char *out, size_t outsize) {
        const unsigned char *u = (const unsigned char *) s;
        size_t pos = 0, mark = 0, i = 0;

        if (!out || outsize == 0)
                return 0;
        if (!s)
                len = 0;
        while (i < len) {
                char unit[8];
                size_t n, used = unit_fn(u + i, len - i, unit, &n);

                if (pos + n + 1 > outsize) {
                        /* Back up to the last unit boundary that leaves room for "..." + NUL;
                         * when even that is too small, as many dots as fit. */
                        size_t dots = outsize - 1 < 3 ? outsize - 1 : 3;

                        pos = mark;
                        memcpy(out + pos, "...", dots);
                        pos += dots;
                        break;
                }
                memcpy(out + pos, unit, n);
                pos += n;
                i += used;
                if (pos + 4 <= outsize)
                        mark = pos;
        }
        out[pos] = '\0';
        return pos;
}

static size_t hex_unit(char unit[static 8], const char *prefix, unsigned char c) {
        size_t k = strlen(prefix);

        memcpy(unit, prefix, k);
        unit[k++] = hexdigits[c >> 4];
        unit[k++] = hexdigits[c & 0xf];
        return k;
}

static size_t terminal_unit(const unsigned char *s, size_t avail, char unit[static 8], size_t *ret_n) {
        (void) avail;
        if (s[0] == '\\') {
                memcpy(unit, "\\\\", 2);
                *ret_n = 2;
        } else if (s[0] >= 0x20 && s[0] < 0x7f) {
                unit[0] = (char) s[0];
                *ret_n = 1;
        } else
                *ret_n = hex_unit(unit, "\\x", s[0]);
        return 1;
}

size_t sg_escape(const char *s, size_t len, char *out, size_t outsize) {
        return escape_with(terminal_unit, s, len, out, outsize);
}

/* Length of the valid UTF-8 sequence at s (2..4) with its code point in *ret_cp, or 0 when
 * not valid (overlong forms, surrogates and code points above U+10FFFF are not valid). */
static size_t utf8_decode(const unsigned char *s, size_t avail, uint32_t *ret_cp) {
        uint32_t cp;
        size_t n;

        if (s[0] >= 0xc2 && s[0] <= 0xdf)
                n = 2, cp = s[0] & 0x1f;
        else if (s[0] >= 0xe0 && s[0] <= 0xef)
                n = 3, cp = s[0] & 0x0f;
        else if (s[0] >= 0xf0 && s[0] <= 0xf4)
                n = 4, cp = s[0] & 0x07;
        else
                return 0;
        if (n > avail)
                return 0;
        for (size_t i = 1; i < n; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (s[i] & 0x3f);
        }
        if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        *ret_cp = cp;
        return n;
}

/* Valid, but they change how the rest of a line is shown: C1 controls (U+009B is CSI to many
 * terminals), bidirectional marks, embeddings, overrides and isolates (text that reads
 * differently from what it is), and the Unicode line/paragraph separators. */
static bool cp_misleads(uint32_t cp) {
        return (cp >= 0x80 && cp <= 0x9f) || cp == 0x061c || cp == 0x200e || cp == 0x200f ||
               (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

static size_t json_unit(const unsigned char *s, size_t avail, char unit[static 8], size_t *ret_n) {
        uint32_t cp = 0;
        size_t n;

        if (s[0] == '"' || s[0] == '\\') {
                unit[0] = '\\';
                unit[1] = (char) s[0];
                *ret_n = 2;
                return 1;
        }
        if (s[0] >= 0x20 && s[0] < 0x7f) {
                unit[0] = (char) s[0];
                *ret_n = 1;
                return 1;
        }
        n = s[0] >= 0x80 ? utf8_decode(s, avail, &cp) : 0;
        if (n > 0 && cp_misleads(cp)) {
                /* All of these are below U+10000: one \uXXXX, no surrogate pair. */
                memcpy(unit, "\\u", 2);
                for (int i = 0; i < 4; i++)
                        unit[2 + i] = hexdigits[(cp >> (12 - 4 * i)) & 0xf];
                *ret_n = 6;
                return n;
        }
        if (n > 0) {
                memcpy(unit, s, n);
                *ret_n = n;
                return n;
        }
        /* Control byte, DEL, or a byte that is not UTF-8: its value stays visible and the
         * output stays valid JSON. */
        *ret_n = hex_unit(unit, "\\u00", s[0]);
        return 1;
}

size_t sg_json_escape(const char *s, size_t len, char *out, size_t outsize) {
        return escape_with(json_unit, s, len, out, outsize);
}
