/* SPDX-License-Identifier: MIT */
/*
 * Client frame I/O over real Unix sockets: round trips through sg_call against a forked echo
 * server, deadlines that fire on time when the peer stalls, EOF, early refusal of oversized
 * frames, the peer uid check, and the fd hygiene the module promises (never fd 0-2,
 * close-on-exec, non-blocking, no SIGPIPE).
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "io.h"
#include "protocol.h"

#define MSEC UINT64_C(1000)
#define SLACK (150 * MSEC) /* scheduling slack on a loaded CI machine */

static char tmpdir[256];
static char sockpath[PATH_MAX];

static int setup_dir(void **state) {
        const char *base = getenv("SG_TEST_TMP");
        (void) state;

        /* sun_path is 108 bytes: fall back to /tmp if the build dir is deep. */
        if (!base || strlen(base) > 60)
                base = "/tmp";
        snprintf(tmpdir, sizeof(tmpdir), "%s/sgio.XXXXXX", base);
        if (!mkdtemp(tmpdir))
                return -1;
        snprintf(sockpath, sizeof(sockpath), "%s/sock", tmpdir);
        return 0;
}

static int teardown_dir(void **state) {
        (void) state;
        unlink(sockpath);
        return rmdir(tmpdir);
}

static int listen_at(const char *path, int backlog) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        assert_true(fd >= 0);
        unlink(path);
        assert_true(strlen(path) < sizeof(sa.sun_path));
        strcpy(sa.sun_path, path);
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        assert_int_equal(listen(fd, backlog), 0);
        return fd;
}

static size_t count_fds(void) {
        DIR *d = opendir("/proc/self/fd");
        size_t n = 0;

        assert_non_null(d);
        while (readdir(d))
                n++;
        closedir(d);
        return n;
}

static struct sg_msg *msg_new(void) {
        struct sg_msg *m = calloc(1, sizeof(*m));
        assert_non_null(m);
        return m;
}

static struct sg_writer *writer_new(void) {
        struct sg_writer *w = malloc(sizeof(*w));
        assert_non_null(w);
        return w;
}

static void put32(uint8_t *p, uint32_t v) {
        p[0] = (uint8_t) (v >> 24);
        p[1] = (uint8_t) (v >> 16);
        p[2] = (uint8_t) (v >> 8);
        p[3] = (uint8_t) v;
}

static void make_header(uint8_t *h, uint8_t type, uint32_t plen) {
        h[0] = 'S';
        h[1] = 'G';
        h[2] = SG_PROTO_VERSION;
        h[3] = type;
        put32(h + 4, plen);
}

/* ---- forked echo server (no cmocka in the child: plain exit codes) ---- */

/* Copies every field of m into an OK reply. */
static void echo_fields(const struct sg_msg *m, struct sg_writer *w) {
        sg_writer_init(w, SG_MSG_OK);
        for (uint8_t t = 1; t < SG_F_MAX; t++) {
                size_t n;
                const uint8_t *p;
                if (!sg_msg_has(m, t))
                        continue;
                if (sg_msg_str(m, t))
                        sg_writer_str(w, t, sg_msg_str(m, t));
                else if ((p = sg_msg_bytes(m, t, &n)))
                        sg_writer_bytes(w, t, p, n);
                else
                        sg_writer_u64(w, t, sg_msg_u64(m, t, 0));
        }
}

static int send_writer(int fd, struct sg_writer *w) {
        size_t len;
        if (sg_writer_finish(w, &len) < 0)
                return -1;
        return sg_write_frame(fd, w->buf, len, sg_now_mono_usec() + 2000 * MSEC);
}

