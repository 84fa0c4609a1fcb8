/* SPDX-License-Identifier: MIT */
/*
 * bench_client: drives secguardd over its socket with the wire codec (common/protocol.h),
 * the way the module does, but as fast as the daemon answers. Prints one key=value line.
 *
 *   bench_client -s SOCK -u USER -r RHOST lock
 *       PRECHECK + REPORT(failure) until PRECHECK answers DENY: the (user, source) is locked.
 *   bench_client -s SOCK -u USER -r RHOST [-t SEC] [-p PROCS] [-c CONNS] [-R] precheck
 *       PRECHECK only, counting decisions (against a locked pair every one is DENY: no permit,
 *       no hash anywhere). -R: a new connection per decision, as the module does.
 *   bench_client ... login [--success]
 *       PRECHECK (expects ALLOW) + REPORT(failure|success): one audit row per login.
 *   bench_client ... event
 *       EVENT password_changed: one audit row per request.
 *
 * PROCS processes (default 2) each keep CONNS connections (default 8) busy with one request
 * in flight each, multiplexed with poll(). All processes start together after a barrier.
 * A benchmark, not a test: it asserts nothing about time.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io.h"
#include "protocol.h"

enum mode { MODE_LOCK, MODE_PRECHECK, MODE_LOGIN, MODE_EVENT };

struct opts {
        const char *sock, *user, *rhost;
        double seconds;
        int procs, conns;
        bool reconnect, success;
        enum mode mode;
};

/* What one worker counts; sent to the parent through a pipe as raw bytes. */
struct counts {
        uint64_t done;     /* completed units: decisions (precheck), logins, events */
        uint64_t allow, deny, overload, errors;
        uint64_t connects;
        double elapsed;    /* seconds, measured by the worker from the barrier */
        double lat_us[3];  /* median, p99, p99.9 of one unit (connect, when -R, to its last reply) */
};

struct conn {
        int fd;
        double started; /* when this unit of work began (before its connect, with -R) */
        int phase; /* 0 idle (send next), 1 awaiting PRECHECK/EVENT reply, 2 awaiting REPORT reply */
        size_t in_len;
        uint8_t in[SG_FRAME_MAX];
};

static struct sg_writer *writer;
static struct sg_msg *msg;

/* Each unit's time, for the percentiles; the first LAT_MAX units of a worker. */
#define LAT_MAX 2000000
static double *lat;
static size_t lat_n;

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;

        return x < y ? -1 : x > y;
}

static void lat_summary(struct counts *k) {
        if (!lat_n)
                return;
        qsort(lat, lat_n, sizeof *lat, cmp_double);
        k->lat_us[0] = lat[lat_n / 2] * 1e6;
        k->lat_us[1] = lat[(size_t) ((double) lat_n * 0.99)] * 1e6;
        k->lat_us[2] = lat[(size_t) ((double) lat_n * 0.999)] * 1e6;
}

static double now_s(void) {
        return (double) sg_now_mono_usec() / 1e6;
}

static int conn_open(const struct opts *o, struct conn *c, struct counts *k) {
        int fd = sg_connect(o->sock, sg_now_mono_usec() + 5000000, 0);

        if (fd < 0)
                return fd;
        c->fd = fd;
        c->phase = 0;
        c->in_len = 0;
        k->connects++;
        return 0;
}

static void conn_close(struct conn *c) {
        if (c->fd >= 0)
                close(c->fd);
        c->fd = -1;
}

/* Sends the frame in writer. Our requests are < 200 bytes on a socket with nothing else
 * queued, so one send() takes all of it; anything else is an error. */
static int send_frame(struct conn *c) {
        size_t len;
        ssize_t n;

        if (sg_writer_finish(writer, &len) < 0)
                return -EINVAL;
        n = send(c->fd, writer->buf, len, MSG_NOSIGNAL);
        if (n < 0)
                return -errno;
        return (size_t) n == len ? 0 : -EIO;
}

