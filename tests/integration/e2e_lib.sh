# shellcheck shell=bash
# Helpers for the end-to-end tests (real sshd, real sudo) and the fault-injection tests.
# Source after lib.sh and sg_setup. Real clients run inside a private mount namespace
# (`unshare -m`, private propagation) where a private /etc/pam.d, passwd, group, shadow
# (and sudoers) are bind-mounted over the host's: nothing on the host changes, and the
# namespace disappears with its last process.

E2E_USER=sgalice
E2E_UID=61234
E2E_PW='e2e alice password'

# Prints a TCP port on 127.0.0.1 that is free right now.
e2e_free_port() {
        $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Writes $T/etc/{passwd,group,shadow,pam.d/}: the host's accounts (with no password of
# theirs: every host user gets "*" in the private shadow) plus $E2E_USER with a home in $T
# and a $1-scheme hash (default sha512crypt) of $E2E_PW.
e2e_make_etc() {
        local scheme=${1:-sha512crypt} name rest
        mkdir -p "$T/etc/pam.d" "$T/home/$E2E_USER"
        chmod 0755 "$T/etc" "$T/etc/pam.d" "$T/home" "$T/home/$E2E_USER"
        chown "$E2E_UID:$E2E_UID" "$T/home/$E2E_USER"
        getent passwd "$E2E_UID" >/dev/null && fail "uid $E2E_UID is taken on this host"
        grep -v "^$E2E_USER:" /etc/passwd >"$T/etc/passwd"
        echo "$E2E_USER:x:$E2E_UID:$E2E_UID:secguard e2e:$T/home/$E2E_USER:/bin/sh" >>"$T/etc/passwd"
        grep -v "^$E2E_USER:" /etc/group >"$T/etc/group"
        echo "$E2E_USER:x:$E2E_UID:" >>"$T/etc/group"
        : >"$T/etc/shadow"
        while IFS=: read -r name rest; do
                [ "$name" = "$E2E_USER" ] && continue
                echo "$name:*:20000:0:99999:7:::" >>"$T/etc/shadow"
        done <"$T/etc/passwd"
        echo "$E2E_USER:$(sg_hash "$scheme" "$E2E_PW"):20000:0:99999:7:::" >>"$T/etc/shadow"
        chmod 0644 "$T/etc/passwd" "$T/etc/group"
        chmod 0640 "$T/etc/shadow"
        printf 'auth required pam_deny.so\naccount required pam_deny.so\npassword required pam_deny.so\nsession required pam_deny.so\n' \
                >"$T/etc/pam.d/other"
}

# A PAM service in the private pam.d: our module for auth, account and password (shadow=
# is the bind-mounted /etc/shadow), pam_permit for the session (ours has none yet).
e2e_write_service() {
        local args="config=$T/secguard.conf shadow=/etc/shadow"
        cat >"$T/etc/pam.d/$1" <<EOF
auth     required $PAM_MODULE $args
account  required $PAM_MODULE $args
password required $PAM_MODULE $args
session  required pam_permit.so
EOF
}

# Writes $T/ns-enter.sh: run inside `unshare -m`, it makes the mounts private to the
# namespace and then execs "$@". Extra bind mounts: E2E_BINDS=("src:dst" ...). When the
# directory $T/etc-upper exists, /etc becomes an overlay with it as the upper layer first
# (for files the host lacks, e.g. /etc/ld.so.preload); writes land in $T, never in /etc.
# /run is replaced by a tmpfs (for /run/sshd, /run/sudo) and /dev/log by /dev/null, so no
# client in the namespace reaches the host's syslog, journal or sudo timestamps.
e2e_write_ns_script() {
        local b
        {
                echo '#!/bin/bash'
                echo 'set -eu'
                echo 'mount --make-rprivate /'
                if [ -d "$T/etc-upper" ]; then
                        mkdir -p "$T/etc-work"
                        echo "mount -t overlay sgetc -o 'lowerdir=/etc,upperdir=$T/etc-upper,workdir=$T/etc-work' /etc"
                fi
                echo "mount --bind '$T/etc/pam.d' /etc/pam.d"
                echo "mount --bind '$T/etc/passwd' /etc/passwd"
                echo "mount --bind '$T/etc/group' /etc/group"
                echo "mount --bind '$T/etc/shadow' /etc/shadow"
                for b in "${E2E_BINDS[@]}"; do
                        echo "mount --bind '${b%%:*}' '${b#*:}'"
                done
                echo 'mount -t tmpfs -o mode=0755 tmpfs /run'
                echo 'mkdir -m 0755 /run/sshd'
                echo 'if [ -e /dev/log ] || [ -L /dev/log ]; then mount --bind /dev/null /dev/log 2>/dev/null || true; fi'
                echo 'if [ -d /var/lib/sudo ]; then mount -t tmpfs -o mode=0700 tmpfs /var/lib/sudo; fi'
                echo 'exec "$@"'
        } >"$T/ns-enter.sh"
        chmod 0755 "$T/ns-enter.sh"
}

# e2e_ns CMD...: runs CMD in a fresh private mount namespace.
e2e_ns() { unshare -m -- "$T/ns-enter.sh" "$@"; }

# Milliseconds since the epoch.
e2e_now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
