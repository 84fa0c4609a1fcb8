/* SPDX-License-Identifier: MIT */
/* Validation of every field that comes from PAM or crosses the socket. Pure code.
 * Checked in the module and again in the daemon. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define SG_USER_MAX 64     /* useradd allows 32; be generous but bounded */
#define SG_RHOST_MAX 255   /* a DNS name, or an address */
#define SG_TTY_MAX 64
#define SG_SERVICE_MAX 64
#define SG_FIELD_WIRE_MAX 256 /* what the module forwards for the audit of an invalid field */

/* POSIX portable user names plus what shadow-utils and systemd accept: [A-Za-z0-9._-],
 * may end in '$' (Samba machine accounts), must not start with '-', not "." or "..". */
bool sg_valid_user(const char *s);
/* Host name, IPv4 or IPv6 literal (optionally with %zone): [A-Za-z0-9.:%_-], non-empty. */
bool sg_valid_rhost(const char *s);
/* Empty allowed (absent). Printable ASCII except space and quotes: "/dev/pts/0", "ssh", ":0". */
bool sg_valid_tty(const char *s);
/* [A-Za-z0-9._-], non-empty. */
bool sg_valid_service(const char *s);
/* A session's public id: exactly SG_SESSION_ID_LEN lower-case hex digits. */
#define SG_SESSION_ID_LEN 32
bool sg_valid_session_id(const char *s);
/* A logind session id ("3", "c1"): 1 to 64 of [A-Za-z0-9_-]. */
bool sg_valid_logind_id(const char *s);
/* No byte < 0x20 and no 0x7f. */
bool sg_no_control(const char *s, size_t len);

/* Writes s (len bytes) into out for a terminal or log line: printable ASCII as is, backslash
 * as "\\", everything else (control bytes, ESC, bytes >= 0x7f) as "\xHH". Always
 * NUL-terminates when outsize > 0; truncates with "..." when it does not fit.
 * Returns the length written. */
size_t sg_escape(const char *s, size_t len, char *out, size_t outsize);

/* Writes s as the inside of a JSON string (no quotes): ", \, control bytes escaped; bytes
 * that are not valid UTF-8 as \u00XX of the byte so output is always valid JSON. Valid
 * UTF-8 passes through, except code points that change how a line is displayed, written as
 * \uXXXX: C1 controls U+0080..U+009F, bidi marks and controls U+061C, U+200E, U+200F,
 * U+202A..U+202E, U+2066..U+2069, and the separators U+2028, U+2029.
 * Same buffer rules as sg_escape. */
size_t sg_json_escape(const char *s, size_t len, char *out, size_t outsize);