static int echo_loop(int cfd, struct sg_msg *m, struct sg_writer *w) {
        for (;;) {
                int r = sg_read_msg(cfd, m, sg_now_mono_usec() + 5000 * MSEC, NULL);
                if (r == -ECONNRESET)
                        return 0;
                if (r < 0)
                        return 11;
                if (m->type == SG_MSG_SESSIONS) {
                        /* a listing: two rows, then OK */
                        for (uint64_t id = 1; id <= 2; id++) {
                                sg_writer_init(w, SG_MSG_ROW);
                                sg_writer_u64(w, SG_F_ID, id);
                                sg_writer_str(w, SG_F_USER, id == 1 ? "alice" : "bob");
                                if (send_writer(cfd, w) < 0)
                                        return 12;
                        }
                        sg_writer_init(w, SG_MSG_OK);
                        sg_writer_u64(w, SG_F_COUNT, 2);
                } else
                        echo_fields(m, w);
                if (send_writer(cfd, w) < 0)
                        return 13;
        }
}

static int echo_server(int lfd) {
        struct sg_msg *m = calloc(1, sizeof(*m));
        struct sg_writer *w = malloc(sizeof(*w));
        int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC), r = 10;

        if (m && w && cfd >= 0)
                r = echo_loop(cfd, m, w);
        free(m);
        free(w);
        if (cfd >= 0)
                close(cfd);
        return r;
}

static pid_t start_echo_server(int lfd) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(echo_server(lfd));
        return pid;
}

static int wait_child(pid_t pid) {
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        return WEXITSTATUS(status);
}

/* ---- tests ---- */

static void test_call_roundtrip(void **state) {
        struct sg_writer *w = writer_new();
        struct sg_msg *m = msg_new();
        (void) state;

        int lfd = listen_at(sockpath, 8);
        pid_t pid = start_echo_server(lfd);
        close(lfd);

        uint64_t deadline = sg_now_mono_usec() + 2000 * MSEC;
        int fd = sg_connect(sockpath, deadline, geteuid());
        assert_true(fd > STDERR_FILENO);
        assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);

        for (int i = 0; i < 3; i++) {
                sg_writer_init(w, SG_MSG_PRECHECK);
                sg_writer_str(w, SG_F_USER, "al\x1b[31mice"); /* hostile bytes pass verbatim */
                sg_writer_str(w, SG_F_SERVICE, "sshd");
                sg_writer_str(w, SG_F_RHOST, "2001:db8::1");
                sg_writer_u64(w, SG_F_USER_KNOWN, (uint64_t) i);
                assert_int_equal(sg_call(fd, w, m, deadline), 0);
                assert_int_equal(m->type, SG_MSG_OK);
                assert_string_equal(sg_msg_str(m, SG_F_USER), "al\x1b[31mice");
                assert_string_equal(sg_msg_str(m, SG_F_SERVICE), "sshd");
                assert_string_equal(sg_msg_str(m, SG_F_RHOST), "2001:db8::1");
                assert_int_equal(sg_msg_u64(m, SG_F_USER_KNOWN, 99), i);
                assert_false(sg_msg_has(m, SG_F_TTY));
        }

        /* a listing: sg_call returns the first row, the rest is read until OK */
        sg_writer_init(w, SG_MSG_SESSIONS);
        assert_int_equal(sg_call(fd, w, m, deadline), 0);
        assert_int_equal(m->type, SG_MSG_ROW);
        assert_string_equal(sg_msg_str(m, SG_F_USER), "alice");
        assert_int_equal(sg_read_msg(fd, m, deadline, NULL), 0);
        assert_int_equal(m->type, SG_MSG_ROW);
        assert_int_equal(sg_msg_u64(m, SG_F_ID, 0), 2);
        assert_int_equal(sg_read_msg(fd, m, deadline, NULL), 0);
        assert_int_equal(m->type, SG_MSG_OK);
        assert_int_equal(sg_msg_u64(m, SG_F_COUNT, 0), 2);

        close(fd);
        assert_int_equal(wait_child(pid), 0);
        free(m);
        free(w);
}

static void test_call_writer_error(void **state) {
        struct sg_writer *w = writer_new();
        struct sg_msg *m = msg_new();
        int sv[2];
        (void) state;

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        sg_writer_init(w, SG_MSG_PRECHECK);
        sg_writer_u64(w, SG_F_USER, 1);
        assert_int_equal(sg_call(sv[0], w, m, sg_now_mono_usec() + 500 * MSEC), -EINVAL);
        int avail = -1;
        assert_int_equal(ioctl(sv[1], FIONREAD, &avail), 0);
        assert_int_equal(avail, 0); /* nothing was sent */
        close(sv[0]);
        close(sv[1]);
        free(m);
        free(w);
}

