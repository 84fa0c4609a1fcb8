#!/bin/bash
# Free attempts do not grow the audit table without bound: invalid user names count toward
# their source (which then locks), and beyond a burst per source the invalid/blocked rows are
# counted into one summary row per kind instead of a row each.
. "$(dirname "$0")/lib.sh"
sg_setup
sg_start_daemon

N=60
rows0=$(sg_sql 'SELECT count(*) FROM audit;')
t0=$(date +%s)
for i in $(seq 1 "$N"); do
        sg_auth "no such user $i!" 'some password' 192.0.2.7 && fail "an invalid name logged in"
done
secs=$(($(date +%s) - t0 + 1))
check "the source is locked by its invalid names" grep -q '"kind":"source","key":"192.0.2.7"' <(sgctl --json locks)
check "a valid user from that source is refused now" ! sg_auth alice "$SG_PW_ALICE" 192.0.2.7
check "the same user from elsewhere logs in" sg_auth alice "$SG_PW_ALICE" 192.0.2.8
sg_stop_daemon # writes what is still held back as summaries
src="rhost = '192.0.2.7' AND event IN ('auth_failure', 'auth_blocked')"
summary="detail LIKE '% similar events from 192.0.2.7 suppressed'"
rows=$(sg_sql "SELECT count(*) FROM audit WHERE $src AND (detail IS NULL OR NOT $summary);")
held=$(sg_sql "SELECT detail FROM audit WHERE $src AND $summary;" | awk '{ s += $1 } END { print s + 0 }')
nsum=$(sg_sql "SELECT count(*) FROM audit WHERE $src AND $summary;")
total=$(sg_sql 'SELECT count(*) FROM audit;')
sg_log "$N invalid logins in ~$secs s from one source: $rows rows, $nsum summary rows for $held more; $((total - rows0)) rows added in all"
# 20 at once, then one a second (a slow machine gets a few more), never one per attempt.
check "rows from the flood are bounded ($rows <= 20 + $secs + 1)" test "$rows" -le $((20 + secs + 1))
check "the rest is in summary rows" test "$nsum" -ge 1 -a $((rows + held)) -ge "$N"
check "invalid input is audited as invalid_input" \
        test "$(sg_sql "SELECT count(*) FROM audit WHERE $src AND reason = 'invalid_input'")" -ge 20
sg_start_daemon
check "audit verify passes" sgctl audit verify
sg_done
