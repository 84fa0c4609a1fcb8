-- secguard fleet: least-privilege roles (docs/fleet.md). Run with psql as the schema owner
-- after `secguard-fleetd --migrate`:
--   psql -v ON_ERROR_STOP=1 -f fleet/roles.sql                      (once: the group role)
-- and for each host (its role logs in with a password or a client certificate):
--   CREATE ROLE fleet_web1 LOGIN PASSWORD '...' IN ROLE secguard_host;
--   INSERT INTO secguard.hosts(host_id, role) VALUES ('<host id>', 'fleet_web1');
-- A host role may: insert audit rows and decisions of its own host ids (row-level security,
-- secguard.hosts.role), read its own audit rows and every decision, update its own hosts row,
-- count failures fleet-wide through secguard.source_failures(). Never UPDATE or DELETE an
-- audit row or a decision.
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'secguard_host') THEN
    CREATE ROLE secguard_host NOLOGIN;
  END IF;
END $$;
REVOKE ALL ON SCHEMA secguard FROM PUBLIC;
GRANT USAGE ON SCHEMA secguard TO secguard_host;
REVOKE ALL ON ALL TABLES IN SCHEMA secguard FROM secguard_host;
GRANT SELECT ON secguard.schema_version TO secguard_host;
GRANT SELECT, UPDATE (last_seen, last_shipped_id, local_max_id) ON secguard.hosts TO secguard_host;
GRANT SELECT, INSERT ON secguard.audit TO secguard_host;
GRANT SELECT, INSERT ON secguard.pruned TO secguard_host;
GRANT SELECT, INSERT ON secguard.decisions TO secguard_host;
GRANT USAGE ON SEQUENCE secguard.decisions_id_seq TO secguard_host;
GRANT EXECUTE ON FUNCTION secguard.source_failures(text, bigint) TO secguard_host;