/* A server that answers with a request type is not a daemon. */
static void test_call_rejects_non_reply(void **state) {
        struct sg_writer *w = writer_new(), *reply = writer_new();
        struct sg_msg *m = msg_new();
        size_t len;
        int sv[2];
        (void) state;

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        sg_writer_init(reply, SG_MSG_SESSION_KILL);
        sg_writer_str(reply, SG_F_SESSION_ID, "00112233445566778899aabbccddeeff");
        assert_int_equal(sg_writer_finish(reply, &len), 0);
        assert_int_equal(write(sv[1], reply->buf, len), (ssize_t) len);

        sg_writer_init(w, SG_MSG_STATUS);
        assert_int_equal(sg_call(sv[0], w, m, sg_now_mono_usec() + 500 * MSEC), -EBADMSG);
        assert_int_equal(m->type, SG_MSG_NONE);
        assert_false(sg_msg_has(m, SG_F_ID));
        close(sv[0]);
        close(sv[1]);
        free(m);
        free(w);
        free(reply);
}

static void expect_timeout(int fd, uint64_t wait_usec) {
        struct sg_msg *m = msg_new();
        uint64_t t0 = sg_now_mono_usec();
        int perr = 123;

        assert_int_equal(sg_read_msg(fd, m, t0 + wait_usec, &perr), -ETIMEDOUT);
        uint64_t took = sg_now_mono_usec() - t0;
        assert_true(took >= wait_usec);
        assert_true(took < wait_usec + SLACK);
        assert_int_equal(perr, 0);
        assert_int_equal(m->type, SG_MSG_NONE);
        free(m);
}

static void test_read_timeout_half_header(void **state) {
        int sv[2];
        (void) state;

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        assert_int_equal(write(sv[1], "SG\1", 3), 3); /* and then the peer stalls */
        expect_timeout(sv[0], 200 * MSEC);
        close(sv[0]);
        close(sv[1]);
}

static void test_read_timeout_half_payload(void **state) {
        uint8_t buf[SG_FRAME_HEADER + 5];
        int sv[2];
        (void) state;

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        make_header(buf, SG_MSG_OK, 20);
        memcpy(buf + SG_FRAME_HEADER, "\x01\x00\x11" "ab", 5);
        assert_int_equal(write(sv[1], buf, sizeof(buf)), (ssize_t) sizeof(buf));
        expect_timeout(sv[0], 200 * MSEC);

        /* a deadline already past fails at once without blocking */
        struct sg_msg *m = msg_new();
        uint64_t t0 = sg_now_mono_usec();
        assert_int_equal(sg_read_msg(sv[0], m, t0 - 1, NULL), -ETIMEDOUT);
        assert_true(sg_now_mono_usec() - t0 < SLACK);
        free(m);
        close(sv[0]);
        close(sv[1]);
}

/* The peer trickles bytes slower than the deadline allows: the total, not each read, is bounded. */
static void test_read_deadline_is_absolute(void **state) {
        int sv[2];
        (void) state;

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                uint8_t h[SG_FRAME_HEADER];
                close(sv[0]);
                make_header(h, SG_MSG_OK, 1000);
                for (size_t i = 0; i < 50; i++) {
                        struct timespec ts = { 0, 40 * 1000 * 1000 };
                        if (send(sv[1], i < sizeof(h) ? &h[i] : (const uint8_t *) "x", 1,
                                 MSG_NOSIGNAL) != 1)
                                _exit(0);
                        nanosleep(&ts, NULL);
                }
                _exit(0);
        }
        close(sv[1]);
        expect_timeout(sv[0], 300 * MSEC);
        close(sv[0]);
        assert_int_equal(wait_child(pid), 0);
}

