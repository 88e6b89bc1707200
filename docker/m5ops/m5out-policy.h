/*
 * m5out-policy.h: the m5ops plugin's decisions about what the guest may store on the host, as pure
 * functions with no QEMU in them, so the unit tier compiles and tests them on the host
 * (test/c/m5out-policy-test.c). SPDX-License-Identifier: GPL-2.0-or-later
 *
 * - a name the guest gives for writefile: a relative path under m5out whose "", "." and ".." parts
 *   are dropped (it never leaves m5out), refused when it holds a control character, is too deep, or
 *   has nothing left;
 * - the quota: what a write costs is the growth of the file's apparent size (a write at a far offset
 *   costs the hole too), plus ENTRY_COST for each file or directory it makes; the total is kept
 *   across launches (the plugin adds up m5out when it starts);
 * - the log: past LOG_CAP only exit, fail and panic records are still written (m5ops wait needs
 *   them), up to EXIT_RESERVE more bytes.
 */
#ifndef M5OUT_POLICY_H
#define M5OUT_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define M5OUT_MAX_DEPTH 16
#define M5OUT_MAX_ENTRIES 100000
#define M5OUT_ENTRY_COST 4096LL
#define M5OPS_LOG_CAP (64LL * 1024 * 1024)
#define M5OPS_EXIT_RESERVE (16LL * 1024 * 1024)

/* Why a name was refused, or M5OUT_OK. */
enum m5out_name { M5OUT_OK = 0, M5OUT_EMPTY, M5OUT_CONTROL, M5OUT_DEEP, M5OUT_LONG };

/*
 * Clean `name` into `out` (size `cap`): its parts joined by '/', without "", "." and "..". `*parts`
 * gets how many parts are left (the last is the file; the others are directories).
 */
static inline enum m5out_name m5out_clean_name(const char *name, char *out, size_t cap, int *parts)
{
    size_t n = 0;
    const char *p = name;

    *parts = 0;
    if (cap == 0) {
        return M5OUT_LONG;
    }
    out[0] = '\0';
    for (const unsigned char *c = (const unsigned char *)name; *c; c++) {
        if (*c < 0x20 || *c == 0x7f) {
            return M5OUT_CONTROL;
        }
    }
    while (*p) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len && !(len == 1 && p[0] == '.') && !(len == 2 && p[0] == '.' && p[1] == '.')) {
            if (++*parts > M5OUT_MAX_DEPTH) {
                return M5OUT_DEEP;
            }
            if (n + (n ? 1 : 0) + len + 1 > cap) {
                return M5OUT_LONG;
            }
            if (n) {
                out[n++] = '/';
            }
            memcpy(out + n, p, len);
            n += len;
            out[n] = '\0';
        }
        p += len;
        if (*p == '/') {
            p++;
        }
    }
    return *parts ? M5OUT_OK : M5OUT_EMPTY;
}

/* What writing `len` bytes at `off` costs a file whose apparent size is `size`: its growth. */
static inline long long m5out_growth(long long size, uint64_t off, uint64_t len)
{
    uint64_t end = off + len;

    if (end < off) {
        return INT64_MAX; /* wraps: never fits */
    }
    return end > (uint64_t)size ? (long long)(end - (uint64_t)size) : 0;
}

/* Whether `cost` more bytes fit a quota of which `used` is spent. */
static inline bool m5out_fits(long long used, long long cost, long long quota)
{
    return cost >= 0 && used <= quota && cost <= quota - used;
}

/* Whether a log line of `len` bytes is written when the log holds `bytes` (exits get a reserve past the cap). */
static inline bool m5ops_log_keeps(long long bytes, size_t len, bool is_exit)
{
    long long cap = M5OPS_LOG_CAP + (is_exit ? M5OPS_EXIT_RESERVE : 0);

    return bytes + (long long)len <= cap;
}

#endif
