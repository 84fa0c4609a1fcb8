# shellcheck shell=bash
# Shared by the fleet tests (t_fleet, t_fleet_lift), sourced after lib.sh and pg_lib.sh:
# PostgreSQL with a database "fleet", password files for its owner and two hosts, the
# [fleet] section, the owner's config, and one login role per host from fleet/roles.sql.

FLEETD="$SG_BUILD/secguard-fleetd"
HA=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1
HB=bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2
# [fleet] source_max_failures of the configs fleet_section writes.
FLEET_SOURCE_MAX=${FLEET_SOURCE_MAX:-4}

# fleet_newpw FILE: a random password in a 0600 file, never on a command line or in output.
fleet_newpw() { (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$1"); }

# fleet_pg: starts PostgreSQL in $T (after sg_setup), creates the database, writes
# $T/owner.pw (the superuser's), $T/a.pw and $T/b.pw.
fleet_pg() {
        pg_init "$T"
        pg_start
        pg_psql -qc 'CREATE DATABASE fleet' >/dev/null || fail "CREATE DATABASE"
        export PG_DB=fleet
        sed -n 's/^\*:\*:\*:postgres://p' "$PG_SUPERPW_FILE" >"$T/owner.pw"
        chmod 0600 "$T/owner.pw"
        fleet_newpw "$T/a.pw"
        fleet_newpw "$T/b.pw"
}

fleet_section() { # ROLE PWFILE HOSTID
        printf '%s\n' "[fleet]" "enabled = yes" "postgres = $(pg_conninfo fleet "$1")" "password_file = $2" \
                "host_id = $3" "source_max_failures = $FLEET_SOURCE_MAX" "window = 1h" "lock_time = 10m" \
                "max_lock_time = 1d" "batch = 20" "poll_interval = 200ms"
}

# fleet_owner_conf: $T/owner.conf, the owner's [fleet] (for --migrate and fleet-wide reads).
fleet_owner_conf() {
        {
                echo "[daemon]"
                echo "socket = $T/none.sock"
                fleet_section postgres "$T/owner.pw" 00000000000000000000000000000000
        } >"$T/owner.conf"
}

# fleet_roles: the grants of fleet/roles.sql, then login roles fleet_a and fleet_b for hosts
# $HA and $HB, registered.
fleet_roles() {
        local h id
        pg_psql -q -f "$SG_SRC/fleet/roles.sql" >/dev/null || fail "roles.sql"
        for h in a b; do
                id=$HA
                [ "$h" = b ] && id=$HB
                { printf '\\set pw `cat %s`\n' "$T/$h.pw"
                  echo "CREATE ROLE fleet_$h LOGIN PASSWORD :'pw' IN ROLE secguard_host;"
                  echo "INSERT INTO secguard.hosts(host_id, role) VALUES ('$id', 'fleet_$h');"; } |
                        pg_psql -q >/dev/null || fail "role fleet_$h"
        done
}

# fleet_host_b: host B beside host A (lib.sh's layout, after sg_write_config): its config
# $T/b/secguard.conf is A's with B's socket, state dir, role, password file and host id; its
# PAM service is sgtestb; $T/fa and $T/fb are the helpers' state dirs.
fleet_host_b() {
        mkdir -m 0755 "$T/b" "$T/b/run"
        mkdir -m 0700 "$T/b/state" "$T/fa" "$T/fb"
        sed -e "s|$T/run/|$T/b/run/|" -e "s|state_dir = $T/state|state_dir = $T/b/state|" "$T/secguard.conf" |
                sed -e "s|user=fleet_a|user=fleet_b|" -e "s|$T/a.pw|$T/b.pw|" -e "s|$HA|$HB|" >"$T/b/secguard.conf"
        sed "s|config=$T/secguard.conf|config=$T/b/secguard.conf|" "$T/pam.d/sgtest" >"$T/pam.d/sgtestb"
        grep -q "$T/b/run/secguardd.sock" "$T/b/secguard.conf" || fail "host B config"
}

# start_b: host B's secguardd, answering STATUS within 5 s; its pid in B_PID.
B_PID=
start_b() {
        "$SECGUARDD" --config "$T/b/secguard.conf" --log-target stderr >>"$T/b/daemon.log" 2>&1 &
        B_PID=$!
        local i
        for i in $(seq 1 100); do
                "$SECGUARDCTL" --config "$T/b/secguard.conf" status >/dev/null 2>&1 && return 0
                kill -0 "$B_PID" 2>/dev/null || fail "secguardd B exited during start-up"
                sleep 0.05
        done
        fail "secguardd B did not come up"
}
