/* SPDX-License-Identifier: MIT */
/*
 * Client-side frame I/O (module and CLI). Every wait is bounded by one absolute monotonic
 * deadline, so a stalled or hostile daemon can never hang a login (docs/threat-model.md).
 * The socket is non-blocking and every send/recv also passes MSG_DONTWAIT, so
 * even a blocking fd handed in by a caller cannot block past the deadline.
 */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "io.h"

static uint64_t now_usec(clockid_t clock) {
        struct timespec ts;

        if (clock_gettime(clock, &ts) < 0)
                return 0; /* cannot happen for these clocks */
        return (uint64_t) ts.tv_sec * UINT64_C(1000000) + (uint64_t) ts.tv_nsec / 1000;
}

uint64_t sg_now_mono_usec(void) {
        return now_usec(CLOCK_MONOTONIC);
}

uint64_t sg_now_real_usec(void) {
        return now_usec(CLOCK_REALTIME);
}

/* Waits for events on fd until the deadline. 0 when the fd is ready (or in error: the next
 * I/O call reports that), -ETIMEDOUT, or -errno. ppoll keeps microsecond precision so we
 * never overshoot the deadline by a rounded-up millisecond. */
static int wait_fd(int fd, short events, uint64_t deadline_usec) {
        for (;;) {
                uint64_t now = sg_now_mono_usec();
                if (now >= deadline_usec)
                        return -ETIMEDOUT;

                uint64_t left = deadline_usec - now;
                struct timespec ts = {
                        .tv_sec = (time_t) (left / 1000000),
                        .tv_nsec = (long) (left % 1000000) * 1000,
                };
                struct pollfd pfd = { .fd = fd, .events = events };

                int r = ppoll(&pfd, 1, &ts, NULL);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (r == 0)
                        continue; /* re-check the clock: ppoll may wake a little early */
                if (pfd.revents & POLLNVAL)
                        return -EBADF;
                return 0;
        }
}

/* Keeps fd 0-2 free: a daemon socket on fd 2 would receive whatever the application writes to
 * stderr (and a later close of "stderr" would close our socket). */
static int move_above_stdio(int fd) {
        if (fd > STDERR_FILENO)
                return fd;

        int nfd = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
        int saved = errno;
        close(fd);
        if (nfd < 0)
                return -saved;
        return nfd;
}

static int connect_until(int fd, const struct sockaddr_un *sa, socklen_t salen,
                         uint64_t deadline_usec) {
        for (;;) {
                if (connect(fd, (const struct sockaddr *) sa, salen) == 0)
                        return 0;

                switch (errno) {
                case EISCONN:
                        return 0;
                case EINTR:
                        continue;
                case EAGAIN: {
                        /* AF_UNIX: the listen backlog is full and nothing is pending; retry in
                         * small steps until the deadline. */
                        uint64_t now = sg_now_mono_usec();
                        if (now >= deadline_usec)
                                return -ETIMEDOUT;
                        uint64_t step = deadline_usec - now;
                        if (step > 5000)
                                step = 5000;
                        struct timespec ts = { .tv_sec = 0, .tv_nsec = (long) step * 1000 };
                        (void) nanosleep(&ts, NULL);
                        continue;
                }
                case EINPROGRESS:
                case EALREADY: {
                        int r = wait_fd(fd, POLLOUT, deadline_usec);
                        if (r < 0)
                                return r;
                        int err = 0;
                        socklen_t len = sizeof(err);
                        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                                return -errno;
                        return err == 0 ? 0 : -err;
                }
                default:
                        return -errno;
                }
        }
}

int sg_connect(const char *path, uint64_t deadline_usec, uid_t expect_uid) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        uid_t peer_uid = (uid_t) -1;
        size_t plen;
        int fd, r;

        if (!path || !*path)
                return -EINVAL;
        plen = strlen(path);
        if (plen >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, path, plen + 1);

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        fd = move_above_stdio(fd);
        if (fd < 0)
                return fd;

        r = connect_until(fd, &sa, (socklen_t) (offsetof(struct sockaddr_un, sun_path) + plen + 1),
                          deadline_usec);
        if (r < 0)
                goto fail;

        /* Trust the kernel's view of who listens there, before a single byte is sent: a user
         * who managed to bind the path must not receive usernames or tokens. */
        r = sg_peer_cred(fd, NULL, &peer_uid, NULL);
        if (r < 0)
                goto fail;
        if (peer_uid != expect_uid) {
                r = -EPERM;
                goto fail;
        }
        return fd;

fail:
        close(fd);
        return r;
}

