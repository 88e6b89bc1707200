/* The m5ops plugin's pure decisions (docker/m5ops/m5out-policy.h), compiled and run on the host by
 * test/unit/m5ops-policy.test.ts. Prints TAP; exits 1 when a check fails. */
#include <stdio.h>
#include "../../docker/m5ops/m5out-policy.h"

static int n, failed;

static void check(int ok, const char *what)
{
    printf("%s %d - %s\n", ok ? "ok" : "not ok", ++n, what);
    failed |= !ok;
}

static int cleans_to(const char *name, const char *want, int want_parts)
{
    char out[64];
    int parts;
    return m5out_clean_name(name, out, sizeof(out), &parts) == M5OUT_OK && !strcmp(out, want) && parts == want_parts;
}

static enum m5out_name refusal(const char *name)
{
    char out[64];
    int parts;
    return m5out_clean_name(name, out, sizeof(out), &parts);
}

int main(void)
{
    check(cleans_to("run1/w.bin", "run1/w.bin", 2), "a relative name stays");
    check(cleans_to("../../escape.bin", "escape.bin", 1), "'..' parts are dropped: it stays in m5out");
    check(cleans_to("/etc/./passwd", "etc/passwd", 2), "a leading '/' and '.' parts are dropped");
    check(cleans_to("a//b/", "a/b", 2), "empty parts are dropped");
    check(cleans_to("..a/b..", "..a/b..", 2), "names that only start or end with dots are names");
    check(refusal("../..") == M5OUT_EMPTY && refusal("") == M5OUT_EMPTY && refusal("/./") == M5OUT_EMPTY, "nothing left: refused");
    check(refusal("a\nb") == M5OUT_CONTROL && refusal("x\033]52;c;AA\007") == M5OUT_CONTROL && refusal("del\177") == M5OUT_CONTROL, "control characters: refused");
    check(refusal("1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16") == M5OUT_OK && refusal("1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/17") == M5OUT_DEEP, "at most 16 parts deep");
    check(refusal("0123456789012345678901234567890123456789/0123456789012345678901234567890") == M5OUT_LONG, "longer than the buffer: refused, never cut");
    check(m5out_growth(0, 8LL << 30, 1) == (8LL << 30) + 1, "a byte at 8 GiB costs 8 GiB and a byte (apparent size)");
    check(m5out_growth(100, 0, 50) == 0 && m5out_growth(100, 90, 20) == 10, "rewriting costs nothing; extending costs the growth");
    check(m5out_growth(0, UINT64_MAX, 2) == INT64_MAX, "an offset that wraps never fits");
    check(m5out_fits(0, 10, 10) && !m5out_fits(1, 10, 10) && !m5out_fits(11, 0, 10) && !m5out_fits(0, INT64_MAX, INT64_MAX - 1), "the quota holds at its edge");
    check(m5ops_log_keeps(M5OPS_LOG_CAP - 10, 10, false) && !m5ops_log_keeps(M5OPS_LOG_CAP - 10, 11, false), "ops stop at the log cap");
    check(m5ops_log_keeps(M5OPS_LOG_CAP + 100, 100, true) && !m5ops_log_keeps(M5OPS_LOG_CAP + M5OPS_EXIT_RESERVE, 1, true), "exits go on past it, up to the reserve");
    printf("1..%d\n", n);
    return failed;
}
