/* SPDX-License-Identifier: MIT */
/* Client-side frame I/O with an absolute deadline (module and CLI). The daemon does its own
 * non-blocking I/O on sd-event and only shares the codec. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "protocol.h"

/* CLOCK_MONOTONIC microseconds. */
uint64_t sg_now_mono_usec(void);
/* CLOCK_REALTIME microseconds (audit timestamps). */
uint64_t sg_now_real_usec(void);

/* Connects to a Unix socket path, non-blocking, close-on-exec, never on fd 0-2, and waits
 * until deadline (monotonic usec). Then checks with SO_PEERCRED that the server runs as
 * expect_uid (root in production) before anything is sent: -EPERM if not.
 * Returns the fd or -errno (-ETIMEDOUT past the deadline). */
int sg_connect(const char *path, uint64_t deadline_usec, uid_t expect_uid);

/* Writes a whole frame with MSG_NOSIGNAL, polling until the deadline. 0 or -errno. */
int sg_write_frame(int fd, const uint8_t *buf, size_t len, uint64_t deadline_usec);

/* Reads and decodes one frame before the deadline. 0, -errno (-ETIMEDOUT, -ECONNRESET on
 * EOF), or -EBADMSG when the frame does not decode (the SG_PROTO_E* code in *ret_proto_err
 * if not NULL). */
int sg_read_msg(int fd, struct sg_msg *m, uint64_t deadline_usec, int *ret_proto_err);

/* Finishes w, sends it (then wipes w's frame: it may hold a token), reads the reply into m.
 * A reply type other than OK/ERROR/ROW is -EBADMSG; a writer error is -EMSGSIZE (too long)
 * or -EINVAL. */
int sg_call(int fd, struct sg_writer *w, struct sg_msg *m, uint64_t deadline_usec);

/* Peer credentials of a connected Unix socket. */
int sg_peer_cred(int fd, pid_t *ret_pid, uid_t *ret_uid, gid_t *ret_gid);