static void put_items(const struct opts *o) {
        sg_writer_str(writer, SG_F_USER, o->user);
        sg_writer_str(writer, SG_F_SERVICE, "bench");
        if (o->rhost[0])
                sg_writer_str(writer, SG_F_RHOST, o->rhost);
        sg_writer_str(writer, SG_F_TTY, "ssh");
}

static int send_first(const struct opts *o, struct conn *c) {
        if (o->mode == MODE_EVENT) {
                sg_writer_init(writer, SG_MSG_EVENT);
                sg_writer_str(writer, SG_F_EVENT, "password_changed");
                put_items(o);
                sg_writer_str(writer, SG_F_DETAIL, "bench");
        } else {
                sg_writer_init(writer, SG_MSG_PRECHECK);
                put_items(o);
                sg_writer_u64(writer, SG_F_USER_KNOWN, 1);
        }
        c->phase = 1;
        return send_frame(c);
}

static int send_report(const struct opts *o, struct conn *c) {
        sg_writer_init(writer, SG_MSG_REPORT);
        sg_writer_u64(writer, SG_F_RESULT, o->success ? SG_RESULT_SUCCESS : SG_RESULT_FAILURE);
        if (!o->success)
                sg_writer_str(writer, SG_F_REASON, "bad_password");
        c->phase = 2;
        return send_frame(c);
}

/* One decoded reply on c: counts it and sends what comes next (unless stopping).
 * Returns 0, or -errno to drop the connection. */
static int on_reply(const struct opts *o, struct conn *c, struct counts *k, bool stopping) {
        uint64_t d;

        if (msg->type != SG_MSG_OK) {
                k->errors++;
                return -EPROTO;
        }
        if (c->phase == 1 && o->mode != MODE_EVENT) {
                d = sg_msg_u64(msg, SG_F_DECISION, 0);
                if (d == SG_DECISION_ALLOW)
                        k->allow++;
                else if (d == SG_DECISION_DENY)
                        k->deny++;
                else
                        k->overload++;
                if (o->mode == MODE_LOGIN && d != SG_DECISION_DENY)
                        return send_report(o, c); /* overload is reported too, as the module does */
                if (o->mode == MODE_PRECHECK && d == SG_DECISION_ALLOW)
                        return -EAGAIN; /* not locked: drop it (the daemon settles it as abandoned) */
        }
        k->done++;
        if (lat_n < LAT_MAX)
                lat[lat_n++] = now_s() - c->started;
        c->phase = 0;
        if (stopping)
                return 0;
        c->started = now_s();
        if (o->reconnect) {
                conn_close(c);
                int r = conn_open(o, c, k);
                if (r < 0)
                        return r;
        }
        return send_first(o, c);
}

/* Reads what is available on c; handles every whole frame. */
static int conn_input(const struct opts *o, struct conn *c, struct counts *k, bool stopping) {
        for (;;) {
                ssize_t n = recv(c->fd, c->in + c->in_len, sizeof c->in - c->in_len, MSG_DONTWAIT);
                size_t payload;

                if (n == 0)
                        return -ECONNRESET;
                if (n < 0)
                        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
                c->in_len += (size_t) n;
                while (c->in_len >= SG_FRAME_HEADER) {
                        size_t whole;
                        int r;

                        if (sg_frame_header(c->in, &payload) < 0)
                                return -EBADMSG;
                        whole = SG_FRAME_HEADER + payload;
                        if (c->in_len < whole)
                                break;
                        if (sg_msg_decode(c->in, whole, msg) < 0)
                                return -EBADMSG;
                        memmove(c->in, c->in + whole, c->in_len - whole);
                        c->in_len -= whole;
                        r = on_reply(o, c, k, stopping);
                        if (r < 0)
                                return r;
                }
        }
}

