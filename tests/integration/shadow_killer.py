#!/usr/bin/python3
"""SIGKILL pamtester (and so pam_secguard.so) at random moments of shadow updates.

Used by t_faults.sh (part c). Each round starts one pamtester, either an upgrade login
(a sha512crypt user not yet upgraded, [auth] upgrade_hashes = yes) or a password change by
root, then kills it with SIGKILL: in "timed" rounds after a random delay, in "racing" rounds
at a random moment soon after the temp file ".NAME.XXXXXX" appears beside the shadow file
(during the write, fsync or rename). Delays scale with the length of one unkilled round,
measured first (longer under the sanitizers). After every round the shadow file must be
complete: every user once, in order, other lines byte for byte, each hash either the old one
or a well-formed new one. The pamtester environment (PAM_WRAPPER...) is inherited; LD_PRELOAD
for pamtester comes from SG_PAM_PRELOAD, so that python itself runs without the wrappers.

usage: shadow_killer.py SHADOW ORIGINAL SERVICE ROUNDS UPGRADE_PASSWORD
"""
import glob
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time

HASH = re.compile(rb"^(\$6\$[./0-9A-Za-z]+\$[./0-9A-Za-z]{86}"
                  rb"|\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+)$")


def check(path, want):
    data = open(path, "rb").read()
    if not data.endswith(b"\n"):
        return "no final newline"
    lines = data[:-1].split(b"\n")
    if len(lines) != len(want):
        return "%d lines, want %d" % (len(lines), len(want))
    for got, w in zip(lines, want):
        f = got.split(b":")
        if len(f) != 9 or f[0] != w[0]:
            return "line for %r is %r" % (w[0], got[:60])
        if w[0].startswith(b"filler"):
            if f != w:
                return "filler line changed: %r" % got
            continue
        if f[1] != w[1] and not HASH.match(f[1]):
            return "%r: unparseable hash %r" % (f[0], f[1][:30])
        if f[3:] != w[3:]:
            return "%r: other fields changed" % f[0]
    return None


def temps(directory, base):
    pat = re.compile(r"^\." + re.escape(base) + r"\.[A-Za-z0-9]{6}$")
    return {n for n in os.listdir(directory) if pat.match(n)}


def drop_wrapper_dir(pid):
    """pam_wrapper's /tmp/pam.X of a killed pamtester stays behind; with only ~62 such names
    (stale ones reaped only when met, never when the pid file is still empty), enough kills
    make a later pamtester give up. Only one pamtester runs at a time here (in the test's
    private /tmp), so a directory of the killed pid or with no pid yet is the killed one's."""
    for d in glob.glob("/tmp/pam.?"):
        try:
            with open(os.path.join(d, "pid")) as f:
                owner = f.read().strip()
        except OSError:
            owner = ""
        if owner in ("", str(pid)):
            shutil.rmtree(d, ignore_errors=True)


def main():
    path, orig, service, rounds, upw = sys.argv[1:6]
    rounds = int(rounds)
    want = [l.split(b":") for l in open(orig, "rb").read().split(b"\n") if l]
    fresh = [w[0].decode() for w in want if w[0].startswith(b"up")]
    changers = [w[0].decode() for w in want if w[0].startswith(b"ch")]
    directory, base = os.path.split(path)
    rng = random.Random(int(os.environ.get("SG_SEED", "0")) or None)
    stats = dict(rounds=0, killed=0, finished=0, racing=0, timed=0, replaced=0, upgrades=0, changes=0)
    env = dict(os.environ, LD_PRELOAD=os.environ.get("SG_PAM_PRELOAD", ""))
    before = temps(directory, base)
    ino = os.stat(path).st_ino
    # Calibration: one password change run to its end gives the time scale of a round.
    t0 = time.monotonic()
    pw = "calibration pw 1"
    subprocess.run(["pamtester", service, changers[0], "chauthtok"], input=(pw + "\n" + pw + "\n").encode(),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, timeout=30, check=True)
    span = time.monotonic() - t0
    stats["round_ms"] = int(span * 1000)
    for i in range(rounds):
        if fresh and rng.random() < 0.5:
            user = fresh.pop(0)
            argv, stdin = ["pamtester", service, user, "authenticate"], upw + "\n"
            stats["upgrades"] += 1
        else:
            user = rng.choice(changers)
            pw = "changed pw %d %d" % (i, rng.randrange(1 << 30))
            argv, stdin = ["pamtester", service, user, "chauthtok"], pw + "\n" + pw + "\n"
            stats["changes"] += 1
        racing = rng.random() < 0.6
        seen = temps(directory, base)
        p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=env)
        p.stdin.write(stdin.encode())
        p.stdin.close()
        if racing:
            stats["racing"] += 1
            deadline = time.monotonic() + 10
            while p.poll() is None and time.monotonic() < deadline:
                if temps(directory, base) - seen:
                    time.sleep(rng.uniform(0, span / 8))
                    break
        else:
            stats["timed"] += 1
            time.sleep(rng.uniform(0, span * 1.2))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            stats["killed"] += 1
        else:
            stats["finished"] += 1
        p.wait(timeout=30)
        if p.returncode == -signal.SIGKILL:
            drop_wrapper_dir(p.pid)
        stats["rounds"] += 1
        st = os.stat(path)
        if st.st_ino != ino:
            stats["replaced"] += 1
            ino = st.st_ino
        err = check(path, want)
        if err:
            print("round %d (%s %s): shadow file broken: %s" % (i + 1, argv[3], user, err))
            return 1
    left = sorted(temps(directory, base) - before)
    stats["leftover_temp_files"] = len(left)
    print(" ".join("%s=%s" % kv for kv in stats.items()))
    if left:
        sizes = [os.stat(os.path.join(directory, n)).st_size for n in left]
        modes = {"%o" % (os.stat(os.path.join(directory, n)).st_mode & 0o7777) for n in left}
        print("leftover temp files: %d, sizes %d..%d bytes (shadow is %d), modes %s" %
              (len(left), min(sizes), max(sizes), os.stat(path).st_size, ",".join(sorted(modes))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
