# shellcheck shell=bash
# sg_debian_tree: prints the path of a Debian 12 minbase tree (with systemd, logind's PAM
# module, sshd, sudo and secguard's run-time libraries) made once with debootstrap from the mirror apt uses and
# cached in $SG_DEBOOTSTRAP_CACHE (default /var/cache/secguard-test; about 2 min, 270 MB).
# Tests never change it: they mount an overlay over it.
sg_debian_tree() {
        local cache=${SG_DEBOOTSTRAP_CACHE:-/var/cache/secguard-test} mirror
        # The name changes with the package list, so an older cached tree is never reused.
        local base="$cache/bookworm-minbase-3"
        mkdir -p "$cache"
        mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)
        : "${mirror:=http://deb.debian.org/debian}"
        (
                flock 9
                if [ ! -d "$base" ]; then
                        echo "# debootstrap bookworm minbase into $base from $mirror (once)" >&2
                        rm -rf "$base.tmp"
                        timeout 900 debootstrap --variant=minbase \
                                --include=systemd,systemd-sysv,dbus,libpam-systemd,libpam-runtime,libsodium23,libsqlite3-0,libinih1,libsystemd0,libcrypt1,libpq5,openssh-server,sudo \
                                bookworm "$base.tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 || {
                                echo "debootstrap failed (see $cache/debootstrap.log)" >&2
                                exit 1
                        }
                        mv "$base.tmp" "$base"
                fi
        ) 9>"$cache/.lock" || return 1
        echo "$base"
}