static int worker(const struct opts *o, int barrier_fd, int result_fd) {
        struct conn *conns = calloc((size_t) o->conns, sizeof *conns);
        struct pollfd *pfd = calloc((size_t) o->conns, sizeof *pfd);
        struct counts k = { 0 };
        double t0, stop_at;
        char b;

        writer = malloc(sizeof *writer);
        msg = malloc(sizeof *msg);
        lat = malloc(LAT_MAX * sizeof *lat);
        if (!conns || !pfd || !writer || !msg || !lat)
                return 1;
        for (int i = 0; i < o->conns; i++)
                conns[i].fd = -1;
        if (read(barrier_fd, &b, 1) < 0)
                return 1;
        t0 = now_s();
        stop_at = t0 + o->seconds;
        for (int i = 0; i < o->conns; i++) {
                conns[i].started = now_s();
                if (conn_open(o, &conns[i], &k) < 0 || send_first(o, &conns[i]) < 0) {
                        k.errors++;
                        conn_close(&conns[i]);
                }
        }

        for (;;) {
                bool stopping = now_s() >= stop_at;
                int busy = 0;

                for (int i = 0; i < o->conns; i++) {
                        pfd[i].fd = conns[i].phase ? conns[i].fd : -1;
                        pfd[i].events = POLLIN;
                        pfd[i].revents = 0;
                        busy += pfd[i].fd >= 0;
                }
                if (busy == 0)
                        break;
                if (poll(pfd, (nfds_t) o->conns, 100) < 0 && errno != EINTR)
                        return 1;
                if (now_s() > stop_at + 5.0)
                        break; /* a reply that never comes: give up, counted below */
                for (int i = 0; i < o->conns; i++) {
                        if (!pfd[i].revents)
                                continue;
                        int r = conn_input(o, &conns[i], &k, stopping);

                        if (r < 0) {
                                if (r != -EAGAIN)
                                        k.errors++;
                                conn_close(&conns[i]);
                                conns[i].started = now_s();
                                if (!stopping && (conn_open(o, &conns[i], &k) < 0 ||
                                                  send_first(o, &conns[i]) < 0)) {
                                        k.errors++;
                                        conn_close(&conns[i]);
                                }
                        }
                }
        }
        k.elapsed = now_s() - t0;
        lat_summary(&k);
        for (int i = 0; i < o->conns; i++)
                conn_close(&conns[i]);
        if (write(result_fd, &k, sizeof k) != (ssize_t) sizeof k)
                return 1;
        return 0;
}

/* Synchronous: fail until locked. Prints the number of failures it took. */
static int lock_loop(const struct opts *o, struct conn *c) {
        struct counts k = { 0 };

        for (int i = 0; i < 1000; i++) {
                uint64_t until = sg_now_mono_usec() + 5000000;
                int r = conn_open(o, c, &k);

                if (r < 0) {
                        fprintf(stderr, "bench_client: connect %s: %s\n", o->sock, strerror(-r));
                        return 1;
                }
                sg_writer_init(writer, SG_MSG_PRECHECK);
                put_items(o);
                sg_writer_u64(writer, SG_F_USER_KNOWN, 1);
                r = sg_call(c->fd, writer, msg, until);
                if (r < 0 || msg->type != SG_MSG_OK) {
                        fprintf(stderr, "bench_client: PRECHECK failed\n");
                        conn_close(c);
                        return 1;
                }
                if (sg_msg_u64(msg, SG_F_DECISION, 0) == SG_DECISION_DENY) {
                        printf("mode=lock failures=%d\n", i);
                        conn_close(c);
                        return 0;
                }
                sg_writer_init(writer, SG_MSG_REPORT);
                sg_writer_u64(writer, SG_F_RESULT, SG_RESULT_FAILURE);
                sg_writer_str(writer, SG_F_REASON, "bad_password");
                r = sg_call(c->fd, writer, msg, until);
                conn_close(c);
                if (r < 0) {
                        fprintf(stderr, "bench_client: REPORT failed: %s\n", strerror(-r));
                        return 1;
                }
        }
        fprintf(stderr, "bench_client: still not locked after 1000 failures\n");
        return 1;
}

static int do_lock(const struct opts *o) {
        struct conn *c = calloc(1, sizeof *c);
        int rc = 1;

        writer = malloc(sizeof *writer);
        msg = malloc(sizeof *msg);
        if (c && writer && msg) {
                c->fd = -1;
                rc = lock_loop(o, c);
        }
        free(c);
        free(writer);
        free(msg);
        return rc;
}

