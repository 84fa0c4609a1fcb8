#!/bin/bash
# `secguardctl hash` reads the password safely: from a pipe, one line (a '\r' before the newline
# dropped, input after it left unread), over-long or empty input refused; from a terminal (a
# pseudo-terminal driven by Python's pty module) the prompt goes to stderr, echo is off while
# the password is typed (it never appears on the terminal), and the terminal's echo is back
# after the answer, after SIGINT (Ctrl-C typed at the prompt) and after SIGTERM.
. "$(dirname "$0")/lib.sh"
sg_setup
CONF="$T/secguard.conf"

# ---- stdin is a pipe ----
h=$(printf 'pipe pw\n' | "$SECGUARDCTL" --config "$CONF" hash)
check "pipe: an argon2id hash" grep -q '^\$argon2id\$' <<<"$h"
verify_pw() { $PY -c 'import sys, crypt; sys.exit(0 if crypt.crypt(sys.argv[1], sys.argv[2]) == sys.argv[2] else 1)' "$1" "$2" 2>/dev/null; }
h=$(printf 'pipe pw\r\nsecond line\n' | "$SECGUARDCTL" --config "$CONF" hash --scheme sha512crypt)
check "pipe: CR LF ends the line, the rest is not part of it" verify_pw 'pipe pw' "$h"
# The password is read with read(2), one byte at a time: what follows the line stays unread.
out=$( { printf 'first\nleft for the next reader\n'; } | { "$SECGUARDCTL" --config "$CONF" hash --scheme sha512crypt >/dev/null; cat; })
check "pipe: input after the newline is left unread" test "$out" = "left for the next reader"
h=$(printf 'no newline' | "$SECGUARDCTL" --config "$CONF" hash --scheme sha512crypt)
check "pipe: EOF without a newline ends the password" verify_pw 'no newline' "$h"
rc=0; head -c 1025 /dev/zero | tr '\0' a | "$SECGUARDCTL" --config "$CONF" hash >/dev/null 2>"$T/long.err" || rc=$?
check "pipe: 1025 bytes refused (exit 1) with a reason" test "$rc" -eq 1 -a -n "$(grep 'longer than 1024' "$T/long.err")"
rc=0; head -c 1024 /dev/zero | tr '\0' a | "$SECGUARDCTL" --config "$CONF" hash >/dev/null 2>&1 || rc=$?
check "pipe: 1024 bytes accepted" test "$rc" -eq 0
rc=0; printf '\n' | "$SECGUARDCTL" --config "$CONF" hash >/dev/null 2>&1 || rc=$?
check "pipe: an empty password is refused" test "$rc" -eq 1
rc=0; "$SECGUARDCTL" --config "$CONF" hash </dev/null >"$T/pipe.out" 2>"$T/pipe.err" || rc=$?
check "pipe: no prompt when stdin is not a terminal" test "$rc" -eq 1 -a ! -s "$T/pipe.out" -a -z "$(grep -i password: "$T/pipe.err")"

# ---- stdin is a terminal ----
# pty_hash MODE: runs `secguardctl hash` on a new pseudo-terminal; MODE answer | sigint | sigterm.
pty_hash() {
        $PY - "$1" "$SECGUARDCTL" "$CONF" <<'PYEOF'
import os, pty, select, signal, sys, termios, time
mode, ctl, conf = sys.argv[1:4]
secret = b"Pty-Secret-8731"
pid, fd = pty.fork()
if pid == 0:
    os.execv(ctl, [ctl, "--config", conf, "hash", "--scheme", "sha512crypt"])
seen = b""
def read_for(seconds, until=None):
    global seen
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                return
            if not chunk:
                return
            seen += chunk
            if until and until in seen:
                return
def echo_on():
    return bool(termios.tcgetattr(fd)[3] & termios.ECHO)
def fail(msg):
    print("FAIL:", msg, "terminal showed:", seen, file=sys.stderr)
    sys.exit(1)
read_for(10, b"Password")
if b"Password" not in seen:
    fail("no prompt")
if echo_on():
    fail("echo is on at the prompt")
if mode == "answer":
    os.write(fd, secret + b"\n")
    read_for(10, b"$6$")
    read_for(1)
    _, status = os.waitpid(pid, 0)
    if secret in seen:
        fail("the password was echoed")
    if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0 or b"$6$" not in seen:
        fail("no hash (status %r)" % status)
elif mode == "sigint":
    os.write(fd, b"Pty-Sec\x03")  # a half-typed password, then Ctrl-C
    _, status = os.waitpid(pid, 0)
    if not os.WIFSIGNALED(status) or os.WTERMSIG(status) != signal.SIGINT:
        fail("not ended by SIGINT (status %r)" % status)
else:
    os.kill(pid, signal.SIGTERM)
    _, status = os.waitpid(pid, 0)
    if not os.WIFSIGNALED(status) or os.WTERMSIG(status) != signal.SIGTERM:
        fail("not ended by SIGTERM (status %r)" % status)
if not echo_on():
    fail("echo still off after %s" % mode)
PYEOF
}
check "terminal: prompt, echo off while typing, the password never shown, echo back on" pty_hash answer
check "terminal: Ctrl-C at the prompt ends it and turns echo back on" pty_hash sigint
check "terminal: SIGTERM at the prompt ends it and turns echo back on" pty_hash sigterm

sg_done