int sg_write_frame(int fd, const uint8_t *buf, size_t len, uint64_t deadline_usec) {
        size_t off = 0;

        if (fd < 0)
                return -EBADF;
        if (!buf && len > 0)
                return -EINVAL;

        while (off < len) {
                ssize_t n = send(fd, buf + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n >= 0) {
                        off += (size_t) n;
                        continue;
                }
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN && errno != EWOULDBLOCK)
                        return -errno;
                int r = wait_fd(fd, POLLOUT, deadline_usec);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Reads exactly len bytes. EOF, even in the middle of a frame, is -ECONNRESET. */
static int read_exact(int fd, uint8_t *buf, size_t len, uint64_t deadline_usec) {
        size_t off = 0;

        while (off < len) {
                ssize_t n = recv(fd, buf + off, len - off, MSG_DONTWAIT);
                if (n > 0) {
                        off += (size_t) n;
                        continue;
                }
                if (n == 0)
                        return -ECONNRESET;
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN && errno != EWOULDBLOCK)
                        return -errno;
                int r = wait_fd(fd, POLLIN, deadline_usec);
                if (r < 0)
                        return r;
        }
        return 0;
}

static void msg_clear(struct sg_msg *m) {
        m->type = SG_MSG_NONE;
        m->present = 0;
        m->used = 0;
}

int sg_read_msg(int fd, struct sg_msg *m, uint64_t deadline_usec, int *ret_proto_err) {
        uint8_t hdr[SG_FRAME_HEADER];
        uint8_t *frame;
        size_t plen;
        int r;

        if (ret_proto_err)
                *ret_proto_err = SG_PROTO_OK;
        if (!m)
                return -EINVAL;
        msg_clear(m);
        if (fd < 0)
                return -EBADF;

        r = read_exact(fd, hdr, sizeof(hdr), deadline_usec);
        if (r < 0)
                return r;

        /* The header alone decides whether the payload is acceptable, so a peer announcing a
         * huge or garbage frame is refused before we read or allocate for it. */
        r = sg_frame_header(hdr, &plen);
        if (r < 0) {
                if (ret_proto_err)
                        *ret_proto_err = r;
                return -EBADMSG;
        }

        /* Heap, not stack: PAM may run us on a small thread stack (screen lockers, polkit). */
        frame = malloc(SG_FRAME_HEADER + plen);
        if (!frame)
                return -ENOMEM;
        memcpy(frame, hdr, sizeof(hdr));

        r = read_exact(fd, frame + SG_FRAME_HEADER, plen, deadline_usec);
        if (r == 0) {
                r = sg_msg_decode(frame, SG_FRAME_HEADER + plen, m);
                if (r < 0) {
                        if (ret_proto_err)
                                *ret_proto_err = r;
                        r = -EBADMSG;
                }
        }

        /* Frames may carry one-time tokens and session ids. */
        sodium_memzero(frame, SG_FRAME_HEADER + plen);
        free(frame);
        return r;
}

int sg_call(int fd, struct sg_writer *w, struct sg_msg *m, uint64_t deadline_usec) {
        size_t len;
        int r, q;

        if (!w || !m)
                return -EINVAL;
        msg_clear(m);

        r = sg_writer_finish(w, &len);
        if (r < 0)
                return r == SG_PROTO_ENOSPC ? -EMSGSIZE : -EINVAL;

        r = sg_write_frame(fd, w->buf, len, deadline_usec);
        /* The request may carry a one-time token; it is of no use once sent. */
        sodium_memzero(w->buf, len);
        /* A daemon that refuses a connection answers before the request and closes: its
         * answer may still be waiting to be read when our write finds the socket closed. */
        if (r < 0 && r != -EPIPE && r != -ECONNRESET)
                return r;

        q = sg_read_msg(fd, m, deadline_usec, NULL);
        if (q < 0)
                return r < 0 ? r : q;

        /* A daemon answers with replies only; anything else means we are not talking to one. */
        if (m->type != SG_MSG_OK && m->type != SG_MSG_ERROR && m->type != SG_MSG_ROW) {
                msg_clear(m);
                return -EBADMSG;
        }
        return 0;
}

int sg_peer_cred(int fd, pid_t *ret_pid, uid_t *ret_uid, gid_t *ret_gid) {
        struct ucred uc;
        socklen_t len = sizeof(uc);

        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
                return -errno;
        if (len != sizeof(uc))
                return -EIO;

        if (ret_pid)
                *ret_pid = uc.pid;
        if (ret_uid)
                *ret_uid = uc.uid;
        if (ret_gid)
                *ret_gid = uc.gid;
        return 0;
}
