#!/bin/bash
# Guessing one account from many sources is paced by the daemon: 60 guesses from 60 IPv6
# /64s in parallel get at most user_max_failures hashes and then one per delay step; the rest
# are refused (auth_blocked, reason paced) without a hash, and the victim is never locked:
# a local login passes during the attack, a remote one from a fresh address once a step is
# free, each in its normal time.
. "$(dirname "$0")/lib.sh"
sg_setup "[ratelimit]" "user_max_failures = 5" "delay_step_ms = 500" "delay_max_ms = 2000"
sg_start_daemon
STEP_MS=2000 # delay_max_ms: the step once the user has 4 failures or more
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

# spray WAVE: 60 parallel wrong guesses at alice, each from its own /64 of 2001:db8:WAVE::/48.
spray() {
        local pids=() i
        for i in $(seq 1 60); do
                sg_auth_direct alice "guess $i" "2001:db8:$1:$(printf '%x' "$i")::1" &
                pids+=($!)
        done
        for i in "${pids[@]}"; do wait "$i" && fail "a guess logged in"; done
        return 0
}
admitted() { sg_sql "SELECT count(*) FROM audit WHERE event = 'auth_failure' AND user = 'alice' AND reason = 'bad_password';"; }

t0=$(date +%s%N)
spray 1
spray_ms=$(ms_since "$t0")
hashed=$(admitted)
paced=$(sg_sql "SELECT count(*) FROM audit WHERE event = 'auth_blocked' AND reason = 'paced' AND user = 'alice';")
sg_log "60 parallel guesses from 60 /64s took $spray_ms ms: $hashed hashed (wrong password), $paced paced rows (the rest summarized)"
# 5 free, the 6th takes the first step, then one per step of the time the spray took.
check "guesses are paced: $hashed hashed <= 6 + $spray_ms / $STEP_MS + 1" \
        test "$hashed" -le $((6 + spray_ms / STEP_MS + 1))
check "the refused ones are audited as paced" test "$paced" -ge 1
check "no lock: the victim is paced, not locked out" test "$(sgctl --json locks | grep -c . || true)" -eq 0
check "the pacing shows in the log" grep -q 'SECGUARD_REASON=paced' "$T/daemon.log"

# A local login of the victim is not held up by the remote flood (its own step).
t0=$(date +%s%N)
check "the victim logs in locally during the attack" sg_auth alice "$SG_PW_ALICE"
local_ms=$(ms_since "$t0")

# Again, then the victim from a fresh address once a step is free: a normal login.
spray 2
sleep $((STEP_MS / 1000 + 1))
t0=$(date +%s%N)
check "the victim logs in from a fresh address when the step is free" sg_auth alice "$SG_PW_ALICE" 2001:db8:ffff::1
remote_ms=$(ms_since "$t0")
t0=$(date +%s%N)
sg_auth bob "$SG_PW_BOB" 192.0.2.30 || fail "bob cannot log in"
plain_ms=$(ms_since "$t0")
sg_log "victim's logins: local $local_ms ms during the attack, remote $remote_ms ms after it; an unrelated login $plain_ms ms"
# Normal time: no added delay (a success waits for none); generous margin for load/valgrind.
check "the victim's logins take a normal time (no pacing delay)" \
        test "$local_ms" -lt $((plain_ms + 1500)) -a "$remote_ms" -lt $((plain_ms + 1500))
check "audit verify passes" sgctl audit verify

# `unlock --rhost ADDR` also lifts a lock on ADDR's wider network (/48 here): the lock that
# blocks the address is what the administrator means to clear.
sg_stop_daemon
sg_write_config "[ratelimit]" "source_max_failures = 2" "user_max_failures = 100" "delay_step_ms = 0"
sg_start_daemon
# (3fff::/20 is another documentation range: the sprays above locked 2001:db8::/32.)
for i in 1 2 3 4 5; do sg_auth "user$i" wrong "3fff:1:7:$i::1" || true; done
check "failures from 5 /64s of one /48 lock the /48" grep -q '3fff:1:7::/48' <(sgctl locks)
check "  ... so an address of it is refused" ! sg_auth alice "$SG_PW_ALICE" 3fff:1:7:99::1
check "unlock --rhost with an address inside the /48" sgctl unlock --rhost 3fff:1:7:99::1
check "  ... lifts the network's lock" ! grep -q '3fff:1:7::/48' <(sgctl locks)
check "  ... and the address logs in" sg_auth alice "$SG_PW_ALICE" 3fff:1:7:99::1
check "the /32 the sprays locked is lifted the same way" sgctl unlock --rhost 2001:db8:ffff::1
check "  ... and an address in it logs in" sg_auth alice "$SG_PW_ALICE" 2001:db8:ffff::1
sg_done
