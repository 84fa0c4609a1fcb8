/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "audit-keys.h"
#include "fileio.h"
#include "keyfile.h"
#include "store.h"

/* A log that already has epochs was set up with another seed: a new one could verify none
 * of them, and its epoch 0 would run the log's epochs backwards. */
static int check_no_epochs(const char *state_dir, char *err, size_t errsize) {
        char path[PATH_MAX];
        sg_store_reader *rd = NULL;
        int64_t last = -1;
        int r;

        if ((size_t) snprintf(path, sizeof path, "%s/secguard.db", state_dir) >= sizeof path)
                return -ENAMETOOLONG;
        if (access(path, F_OK) < 0)
                return 0; /* no log yet */
        /* A log this build cannot read as schema 4 (one from before forward-secure keys, which
         * secguardd migrates at its next start) has no epochs: nothing to refuse. */
        r = sg_store_reader_open_file(path, NULL, &rd, err, errsize);
        if (r >= 0)
                r = sg_store_reader_audit_last_epoch(rd, &last);
        sg_store_reader_free(rd);
        err[0] = '\0';
        if (r >= 0 && last >= 0) {
                snprintf(err, errsize, "%s already has forward-secure rows up to epoch %lld, made with an earlier "
                         "seed (audit.fss is gone); a new seed could verify none of them. Keep the old seed; to "
                         "start a new log, move secguard.db aside first", path, (long long) last);
                return -EEXIST;
        }
        return 0;
}

int audit_setup_keys(const char *state_dir, char *seed_text, size_t seed_textsize, char *err, size_t errsize) {
        char path[PATH_MAX];
        uint8_t *mem;
        int r;

        if ((size_t) snprintf(path, sizeof path, "%s/audit.fss", state_dir) >= sizeof path)
                return -ENAMETOOLONG;
        r = sg_check_own_dir(state_dir, 0700, err, errsize);
        if (r >= 0)
                r = check_no_epochs(state_dir, err, errsize);
        if (r < 0)
                return r;
        /* seed, key(0), the state file's bytes: all in guarded memory, wiped on free. */
        mem = sodium_malloc(SG_FSS_SEED_BYTES + SG_FSS_KEY_BYTES + SG_FSS_STATE_BYTES);
        if (!mem)
                return -ENOMEM;
        randombytes_buf(mem, SG_FSS_SEED_BYTES);
        sg_fss_key0(mem, mem + SG_FSS_SEED_BYTES);
        sg_fss_state_encode(0, mem + SG_FSS_SEED_BYTES, mem + SG_FSS_SEED_BYTES + SG_FSS_KEY_BYTES);
        r = sg_key_write(path, mem + SG_FSS_SEED_BYTES + SG_FSS_KEY_BYTES, SG_FSS_STATE_BYTES, err, errsize);
        if (r == -EEXIST)
                snprintf(err, errsize, "%s exists: forward-secure keys are set up already (their seed was shown "
                         "once, when that was done)", path);
        if (r >= 0)
                r = sg_fss_seed_format(mem, seed_text, seed_textsize);
        sodium_free(mem);
        return r;
}

static int parse_line(char *line, uint8_t seed[SG_FSS_SEED_BYTES], char *err, size_t errsize) {
        int r = sg_fss_seed_parse(line, seed);

        if (r == -EBADMSG)
                snprintf(err, errsize, "the seed does not match its check: a typo?");
        else if (r < 0)
                snprintf(err, errsize, "not a seed (32 letters and digits in groups of four, as setup-keys printed)");
        return r;
}

int audit_seed_read(const char *text, const char *file, uint8_t seed[SG_FSS_SEED_BYTES], char *err, size_t errsize) {
        char *line;
        size_t len = 0;
        int r;

        /* A line of the text form fits in 128 bytes; more is not a seed. */
        line = sodium_malloc(128);
        if (!line)
                return -ENOMEM;
        memset(line, 0, 128);
        if (file) {
                int fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
                struct stat st;
                ssize_t n = 0;

                if (fd < 0) {
                        r = -errno;
                        snprintf(err, errsize, "cannot open %s: %s", file, strerror(errno));
                        goto out;
                }
                if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077)) {
                        snprintf(err, errsize, "%s must be a regular file that only its owner can read (fix: chmod "
                                 "0600 %s)", file, file);
                        close(fd);
                        r = -EPERM;
                        goto out;
                }
                while (len < 127 && (n = read(fd, line + len, 127 - len)) > 0)
                        len += (size_t) n;
                close(fd);
                if (n < 0) {
                        r = -errno;
                        snprintf(err, errsize, "cannot read %s", file);
                        goto out;
                }
        } else if (strcmp(text, "-") == 0) {
                if (!fgets(line, 128, stdin)) {
                        snprintf(err, errsize, "no seed on standard input");
                        r = -EINVAL;
                        goto out;
                }
        } else
                snprintf(line, 128, "%s", text);
        line[strcspn(line, "\n")] = '\0';
        r = parse_line(line, seed, err, errsize);
out:
        sodium_free(line);
        return r;
}

int audit_verify_offline(const char *db_path, const char *legacy_key_path, const uint8_t *seed,
                         struct audit_offline_result *res, char *err, size_t errsize) {
        struct sg_audit_tail none = { 0 };
        sg_store_reader *rd = NULL;
        uint8_t *keys;
        bool have_legacy = false;
        int r;

        memset(res, 0, sizeof *res);
        keys = sodium_malloc(SG_AUDIT_KEY_BYTES + SG_FSS_KEY_BYTES);
        if (!keys)
                return -ENOMEM;
        if (legacy_key_path) {
                char kerr[PATH_MAX + 256];

                have_legacy = sg_key_read(legacy_key_path, keys, SG_AUDIT_KEY_BYTES, kerr, sizeof kerr) == 0;
        }
        r = sg_store_reader_open_file(db_path, have_legacy ? keys : NULL, &rd, err, errsize);
        if (r >= 0 && seed) {
                sg_fss_key0(seed, keys + SG_AUDIT_KEY_BYTES);
                r = sg_store_reader_set_epoch_key(rd, 0, keys + SG_AUDIT_KEY_BYTES, false);
        }
        sodium_free(keys);
        if (r < 0)
                goto out;
        /* No daemon to say where the log ended: the newest rows' removal is not seen here
         * (docs/threat-model.md). */
        r = sg_store_reader_audit_verify(rd, &none, &res->bad_id, &res->rows, res->detail, sizeof res->detail);
        if (r == -EBADMSG) {
                snprintf(res->detail, sizeof res->detail,
                         "the database file is damaged (SQLite reports corruption); restore it from a backup and compare");
                r = 1;
        }
        if (r < 0) {
                snprintf(err, errsize, "cannot read %s: %s", db_path, strerror(-r));
                goto out;
        }
        res->r = r;
        (void) sg_store_reader_audit_note(rd, res->note, sizeof res->note);
        r = 0;
out:
        sg_store_reader_free(rd);
        return r;
}