static void test_read_eof(void **state) {
        struct sg_msg *m = msg_new();
        int sv[2];
        (void) state;

        /* clean EOF between frames */
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        close(sv[1]);
        uint64_t t0 = sg_now_mono_usec();
        assert_int_equal(sg_read_msg(sv[0], m, t0 + 2000 * MSEC, NULL), -ECONNRESET);
        assert_true(sg_now_mono_usec() - t0 < SLACK);
        close(sv[0]);

        /* EOF in the middle of a payload */
        uint8_t h[SG_FRAME_HEADER];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        make_header(h, SG_MSG_OK, 10);
        assert_int_equal(write(sv[1], h, sizeof(h)), (ssize_t) sizeof(h));
        assert_int_equal(write(sv[1], "\x11\x00", 2), 2);
        close(sv[1]);
        assert_int_equal(sg_read_msg(sv[0], m, sg_now_mono_usec() + 2000 * MSEC, NULL),
                         -ECONNRESET);
        close(sv[0]);
        free(m);
}

static void test_read_oversized_header(void **state) {
        struct sg_msg *m = msg_new();
        uint8_t buf[SG_FRAME_HEADER + 100];
        int sv[2], perr = 0, avail = -1;
        (void) state;

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        memset(buf, 'x', sizeof(buf));
        make_header(buf, SG_MSG_OK, SG_PAYLOAD_MAX + 1);
        assert_int_equal(write(sv[1], buf, sizeof(buf)), (ssize_t) sizeof(buf));

        uint64_t t0 = sg_now_mono_usec();
        assert_int_equal(sg_read_msg(sv[0], m, t0 + 2000 * MSEC, &perr), -EBADMSG);
        assert_true(sg_now_mono_usec() - t0 < SLACK); /* did not wait for the huge payload */
        assert_int_equal(perr, SG_PROTO_EOVERSIZE);
        /* the header was read, the payload was not */
        assert_int_equal(ioctl(sv[0], FIONREAD, &avail), 0);
        assert_int_equal(avail, 100);

        /* garbage instead of a header */
        assert_int_equal(write(sv[1], "GET / HTTP/1.0\r\n", 16), 16);
        uint8_t drain[100];
        assert_int_equal(read(sv[0], drain, sizeof(drain)), 100);
        assert_int_equal(sg_read_msg(sv[0], m, t0 + 2000 * MSEC, &perr), -EBADMSG);
        assert_int_equal(perr, SG_PROTO_EMAGIC);
        close(sv[0]);
        close(sv[1]);
        free(m);
}

static void test_read_undecodable(void **state) {
        struct sg_msg *m = msg_new();
        static const uint8_t payload[] = { 17, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1,
                                           17, 0, 8, 0, 0, 0, 0, 0, 0, 0, 2 };
        uint8_t buf[SG_FRAME_HEADER + sizeof(payload)];
        int sv[2], perr = 0;
        (void) state;

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        make_header(buf, SG_MSG_OK, sizeof(payload));
        memcpy(buf + SG_FRAME_HEADER, payload, sizeof(payload));
        assert_int_equal(write(sv[1], buf, sizeof(buf)), (ssize_t) sizeof(buf));
        assert_int_equal(sg_read_msg(sv[0], m, sg_now_mono_usec() + 500 * MSEC, &perr), -EBADMSG);
        assert_int_equal(perr, SG_PROTO_EDUP);
        assert_int_equal(m->type, SG_MSG_NONE);

        /* the next, valid frame on the same stream still reads fine */
        buf[SG_FRAME_HEADER + 11] = 16;
        assert_int_equal(write(sv[1], buf, sizeof(buf)), (ssize_t) sizeof(buf));
        assert_int_equal(sg_read_msg(sv[0], m, sg_now_mono_usec() + 500 * MSEC, &perr), 0);
        assert_int_equal(perr, 0);
        assert_int_equal(sg_msg_u64(m, SG_F_COUNT, 0), 1);
        assert_int_equal(sg_msg_u64(m, SG_F_LIMIT, 0), 2);
        close(sv[0]);
        close(sv[1]);
        free(m);
}

