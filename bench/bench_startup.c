/* SPDX-License-Identifier: MIT */
/*
 * bench_startup SECGUARDD CONFIG SOCKET RUNS: starts the daemon RUNS times (after one
 * unmeasured start that creates the database and key) and measures, from just before fork:
 *   - ready_notify: READY=1 received on a private NOTIFY_SOCKET (sd_notify, as systemd sees it)
 *   - ready_status: the socket answers a STATUS request (polled every 200 us)
 * then VmRSS/RssAnon/RssFile of the idle daemon 300 ms later, and SIGTERM. Prints medians.
 * The daemon's stderr goes to /dev/null. Asserts nothing about time.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io.h"
#include "protocol.h"

struct sample {
        double notify_ms, status_ms;
        long rss_kib, anon_kib, file_kib;
};

static long status_field(pid_t pid, const char *name) {
        char path[64], line[256];
        size_t nl = strlen(name);
        long v = -1;
        FILE *f;

        snprintf(path, sizeof path, "/proc/%d/status", (int) pid);
        f = fopen(path, "re");
        if (!f)
                return -1;
        while (fgets(line, sizeof line, f))
                if (strncmp(line, name, nl) == 0 && line[nl] == ':') {
                        v = strtol(line + nl + 1, NULL, 10);
                        break;
                }
        fclose(f);
        return v;
}

/* One STATUS round trip; 0 when the daemon answered OK. */
static int try_status(const char *sock, struct sg_writer *w, struct sg_msg *m) {
        uint64_t until = sg_now_mono_usec() + 1000000;
        int fd = sg_connect(sock, until, 0), r;

        if (fd < 0)
                return fd;
        sg_writer_init(w, SG_MSG_STATUS);
        r = sg_call(fd, w, m, until);
        close(fd);
        if (r < 0)
                return r;
        return m->type == SG_MSG_OK ? 0 : -EPROTO;
}

static int one_start(const char *daemon, const char *config, const char *sock, const char *notify_path,
                     struct sample *s, struct sg_writer *w, struct sg_msg *m) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        uint64_t t0, deadline;
        int nfd, status;
        pid_t pid;

        if (strlen(notify_path) >= sizeof sa.sun_path)
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, notify_path, strlen(notify_path) + 1);
        unlink(notify_path);
        nfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (nfd < 0 || bind(nfd, (struct sockaddr *) &sa, sizeof sa) < 0)
                return -errno;
        s->notify_ms = s->status_ms = -1;

        t0 = sg_now_mono_usec();
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

                if (null >= 0)
                        (void) dup2(null, STDERR_FILENO);
                setenv("NOTIFY_SOCKET", notify_path, 1);
                execl(daemon, daemon, "--config", config, "--log-target", "stderr", (char *) NULL);
                _exit(127);
        }
        deadline = t0 + 10000000;
        while ((s->notify_ms < 0 || s->status_ms < 0) && sg_now_mono_usec() < deadline) {
                char buf[256];
                ssize_t n;

                while ((n = recv(nfd, buf, sizeof buf - 1, 0)) > 0) {
                        buf[n] = '\0';
                        if (s->notify_ms < 0 && strstr(buf, "READY=1"))
                                s->notify_ms = (double) (sg_now_mono_usec() - t0) / 1e3;
                }
                if (s->status_ms < 0 && try_status(sock, w, m) == 0)
                        s->status_ms = (double) (sg_now_mono_usec() - t0) / 1e3;
                if (waitpid(pid, &status, WNOHANG) == pid) {
                        close(nfd);
                        return -ECHILD;
                }
                usleep(200);
        }
        /* A READY=1 sent in the same instant as the first STATUS answer may still be queued. */
        if (s->notify_ms < 0) {
                char buf[256];
                ssize_t n;

                usleep(1000);
                while ((n = recv(nfd, buf, sizeof buf - 1, 0)) > 0) {
                        buf[n] = '\0';
                        if (strstr(buf, "READY=1"))
                                s->notify_ms = (double) (sg_now_mono_usec() - t0) / 1e3;
                }
        }
        usleep(300000);
        s->rss_kib = status_field(pid, "VmRSS");
        s->anon_kib = status_field(pid, "RssAnon");
        s->file_kib = status_field(pid, "RssFile");
        kill(pid, SIGTERM);
        (void) waitpid(pid, &status, 0);
        close(nfd);
        unlink(notify_path);
        if (s->status_ms < 0)
                return -ETIMEDOUT;
        return 0;
}

static int cmp_d(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;

        return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
        qsort(v, (size_t) n, sizeof *v, cmp_d);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv) {
        struct sg_writer *w = malloc(sizeof *w);
        struct sg_msg *m = malloc(sizeof *m);
        char notify_path[200];
        double notify[64], stat_ms[64], rss[64], anon[64], file[64], first_status = -1;
        int runs, r;

        if (argc != 5 || (runs = atoi(argv[4])) < 1 || runs > 64) {
                fprintf(stderr, "usage: bench_startup SECGUARDD CONFIG SOCKET RUNS (1..64)\n");
                return 2;
        }
        if (!w || !m)
                return 1;
        snprintf(notify_path, sizeof notify_path, "%s.notify", argv[3]);
        for (int i = -1; i < runs; i++) {
                struct sample s = { 0 };

                r = one_start(argv[1], argv[2], argv[3], notify_path, &s, w, m);
                if (r < 0) {
                        fprintf(stderr, "bench_startup: start %d failed: %s\n", i + 1, strerror(-r));
                        return 1;
                }
                if (i < 0) {
                        first_status = s.status_ms; /* creates the database and the key */
                        continue;
                }
                notify[i] = s.notify_ms;
                stat_ms[i] = s.status_ms;
                rss[i] = (double) s.rss_kib;
                anon[i] = (double) s.anon_kib;
                file[i] = (double) s.file_kib;
        }
        printf("startup_runs=%d ready_notify_ms=%.2f ready_status_ms=%.2f first_start_status_ms=%.2f "
               "idle_rss_kib=%.0f idle_rss_anon_kib=%.0f idle_rss_file_kib=%.0f\n",
               runs, median(notify, runs), median(stat_ms, runs), first_status, median(rss, runs),
               median(anon, runs), median(file, runs));
        free(w);
        free(m);
        return 0;
}
