/* SPDX-License-Identifier: MIT */
#include "fleet-pg.h"

#include <string.h>

#include "validate.h"

PGconn *fleet_pg_open(const char *conninfo, const char *password, const char *application_name) {
        /* expand_dbname = 1: "dbname" carries the whole conninfo (or a service name); the
         * keywords before it are defaults it may override, the password after it is not. */
        const char *kw[] = { "connect_timeout", "application_name", "keepalives_idle", "keepalives_interval",
                             "keepalives_count", "dbname", "password", NULL };
        const char *val[] = { "10", application_name, "30", "10", "3", conninfo, password, NULL };

        return PQconnectdbParams(kw, val, 1);
}

const char *fleet_pg_msg(const char *m, char *out, size_t outsize) {
        size_t len = m ? strlen(m) : 0;

        while (len > 0 && (m[len - 1] == '\n' || m[len - 1] == ' '))
                len--;
        sg_escape(m ? m : "", len, out, outsize);
        return out;
}