static void test_connect_nonexistent(void **state) {
        char path[PATH_MAX];
        (void) state;

        snprintf(path, sizeof(path), "%s/nope", tmpdir);
        uint64_t t0 = sg_now_mono_usec();
        assert_int_equal(sg_connect(path, t0 + 2000 * MSEC, geteuid()), -ENOENT);
        assert_true(sg_now_mono_usec() - t0 < SLACK);

        /* a path that exists but is not a socket */
        assert_int_equal(sg_connect(tmpdir, t0 + 2000 * MSEC, geteuid()), -ECONNREFUSED);

        char longpath[200];
        memset(longpath, 'a', sizeof(longpath) - 1);
        longpath[0] = '/';
        longpath[sizeof(longpath) - 1] = 0;
        assert_int_equal(sg_connect(longpath, t0 + 2000 * MSEC, geteuid()), -ENAMETOOLONG);
        assert_int_equal(sg_connect("", t0 + 2000 * MSEC, geteuid()), -EINVAL);
        assert_int_equal(sg_connect(NULL, t0 + 2000 * MSEC, geteuid()), -EINVAL);
}

/* Nobody accepts and the socket has been removed: a stale listener path is refused at once. */
static void test_connect_refused(void **state) {
        (void) state;
        int lfd = listen_at(sockpath, 1);
        close(lfd);
        uint64_t t0 = sg_now_mono_usec();
        assert_int_equal(sg_connect(sockpath, t0 + 2000 * MSEC, geteuid()), -ECONNREFUSED);
        assert_true(sg_now_mono_usec() - t0 < SLACK);
        unlink(sockpath);
}

static void test_connect_checks_uid(void **state) {
        (void) state;
        int lfd = listen_at(sockpath, 8);
        size_t fds = count_fds();

        /* The listener is this process, so the server uid is our euid (root under CI). */
        uint64_t deadline = sg_now_mono_usec() + 2000 * MSEC;
        assert_int_equal(sg_connect(sockpath, deadline, geteuid() + 1), -EPERM);
        assert_int_equal(count_fds(), fds); /* the refused socket was closed */

        int fd = sg_connect(sockpath, deadline, geteuid());
        assert_true(fd > STDERR_FILENO);
        pid_t pid = 0;
        uid_t uid = 1;
        gid_t gid = 1;
        assert_int_equal(sg_peer_cred(fd, &pid, &uid, &gid), 0);
        assert_int_equal(pid, getpid());
        assert_int_equal(uid, geteuid());
        assert_int_equal(gid, getegid());
        close(fd);
        close(lfd);
        unlink(sockpath);
}

static void test_connect_never_stdio(void **state) {
        (void) state;
        int lfd = listen_at(sockpath, 8);
        int saved = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
        assert_true(saved >= 3);
        close(STDIN_FILENO);

        int fd = sg_connect(sockpath, sg_now_mono_usec() + 2000 * MSEC, geteuid());
        bool stdin_free = fcntl(STDIN_FILENO, F_GETFD) < 0 && errno == EBADF;
        int flags = fd >= 0 ? fcntl(fd, F_GETFD) : 0;

        assert_int_equal(dup2(saved, STDIN_FILENO), STDIN_FILENO);
        close(saved);
        assert_true(fd > STDERR_FILENO);
        assert_true(flags & FD_CLOEXEC);
        assert_true(stdin_free);
        close(fd);
        close(lfd);
        unlink(sockpath);
}

/* Backlog full: connect gets EAGAIN; we retry until the deadline, and succeed once the server
 * catches up. */