static void usage(void) {
        fprintf(stderr, "usage: bench_client -s SOCKET [-u USER] [-r RHOST] [-t SECONDS] [-p PROCS] "
                        "[-c CONNS] [-R] [--success] lock|precheck|login|event\n");
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "success", no_argument, NULL, 'S' },
                {}
        };
        struct opts o = { .user = "benchuser", .rhost = "", .seconds = 5, .procs = 2, .conns = 8 };
        struct counts total = { 0 };
        int barrier[2], result[2], c, status, rc = 0;
        double max_elapsed = 0, rate = 0, lat_us[3] = { 0 };

        while ((c = getopt_long(argc, argv, "s:u:r:t:p:c:R", options, NULL)) >= 0) {
                switch (c) {
                case 's': o.sock = optarg; break;
                case 'u': o.user = optarg; break;
                case 'r': o.rhost = optarg; break;
                case 't': o.seconds = strtod(optarg, NULL); break;
                case 'p': o.procs = atoi(optarg); break;
                case 'c': o.conns = atoi(optarg); break;
                case 'R': o.reconnect = true; break;
                case 'S': o.success = true; break;
                default: usage(); return 2;
                }
        }
        if (!o.sock || optind + 1 != argc || o.procs < 1 || o.conns < 1 || o.seconds <= 0) {
                usage();
                return 2;
        }
        if (strcmp(argv[optind], "lock") == 0)
                return do_lock(&o);
        if (strcmp(argv[optind], "precheck") == 0)
                o.mode = MODE_PRECHECK;
        else if (strcmp(argv[optind], "login") == 0)
                o.mode = MODE_LOGIN;
        else if (strcmp(argv[optind], "event") == 0)
                o.mode = MODE_EVENT;
        else {
                usage();
                return 2;
        }

        if (pipe2(barrier, O_CLOEXEC) < 0 || pipe2(result, O_CLOEXEC) < 0)
                return 1;
        for (int i = 0; i < o.procs; i++) {
                pid_t pid = fork();

                if (pid < 0)
                        return 1;
                if (pid == 0) {
                        close(barrier[1]);
                        close(result[0]);
                        _exit(worker(&o, barrier[0], result[1]));
                }
        }
        close(barrier[0]);
        close(result[1]);
        usleep(100000); /* let every worker reach the barrier */
        close(barrier[1]); /* EOF releases them all at once */
        for (int i = 0; i < o.procs; i++) {
                struct counts k;

                if (read(result[0], &k, sizeof k) != (ssize_t) sizeof k) {
                        rc = 1;
                        continue;
                }
                total.done += k.done;
                total.allow += k.allow;
                total.deny += k.deny;
                total.overload += k.overload;
                total.errors += k.errors;
                total.connects += k.connects;
                rate += k.elapsed > 0 ? (double) k.done / k.elapsed : 0;
                if (k.elapsed > max_elapsed)
                        max_elapsed = k.elapsed;
                for (int j = 0; j < 3; j++) /* the slowest worker's (exact with -p 1) */
                        if (k.lat_us[j] > lat_us[j])
                                lat_us[j] = k.lat_us[j];
        }
        while (wait(&status) > 0)
                if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                        rc = 1;
        printf("mode=%s procs=%d conns=%d reconnect=%d seconds=%.2f done=%" PRIu64 " rate=%.0f "
               "allow=%" PRIu64 " deny=%" PRIu64 " overload=%" PRIu64 " errors=%" PRIu64 " connects=%" PRIu64
               " lat_p50_us=%.0f lat_p99_us=%.0f lat_p999_us=%.0f\n",
               argv[optind], o.procs, o.conns, o.reconnect, max_elapsed, total.done, rate, total.allow,
               total.deny, total.overload, total.errors, total.connects, lat_us[0], lat_us[1], lat_us[2]);
        return rc;
}
