/* SPDX-License-Identifier: MIT */
/* Test helper: prints the common event table (common/event_table.c), so the shell tests read
 * the names, MESSAGE_IDs and priorities the daemon and secguardctl are built from instead of
 * scraping C source.
 *   sg_event_table            one line per kind: NAME<TAB>MESSAGE_ID<TAB>PRIORITY
 *   sg_event_table --reasons  one auth_failure reason per line */
#include <stdio.h>
#include <string.h>

#include "event_table.h"

int main(int argc, char **argv) {
        const struct sg_event_kind *kinds;
        size_t n;

        if (argc == 2 && strcmp(argv[1], "--reasons") == 0) {
                for (size_t i = 0; sg_event_failure_reasons[i]; i++)
                        printf("%s\n", sg_event_failure_reasons[i]);
                return 0;
        }
        if (argc != 1) {
                fprintf(stderr, "usage: sg_event_table [--reasons]\n");
                return 2;
        }
        kinds = sg_event_kinds(&n);
        for (size_t i = 0; i < n; i++)
                printf("%s\t%s\t%d\n", kinds[i].name, kinds[i].message_id, kinds[i].priority);
        return 0;
}