static void test_connect_backlog(void **state) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int filler[64], nfill = 0;
        (void) state;

        int lfd = listen_at(sockpath, 0);
        strcpy(sa.sun_path, sockpath);
        for (; nfill < 64; nfill++) {
                filler[nfill] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
                assert_true(filler[nfill] >= 0);
                if (connect(filler[nfill], (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                        assert_int_equal(errno, EAGAIN);
                        close(filler[nfill]);
                        break;
                }
        }
        assert_true(nfill < 64);

        uint64_t t0 = sg_now_mono_usec();
        assert_int_equal(sg_connect(sockpath, t0 + 200 * MSEC, geteuid()), -ETIMEDOUT);
        uint64_t took = sg_now_mono_usec() - t0;
        assert_true(took >= 200 * MSEC);
        assert_true(took < 200 * MSEC + SLACK);

        /* a server that accepts after 100 ms lets a waiting client in */
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                struct timespec ts = { 0, 100 * 1000 * 1000 };
                nanosleep(&ts, NULL);
                for (int i = 0; i < nfill + 1; i++) {
                        int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                        if (c < 0)
                                _exit(1);
                }
                _exit(0);
        }
        int fd = sg_connect(sockpath, sg_now_mono_usec() + 2000 * MSEC, geteuid());
        assert_true(fd > STDERR_FILENO);
        assert_int_equal(wait_child(pid), 0);
        close(fd);
        for (int i = 0; i < nfill; i++)
                close(filler[i]);
        close(lfd);
        unlink(sockpath);
}

static void test_write_timeout(void **state) {
        size_t big = 8 * 1024 * 1024;
        uint8_t *buf = calloc(1, big);
        int sv[2];
        (void) state;

        assert_non_null(buf);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        /* the peer never reads; a blocking fd must not block us either */
        uint64_t t0 = sg_now_mono_usec();
        assert_int_equal(sg_write_frame(sv[0], buf, big, t0 + 200 * MSEC), -ETIMEDOUT);
        uint64_t took = sg_now_mono_usec() - t0;
        assert_true(took >= 200 * MSEC);
        assert_true(took < 200 * MSEC + SLACK);
        close(sv[0]);
        close(sv[1]);
        free(buf);
}

static void test_write_no_sigpipe(void **state) {
        int sv[2];
        (void) state;

        /* Default disposition: a plain write() here would kill the test. */
        signal(SIGPIPE, SIG_DFL);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        close(sv[1]);
        assert_int_equal(sg_write_frame(sv[0], (const uint8_t *) "SG", 2,
                                        sg_now_mono_usec() + 500 * MSEC),
                         -EPIPE);
        close(sv[0]);
        assert_int_equal(sg_write_frame(-1, (const uint8_t *) "SG", 2, sg_now_mono_usec()), -EBADF);
}

static void test_peer_cred_errors(void **state) {
        uid_t uid = 4242;
        int p[2];
        (void) state;

        assert_int_equal(sg_peer_cred(-1, NULL, &uid, NULL), -EBADF);
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        assert_int_equal(sg_peer_cred(p[0], NULL, &uid, NULL), -ENOTSOCK);
        assert_int_equal(uid, 4242); /* untouched on failure */
        close(p[0]);
        close(p[1]);
}

static void test_clocks(void **state) {
        (void) state;
        uint64_t a = sg_now_mono_usec(), b = sg_now_mono_usec();
        assert_true(a > 0 && b >= a);
        uint64_t real = sg_now_real_usec();
        uint64_t now = (uint64_t) time(NULL) * 1000000;
        assert_true(real + 2000000 > now && real < now + 2000000);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_call_roundtrip),
                cmocka_unit_test(test_call_writer_error),
                cmocka_unit_test(test_call_rejects_non_reply),
                cmocka_unit_test(test_read_timeout_half_header),
                cmocka_unit_test(test_read_timeout_half_payload),
                cmocka_unit_test(test_read_deadline_is_absolute),
                cmocka_unit_test(test_read_eof),
                cmocka_unit_test(test_read_oversized_header),
                cmocka_unit_test(test_read_undecodable),
                cmocka_unit_test(test_connect_nonexistent),
                cmocka_unit_test(test_connect_refused),
                cmocka_unit_test(test_connect_checks_uid),
                cmocka_unit_test(test_connect_never_stdio),
                cmocka_unit_test(test_connect_backlog),
                cmocka_unit_test(test_write_timeout),
                cmocka_unit_test(test_write_no_sigpipe),
                cmocka_unit_test(test_peer_cred_errors),
                cmocka_unit_test(test_clocks),
        };
        return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
