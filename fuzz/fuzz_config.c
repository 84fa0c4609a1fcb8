/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for the config loader (sg_config_load_string: the same reader and handler
 * as files, without the owner/mode checks). Checks beyond "no crash": the result is 0 or
 * -EINVAL, an error message is terminated and names "fuzz.conf:LINE:", a failed load leaves
 * the config untouched, a good one passes through sg_config_check and sg_config_dump, and
 * the dump, written back as INI, loads to the same config.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DUMP_SIZE 32768
/* Not assert(): CMake's RelWithDebInfo defines NDEBUG, which would compile the checks out. */
#define CHECK(x)                         \
        do {                             \
                if (!(x))                \
                        __builtin_trap(); \
        } while (0)

/* "section.key=value" lines back into an INI file; false when a line would not fit inih's
 * line limit or a value was escaped in the dump (then it cannot round-trip). */
static bool dump_to_ini(const char *dump, char *out, size_t outsize) {
        char section[32] = "";
        size_t o = 0;

        for (const char *line = dump; *line;) {
                const char *nl = strchr(line, '\n'), *dot = strchr(line, '.'), *eq = strchr(line, '=');
                int n;

                CHECK(nl && dot && eq && dot < eq && eq < nl);
                if (nl - line > 150 || memchr(line, '\\', (size_t) (nl - line)))
                        return false;
                if ((size_t) (dot - line) >= sizeof section)
                        return false;
                if (strncmp(section, line, (size_t) (dot - line)) != 0 || section[dot - line] != '\0') {
                        memcpy(section, line, (size_t) (dot - line));
                        section[dot - line] = '\0';
                        n = snprintf(out + o, outsize - o, "[%s]\n", section);
                        if (n < 0 || (size_t) n >= outsize - o)
                                return false;
                        o += (size_t) n;
                }
                n = snprintf(out + o, outsize - o, "%.*s = %.*s\n", (int) (eq - dot - 1), dot + 1,
                             (int) (nl - eq - 1), eq + 1);
                if (n < 0 || (size_t) n >= outsize - o)
                        return false;
                o += (size_t) n;
                line = nl + 1;
        }
        return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static struct sg_config c, before, again;
        static char dump1[DUMP_SIZE], dump2[DUMP_SIZE], ini[DUMP_SIZE];
        char err[512], *text;
        int r;

        if (size > 64 * 1024)
                return 0;
        text = malloc(size + 1);
        if (!text)
                return 0;
        memcpy(text, data, size);
        text[size] = '\0';

        sg_config_defaults(&c);
        before = c;
        memset(err, 'X', sizeof err);
        r = sg_config_load_string(&c, "fuzz.conf", text, err, sizeof err);
        free(text);
        CHECK(r == 0 || r == -EINVAL || r == -ENOMEM);
        if (r < 0) {
                CHECK(memchr(err, '\0', sizeof err));
                CHECK(r == -ENOMEM || strncmp(err, "fuzz.conf:", 10) == 0);
                CHECK(memcmp(&c, &before, sizeof c) == 0);
                return 0;
        }

        if (sg_config_check(&c, err, sizeof err) < 0)
                CHECK(memchr(err, '\0', sizeof err));
        r = sg_config_dump(&c, dump1, sizeof dump1);
        CHECK(r > 0 && (size_t) r == strlen(dump1));

        if (dump_to_ini(dump1, ini, sizeof ini)) {
                sg_config_defaults(&again);
                r = sg_config_load_string(&again, "dump.conf", ini, err, sizeof err);
                CHECK(r == 0);
                r = sg_config_dump(&again, dump2, sizeof dump2);
                CHECK(r > 0);
                CHECK(strcmp(dump1, dump2) == 0);
        }
        return 0;
}
