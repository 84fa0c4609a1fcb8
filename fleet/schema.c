/* SPDX-License-Identifier: MIT */
#include "schema.h"

/* Every object lives in schema "secguard" and every statement names it, so a search_path set
 * by someone else never changes what a statement means. The owner (the role that runs the
 * migrations) bypasses row-level security; host roles (docs/fleet.md, fleet/roles.sql) do not. */
const char *const fleet_migrations[] = {
        /* 1: hosts, audit, decisions, the fleet-wide failure count, NOTIFY on decisions. */
        "CREATE TABLE secguard.hosts("
        "  host_id text PRIMARY KEY CHECK (host_id ~ '^[0-9a-f]{32}$'),"
        "  role name NOT NULL DEFAULT current_user,"
        "  first_seen timestamptz NOT NULL DEFAULT now(),"
        "  last_seen timestamptz NOT NULL DEFAULT now(),"
        "  last_shipped_id bigint NOT NULL DEFAULT 0,"
        "  local_max_id bigint NOT NULL DEFAULT 0);"
        "CREATE TABLE secguard.audit("
        "  host_id text NOT NULL REFERENCES secguard.hosts(host_id),"
        "  id bigint NOT NULL CHECK (id > 0),"
        "  time_usec bigint NOT NULL,"
        "  event text NOT NULL,"
        "  reason text,"
        "  username text,"
        "  user_sealed bytea,"
        "  service text,"
        "  rhost text,"
        "  tty text,"
        "  pid bigint,"
        "  uid bigint,"
        "  session_id text,"
        "  detail text,"
        "  epoch bigint,"
        "  mac bytea NOT NULL,"
        "  escaped boolean NOT NULL DEFAULT false,"
        "  source_key text,"
        "  shipped timestamptz NOT NULL DEFAULT now(),"
        "  PRIMARY KEY (host_id, id));"
        "CREATE INDEX audit_failures ON secguard.audit(source_key, time_usec) WHERE event = 'auth_failure';"
        "CREATE TABLE secguard.decisions("
        "  id bigserial PRIMARY KEY,"
        "  action text NOT NULL CHECK (action IN ('lock', 'unlock')),"
        "  kind text NOT NULL,"
        "  key text NOT NULL,"
        "  until_usec bigint,"
        "  origin_host text NOT NULL,"
        "  reason text NOT NULL,"
        "  audit_id bigint,"
        "  created timestamptz NOT NULL DEFAULT now());"
        "CREATE INDEX decisions_key ON secguard.decisions(key, kind, id);"
        "CREATE UNIQUE INDEX decisions_from_audit ON secguard.decisions(origin_host, audit_id, kind)"
        "  WHERE audit_id IS NOT NULL;"
        /* Failures from one source on every host since p_since, or since the last unlock of that
         * source (an unlock decision's until_usec is the time it was made), whichever is later.
         * SECURITY DEFINER: a host role may count other hosts' rows without reading them. */
        "CREATE FUNCTION secguard.source_failures(p_key text, p_since bigint) RETURNS bigint"
        "  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$"
        "  SELECT count(*) FROM secguard.audit a"
        "   WHERE a.event = 'auth_failure' AND a.source_key = p_key"
        "     AND a.time_usec >= greatest(p_since, coalesce((SELECT max(u.until_usec)"
        "         FROM secguard.decisions u WHERE u.action = 'unlock' AND u.key = p_key), 0)) $$;"
        "REVOKE ALL ON FUNCTION secguard.source_failures(text, bigint) FROM PUBLIC;"
        "CREATE FUNCTION secguard.decisions_notify() RETURNS trigger"
        "  LANGUAGE plpgsql AS $$ BEGIN"
        "  PERFORM pg_notify('secguard_decisions', NEW.id::text); RETURN NULL; END $$;"
        "CREATE TRIGGER decisions_notify AFTER INSERT ON secguard.decisions"
        "  FOR EACH ROW EXECUTE FUNCTION secguard.decisions_notify();"
        /* Row-level security: a host role writes only rows of the host ids registered to it
         * (hosts.role), reads its own audit rows and every decision; nothing may UPDATE or
         * DELETE audit rows or decisions but the owner. */
        "ALTER TABLE secguard.hosts ENABLE ROW LEVEL SECURITY;"
        "CREATE POLICY hosts_read ON secguard.hosts FOR SELECT USING (true);"
        "CREATE POLICY hosts_own ON secguard.hosts FOR UPDATE USING (role = current_user)"
        "  WITH CHECK (role = current_user);"
        "ALTER TABLE secguard.audit ENABLE ROW LEVEL SECURITY;"
        "CREATE POLICY audit_own_insert ON secguard.audit FOR INSERT WITH CHECK (EXISTS ("
        "  SELECT 1 FROM secguard.hosts h WHERE h.host_id = audit.host_id AND h.role = current_user));"
        "CREATE POLICY audit_own_read ON secguard.audit FOR SELECT USING (EXISTS ("
        "  SELECT 1 FROM secguard.hosts h WHERE h.host_id = audit.host_id AND h.role = current_user));"
        "ALTER TABLE secguard.decisions ENABLE ROW LEVEL SECURITY;"
        "CREATE POLICY decisions_read ON secguard.decisions FOR SELECT USING (true);"
        "CREATE POLICY decisions_own_insert ON secguard.decisions FOR INSERT WITH CHECK (EXISTS ("
        "  SELECT 1 FROM secguard.hosts h WHERE h.host_id = decisions.origin_host"
        "   AND h.role = current_user));",
        /* 2: an unlock with reason 'lifted' (a host lifted its own lockout: the attempt that
         * set it succeeded) ends only that lockout; the failures counted fleet-wide stay, or
         * a valid password would wipe its source's fleet-wide count. */
        "CREATE OR REPLACE FUNCTION secguard.source_failures(p_key text, p_since bigint) RETURNS bigint"
        "  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$"
        "  SELECT count(*) FROM secguard.audit a"
        "   WHERE a.event = 'auth_failure' AND a.source_key = p_key"
        "     AND a.time_usec >= greatest(p_since, coalesce((SELECT max(u.until_usec)"
        "         FROM secguard.decisions u WHERE u.action = 'unlock' AND u.key = p_key"
        "          AND u.reason <> 'lifted'), 0)) $$;"
        "REVOKE ALL ON FUNCTION secguard.source_failures(text, bigint) FROM PUBLIC;",
        /* 3: id ranges a host reports as pruned from its local audit before they could be
         * shipped, so `secguardctl fleet verify` tells them from ids deleted centrally. A
         * host's word about its own rows: inserted and read like its audit rows. */
        "CREATE TABLE secguard.pruned("
        "  host_id text NOT NULL REFERENCES secguard.hosts(host_id),"
        "  first_id bigint NOT NULL CHECK (first_id > 0),"
        "  last_id bigint NOT NULL CHECK (last_id >= first_id),"
        "  reported timestamptz NOT NULL DEFAULT now(),"
        "  PRIMARY KEY (host_id, first_id));"
        "ALTER TABLE secguard.pruned ENABLE ROW LEVEL SECURITY;"
        "CREATE POLICY pruned_own_insert ON secguard.pruned FOR INSERT WITH CHECK (EXISTS ("
        "  SELECT 1 FROM secguard.hosts h WHERE h.host_id = pruned.host_id AND h.role = current_user));"
        "CREATE POLICY pruned_own_read ON secguard.pruned FOR SELECT USING (EXISTS ("
        "  SELECT 1 FROM secguard.hosts h WHERE h.host_id = pruned.host_id AND h.role = current_user));",
};

const size_t fleet_migrations_n = sizeof fleet_migrations / sizeof fleet_migrations[0];

const char fleet_sql_locks_in_force[] =
        "SELECT id, action, kind, key, until_usec, origin_host, reason FROM secguard.decisions d"
        " WHERE d.action = 'lock' AND d.id <= $1::bigint AND d.until_usec > $2::bigint"
        " AND NOT EXISTS (SELECT 1 FROM secguard.decisions u WHERE u.action = 'unlock'"
        "  AND u.kind = d.kind AND u.key = d.key AND u.id > d.id" FLEET_SQL_LIFT_MATCHES ") ORDER BY d.id";
