/*
 * m5ops.so: gem5's m5ops answered by QEMU (qemu-system-aarch64 -plugin). SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Loaded as a TCG plugin, it uses QEMU's own (exported) internals, compiled against the exact QEMU
 * source of the installed package: it maps a 64 KiB I/O region at the m5ops base over virt's PCIe
 * MMIO window (priority 1), and answers gem5's arm64 address-mode calls: arguments in x0..x5, then
 * one 64-bit load at base + (func << 8); the loaded value is the op's result (gem5
 * util/m5/src/abi/arm64/m5op_addr.S, src/sim/pseudo_inst.{hh,cc}). A store there runs the op too,
 * as in gem5, and its result is dropped. Every op answers: an unknown one is logged and returns 0.
 *
 * Arguments (-plugin file=m5ops.so,base=0x10010000,dir=/instance,exit=continue|poweroff[,exits=N][,stats=insns]):
 *   dir/m5ops-readfile   what the guest's readfile reads (opened at each call: replace it any time)
 *   dir/m5out/           where writefile's files land, named by the guest, never outside it; and
 *                        stats.txt, where dump_stats appends gem5's text format
 *   dir/m5ops.log        one JSON object a line per op (not sum, nor a readfile/writefile continuation)
 *   stats=insns          count the instructions the vCPUs run (simInsts in stats.txt; it costs time)
 *   exits=N              with exit=poweroff: a fail or panic powers off at once, an exit only when it
 *                        is the guest's Nth (m5dev run --exits: a job's end, as gem5's simulation ends)
 *   checkpoint=pause     a checkpoint op pauses the VM after it is logged, for m5dev run to save it
 *                        and continue the guest; after its delay and every period (the guest's
 *                        virtual time), as gem5 schedules them (without it the op is only logged)
 *   param=KEY=VALUE      what init_param answers for KEY (up to 16 characters, as gem5's m5 packs it
 *                        in two registers; an empty KEY is gem5's default init_param); repeatable
 */
#include "qemu/osdep.h"
#include "qemu/qemu-plugin.h"
#include "qemu/timer.h"
#include "exec/memory.h"
#include "exec/address-spaces.h"
#include "hw/core/cpu.h"
#include "sysemu/hw_accel.h"
#include "sysemu/runstate.h"
#include "qemu-main.h"
#include "qapi/qapi-commands-control.h"
#include "qapi/qapi-types-control.h"
#include <sys/statvfs.h>
#include <ftw.h>
#include "m5out-policy.h"

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define M5OPS_SIZE 0x10000
/* A readfile or writefile call moves its bytes CHUNK at a time, at most CALL_CAP a call (gem5's m5
   and libm5 ask for the whole buffer in one call, and loop on what a call did). */
#define CHUNK (1024 * 1024)
#define CALL_CAP (1024ULL * 1024 * 1024)
#define NAME_MAX_LEN 4096
/* m5out stops taking bytes past quota= (8 GiB, apparent sizes and entries: m5out-policy.h), or when
   the filesystem would keep less than RESERVE free. The log's cap is in m5out-policy.h too. */
#define RESERVE (1024LL * 1024 * 1024)

static MemoryRegion m5ops_mr;
static char *dir;
static int log_fd = -1;
static int out_fd = -1;
static bool poweroff;
static unsigned long exits_wanted = 1;
static bool checkpoint_pause;
/* A checkpoint op's delay and period, as gem5 schedules them: in the guest's virtual time. */
static QEMUTimer *ckpt_timer;
static int64_t ckpt_period;
#define MAX_PARAMS 32
static struct { char key[17]; uint64_t value; } params[MAX_PARAMS];
static int n_params;
static unsigned long exits_seen;
static int exit_code = -1;
static long long log_bytes;
static long long out_bytes;
static long long out_entries;
static bool log_full_noted;
static long long quota = 8LL * 1024 * 1024 * 1024;
static bool in_op;
/* Stats (dump_stats, reset_stats): since the last reset, QEMU's virtual clock and the host's, and
   with stats=insns the instructions the vCPUs ran (counted per translated block, inline). */
static int64_t stats_vclock0;
static int64_t stats_host0;
static bool count_insns;
static uint64_t insns;
static uint64_t insns0;
static uid_t owner_uid;
static gid_t owner_gid;

static const char *op_name(unsigned func)
{
    switch (func) {
    case 0x00: return "arm";
    case 0x01: return "quiesce";
    case 0x02: return "quiesce_ns";
    case 0x03: return "quiesce_cycle";
    case 0x04: return "quiesce_time";
    case 0x07: return "rpns";
    case 0x09: return "wake_cpu";
    case 0x21: return "exit";
    case 0x22: return "fail";
    case 0x23: return "sum";
    case 0x30: return "init_param";
    case 0x31: return "load_symbol";
    case 0x40: return "reset_stats";
    case 0x41: return "dump_stats";
    case 0x42: return "dump_reset_stats";
    case 0x43: return "checkpoint";
    case 0x4f: return "write_file";
    case 0x50: return "read_file";
    case 0x51: return "debug_break";
    case 0x52: return "switch_cpu";
    case 0x53: return "add_symbol";
    case 0x54: return "panic";
    case 0x5a: return "work_begin";
    case 0x5b: return "work_end";
    case 0x62: return "dist_toggle_sync";
    case 0x70: return "workload";
    case 0x71: return "hypercall";
    default: return "unknown";
    }
}

/* How many arguments each op takes (for the log). */
static int op_argc(unsigned func)
{
    switch (func) {
    case 0x23: return 6;
    case 0x4f: return 4;
    case 0x50: return 3;
    case 0x02: case 0x03: case 0x09: case 0x21: case 0x71: return 1;
    case 0x22: case 0x30: case 0x40: case 0x41: case 0x42: case 0x43: case 0x53: case 0x5a: case 0x5b: return 2;
    default: return 0;
    }
}

/* A JSON string of at most 512 bytes of s (control characters and quotes escaped). */
static void json_str(GString *out, const char *s)
{
    g_string_append_c(out, '"');
    for (size_t i = 0; s[i] && i < 512; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            g_string_append_printf(out, "\\%c", c);
        } else if (c < 0x20 || c >= 0x7f) {
            g_string_append_printf(out, "\\u%04x", c);
        } else {
            g_string_append_c(out, c);
        }
    }
    g_string_append_c(out, '"');
}

/* One record in the log; whether it was written (past the cap only exits, fails and panics are). */
static bool log_op(CPUState *cs, unsigned func, const uint64_t *x, uint64_t result, const int *code, const char *file, const char *note)
{
    GString *line;
    int argc = op_argc(func);
    bool written = false;

    if (log_fd < 0) {
        return false;
    }
    line = g_string_new(NULL);
    g_string_append_printf(line, "{\"time\":%" PRId64 ",\"vclockNs\":%" PRId64 ",\"vcpu\":%d,\"func\":%u,\"op\":\"%s\",\"args\":[",
                           g_get_real_time() / 1000, qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL), cs ? cs->cpu_index : -1, func, op_name(func));
    for (int i = 0; i < argc; i++) {
        g_string_append_printf(line, "%s\"0x%" PRIx64 "\"", i ? "," : "", x[i]);
    }
    g_string_append_printf(line, "],\"result\":\"0x%" PRIx64 "\"", result);
    if (code) {
        g_string_append_printf(line, ",\"code\":%d", *code);
    }
    if (file) {
        g_string_append(line, ",\"file\":");
        json_str(line, file);
    }
    if (note) {
        g_string_append(line, ",\"note\":");
        json_str(line, note);
    }
    g_string_append(line, "}\n");
    /* Past the cap only exits, fails and panics are written (m5ops wait must see them). */
    if (m5ops_log_keeps(log_bytes, line->len, code != NULL)) {
        if (write(log_fd, line->str, line->len) > 0) {
            log_bytes += (long long)line->len;
            written = true;
        }
    } else if (!log_full_noted) {
        static const char full[] = "{\"time\":0,\"vclockNs\":0,\"vcpu\":-1,\"func\":-1,\"op\":\"log_full\",\"args\":[],\"result\":\"0x0\",\"note\":\"m5ops.log reached its cap: later ops are not logged, but exits, fails and panics are\"}\n";
        log_full_noted = true;
        if (m5ops_log_keeps(log_bytes, sizeof(full) - 1, true) && write(log_fd, full, sizeof(full) - 1) > 0) {
            log_bytes += (long long)(sizeof(full) - 1);
        }
    }
    g_string_free(line, true);
    return written;
}

/*
 * The guest's own page permissions, at its current privilege (as gem5 translates an m5op's buffer):
 * QEMU's TCG probe of one page, without faulting (nonfault, no return address), at the MMU index the
 * vCPU uses now (arm_mmu_idx: EL0 is core index 0, EL1 2, EL1 with PAN 4). Both are exported by
 * the QEMU this plugin is built for (target/arm/helper.c, accel/tcg/cputlb.c; declared here, as the
 * plugin is built without the target's headers). A page that is not mapped, not writable (for a
 * write) or not readable (for a read), or that is device memory or ROM, is refused.
 */
extern int probe_access_flags(void *env, uint64_t addr, int access_type, int mmu_idx, bool nonfault, void **phost, uintptr_t retaddr);
extern int arm_mmu_idx(void *env);
extern bool tcg_allowed; /* TCG runs this VM (sysemu/tcg.h's tcg_enabled(), whose guard is the target's) */
#define M5OPS_TLB_INVALID 0x200 /* TLB_INVALID_MASK with ARM's TARGET_PAGE_BITS_MIN 10 (cpu-all.h) */
#define M5OPS_TLB_MMIO 0x80
#define M5OPS_TLB_DISCARD_WRITE 0x10

static bool guest_may(CPUState *cs, uint64_t addr, bool is_write)
{
    void *host = NULL;
    int flags;

    if (!tcg_allowed) {
        return true; /* KVM: no TCG TLB to ask (docs/security.md: open) */
    }
    flags = probe_access_flags(cs->env_ptr, addr, is_write ? 1 : 0, arm_mmu_idx(cs->env_ptr) & 0xf, true, &host, 0);
    return !(flags & (M5OPS_TLB_INVALID | M5OPS_TLB_MMIO | (is_write ? M5OPS_TLB_DISCARD_WRITE : 0)));
}

/*
 * Guest virtual memory, one page at a time, each page only as far as the guest itself may access
 * it now (guest_may): bytes done, stopping at the first page it may not. An unprivileged user's
 * readfile cannot write into a page it maps read-only (a root-owned file's page cache).
 */
static size_t guest_rw(CPUState *cs, uint64_t addr, uint8_t *buf, size_t len, bool is_write)
{
    size_t done = 0;

    while (done < len) {
        size_t piece = MIN(len - done, 4096 - ((addr + done) & 4095));
        if (!guest_may(cs, addr + done, is_write) || cpu_memory_rw_debug(cs, addr + done, buf + done, piece, is_write) != 0) {
            break;
        }
        done += piece;
    }
    return done;
}

/* A NUL-terminated guest string (at most NAME_MAX_LEN - 1 bytes); NULL if unreadable. */
static char *guest_string(CPUState *cs, uint64_t addr)
{
    char *s = g_malloc0(NAME_MAX_LEN);

    for (size_t i = 0; i < NAME_MAX_LEN - 1; i++) {
        if (guest_rw(cs, addr + i, (uint8_t *)&s[i], 1, false) != 1) {
            g_free(s);
            return NULL;
        }
        if (!s[i]) {
            return s;
        }
    }
    return s;
}

/*
 * The guest names a file under m5out (cleaned by m5out_clean_name: it never leaves m5out), each
 * directory opened without following a link, the file opened without blocking (a FIFO or device
 * someone placed there is refused, never waited on). `*made` counts the entries it created (each
 * costs quota). Returns an fd for writing a regular file, or -1 with errno set.
 */
static int open_out(const char *clean, int parts, int *made)
{
    gchar **names = g_strsplit(clean, "/", -1);
    int dfd = dup(out_fd);
    int fd = -1;

    *made = 0;
    for (int i = 0; names[i] && dfd >= 0; i++) {
        if (i == parts - 1) {
            struct stat fst;
            fd = openat(dfd, names[i], O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
            if (fd < 0 && errno == ENOENT) {
                if (out_entries >= M5OUT_MAX_ENTRIES) {
                    errno = EDQUOT;
                    break;
                }
                fd = openat(dfd, names[i], O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0644);
                if (fd >= 0) {
                    ++*made;
                }
            }
            if (fd >= 0 && (fstat(fd, &fst) != 0 || !S_ISREG(fst.st_mode))) {
                close(fd);
                fd = -1;
                errno = EINVAL; /* not a regular file */
            } else if (fd >= 0 && (fst.st_uid != owner_uid || fst.st_gid != owner_gid) && fchown(fd, owner_uid, owner_gid) != 0) {
                /* an engine that maps ids (rootless) owns it already */
            }
            break;
        }
        if (out_entries + *made < M5OUT_MAX_ENTRIES && mkdirat(dfd, names[i], 0755) == 0) {
            ++*made;
            if (fchownat(dfd, names[i], owner_uid, owner_gid, AT_SYMLINK_NOFOLLOW) != 0) {
                /* as above */
            }
        }
        int next = openat(dfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        close(dfd);
        dfd = next;
    }
    if (dfd >= 0) {
        close(dfd);
    }
    g_strfreev(names);
    return fd;
}

static uint64_t op_readfile(CPUState *cs, const uint64_t *x, char **note)
{
    uint64_t len = MIN(x[1], (uint64_t)CALL_CAP);
    g_autofree char *path = g_build_filename(dir, "m5ops-readfile", NULL);
    g_autofree uint8_t *buf = NULL;
    uint64_t done = 0;
    /* Never blocks: a FIFO or device put there is refused, not waited on. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    struct stat st;

    if (fd < 0) {
        *note = g_strdup("no readfile (m5dev up --m5ops-readfile FILE, or m5dev m5ops readfile FILE)");
        return 0;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        *note = g_strdup("the readfile is not a regular file: refused");
        return 0;
    }
    buf = g_malloc(MIN(len, (uint64_t)CHUNK) + 1);
    while (done < len) {
        uint64_t want = MIN(len - done, (uint64_t)CHUNK);
        ssize_t got = 0;
        while ((uint64_t)got < want) {
            ssize_t r = pread(fd, buf + got, want - got, (off_t)(x[2] + done + got));
            if (r <= 0) {
                break;
            }
            got += r;
        }
        if (got <= 0) {
            break; /* the end of the file */
        }
        size_t put = guest_rw(cs, x[0] + done, buf, (size_t)got, true);
        done += put;
        if (put < (size_t)got) {
            *note = g_strdup_printf("guest buffer at 0x%" PRIx64 " not writable by the guest after %" PRIu64 " bytes", x[0], done);
            break;
        }
        if ((uint64_t)got < want) {
            break;
        }
    }
    close(fd);
    return done;
}

/*
 * The guest's bytes into m5out/NAME at an offset, CHUNK at a time (at most CALL_CAP a call). The
 * count written is returned: a refusal, m5out's quota, a failed write or a guest page the guest
 * may not read ends the call short (0 when nothing was written), so the guest sees it (gem5's m5
 * reports a short write as a failure); the log says why.
 */
static uint64_t op_writefile(CPUState *cs, const uint64_t *x, char **file, char **note)
{
    g_autofree char *name = guest_string(cs, x[3]);
    g_autofree uint8_t *buf = NULL;
    char clean[NAME_MAX_LEN];
    uint64_t len = MIN(x[1], (uint64_t)CALL_CAP);
    uint64_t done = 0;
    struct statvfs vfs;
    struct stat fst;
    int parts, made, fd;

    if (!name || !name[0]) {
        *note = g_strdup(name ? "empty file name" : "file name not readable in guest memory");
        return 0;
    }
    switch (m5out_clean_name(name, clean, sizeof(clean), &parts)) {
    case M5OUT_OK:
        break;
    case M5OUT_CONTROL:
        *note = g_strdup("the file name has a control character: refused");
        return 0;
    case M5OUT_DEEP:
        *note = g_strdup_printf("the file name is more than %d directories deep: refused", M5OUT_MAX_DEPTH);
        return 0;
    default:
        *note = g_strdup_printf("nothing is left of the file name \"%.200s\": refused", name);
        return 0;
    }
    *file = g_strdup(clean);
    fd = open_out(clean, parts, &made);
    out_entries += made;
    out_bytes += made * M5OUT_ENTRY_COST;
    if (fd < 0) {
        *note = g_strdup_printf("cannot open m5out/%s: %s", *file, errno == EDQUOT ? "m5out holds too many files" : strerror(errno));
        return 0;
    }
    if (strcmp(*file, name) && x[2] == 0) {
        *note = g_strdup_printf("the guest asked for \"%.200s\"", name);
    }
    /* The first call of a file starts it afresh: what it held is given back to the quota. */
    if (x[2] == 0 && fstat(fd, &fst) == 0 && fst.st_size > 0 && ftruncate(fd, 0) == 0) {
        out_bytes -= (long long)fst.st_size;
    }
    buf = g_malloc(MIN(len, (uint64_t)CHUNK) + 1);
    while (done < len) {
        uint64_t want = MIN(len - done, (uint64_t)CHUNK);
        long long old_size = fstat(fd, &fst) == 0 ? (long long)fst.st_size : -1;
        long long cost = old_size >= 0 ? m5out_growth(old_size, x[2] + done, want) : INT64_MAX;
        size_t got;

        if (!m5out_fits(out_bytes, cost, quota) ||
            (fstatvfs(out_fd, &vfs) == 0 && (long long)vfs.f_bavail * (long long)vfs.f_frsize < RESERVE + cost)) {
            g_free(*note);
            *note = g_strdup_printf("m5out is full (quota %lld bytes of apparent size and entries for the instance, %lld kept free on the host): written %" PRIu64 " of %" PRIu64 " bytes", quota, RESERVE, done, len);
            break;
        }
        got = guest_rw(cs, x[0] + done, buf, want, false);
        if (got && pwrite(fd, buf, got, (off_t)(x[2] + done)) != (ssize_t)got) {
            g_free(*note);
            *note = g_strdup_printf("write failed after %" PRIu64 " bytes: %s", done, strerror(errno));
            break;
        }
        /* Charged: how much the file's apparent size grew. */
        if (fstat(fd, &fst) == 0 && (long long)fst.st_size > old_size) {
            out_bytes += (long long)fst.st_size - old_size;
        }
        done += got;
        if (got < want) {
            g_free(*note);
            *note = g_strdup_printf("guest buffer at 0x%" PRIx64 " not readable by the guest after %" PRIu64 " bytes", x[0], done);
            break;
        }
    }
    close(fd);
    return done;
}

/*
 * Append `text` to m5out/NAME (a name of ours), charged to the quota like a writefile.
 * Returns false (and sets *note) when it could not.
 */
static bool append_out(const char *name, const char *text, char **note)
{
    size_t len = strlen(text);
    struct stat fst;
    int made = 0;
    int fd = open_out(name, 1, &made);

    out_entries += made;
    out_bytes += made * M5OUT_ENTRY_COST;
    if (fd < 0 || fstat(fd, &fst) != 0) {
        *note = g_strdup_printf("cannot open m5out/%s: %s", name, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return false;
    }
    if (!m5out_fits(out_bytes, (long long)len, quota)) {
        *note = g_strdup_printf("m5out is full: m5out/%s not written", name);
        close(fd);
        return false;
    }
    if (pwrite(fd, text, len, fst.st_size) != (ssize_t)len) {
        *note = g_strdup_printf("writing m5out/%s failed: %s", name, strerror(errno));
        close(fd);
        return false;
    }
    out_bytes += (long long)len;
    close(fd);
    return true;
}

/* One stat line as gem5's text output writes it: name, value, then "# description (unit)". */
static void stat_line(GString *out, const char *name, const char *value, const char *desc, const char *unit)
{
    g_string_append_printf(out, "%-40s %20s                       # %s (%s)\n", name, value, desc, unit);
}

/* dump_stats: a block of gem5's stats.txt, appended to m5out/stats.txt (gem5 writes it there too). */
static void dump_stats(char **note)
{
    int64_t vclock = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) - stats_vclock0;
    int64_t host = g_get_monotonic_time() - stats_host0;
    GString *out = g_string_new("\n---------- Begin Simulation Statistics ----------\n");
    char v[64];

    g_snprintf(v, sizeof(v), "%.6f", (double)vclock / 1e9);
    stat_line(out, "simSeconds", v, "Number of seconds simulated", "Second");
    g_snprintf(v, sizeof(v), "%" PRId64, vclock * 1000);
    stat_line(out, "simTicks", v, "Number of ticks simulated", "Tick");
    stat_line(out, "simFreq", "1000000000000", "The number of ticks per simulated second", "Tick/Second");
    g_snprintf(v, sizeof(v), "%.2f", (double)host / 1e6);
    stat_line(out, "hostSeconds", v, "Real time elapsed on the host", "Second");
    if (count_insns) {
        uint64_t n = qatomic_read(&insns) - insns0;
        g_snprintf(v, sizeof(v), "%" PRIu64, n);
        stat_line(out, "simInsts", v, "Number of instructions simulated", "Count");
        g_snprintf(v, sizeof(v), "%.0f", host > 0 ? (double)n / ((double)host / 1e6) : 0.0);
        stat_line(out, "hostInstRate", v, "Simulator instruction rate (inst/s)", "Count/Second");
    }
    g_string_append(out, "\n---------- End Simulation Statistics   ----------\n");
    append_out("stats.txt", out->str, note);
    g_string_free(out, true);
}

static void reset_stats(void)
{
    stats_vclock0 = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    stats_host0 = g_get_monotonic_time();
    insns0 = qatomic_read(&insns);
}

/*
 * stats=insns: each translated block adds its instruction count when it runs. An atomic add in a
 * callback: QEMU 7.2's inline add is not atomic, and vCPUs run in threads of their own (MTTCG).
 */
static void tb_exec(unsigned int vcpu, void *n)
{
    qatomic_add(&insns, (uint64_t)(uintptr_t)n);
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    qemu_plugin_register_vcpu_tb_exec_cb(tb, tb_exec, QEMU_PLUGIN_CB_NO_REGS, (void *)(uintptr_t)qemu_plugin_tb_n_insns(tb));
}

/* The VM stops at the end of this op (or now, from the timer): m5dev run saves it, then continues it. */
static void pause_for_checkpoint(void)
{
    qemu_system_vmstop_request_prepare();
    qemu_system_vmstop_request(RUN_STATE_PAUSED);
}

static void checkpoint_due(void *opaque);

/* The checkpoint timer, made at the first op that needs it (the main loop's clocks exist by then). */
static QEMUTimer *checkpoint_timer(void)
{
    if (!ckpt_timer) {
        ckpt_timer = timer_new_ns(QEMU_CLOCK_VIRTUAL, checkpoint_due, NULL);
    }
    return ckpt_timer;
}

/* A period of at least 1 ms of guest time (a shorter one would pause the guest without end), saturated. */
#define MIN_CHECKPOINT_PERIOD_NS 1000000ULL

static void arm_checkpoint(uint64_t period)
{
    ckpt_period = period ? (int64_t)MIN(MAX(period, MIN_CHECKPOINT_PERIOD_NS), (uint64_t)INT64_MAX / 2) : 0;
    if (ckpt_period) {
        timer_mod(checkpoint_timer(), qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) + ckpt_period);
    } else if (ckpt_timer) {
        timer_del(ckpt_timer);
    }
}

/* A scheduled checkpoint is due (the main loop, under the BQL as the ops are): logged as the op is, then paused. */
static void checkpoint_due(void *opaque)
{
    uint64_t x[6] = { 0, (uint64_t)ckpt_period };
    /* m5dev learns of a checkpoint only from its record: none written (the log is full), no pause. */
    if (log_op(NULL, 0x43, x, 0, NULL, NULL, "paused for m5dev to take it (scheduled)")) {
        pause_for_checkpoint();
    }
    arm_checkpoint((uint64_t)ckpt_period);
}

static uint64_t m5op(unsigned func)
{
    CPUState *cs = current_cpu;
    uint64_t x[6] = { 0 };
    uint64_t result = 0;
    g_autofree char *file = NULL;
    g_autofree char *note = NULL;
    int code = 0;
    bool has_code = false;
    bool logged = true;
    bool pause_now = false;

    /* No vCPU (a debugger or the monitor reading the range), or this op's own guest access: nothing. */
    if (!cs || in_op) {
        return 0;
    }
    in_op = true;
    cpu_synchronize_state(cs);
    {
        CPUClass *cc = CPU_GET_CLASS(cs);
        GByteArray *reg = g_byte_array_new();
        for (int i = 0; i < 6; i++) {
            g_byte_array_set_size(reg, 0);
            if (cc->gdb_read_register(cs, reg, i) == 8) {
                memcpy(&x[i], reg->data, 8);
                x[i] = le64_to_cpu(x[i]);
            }
        }
        g_byte_array_free(reg, true);
    }
    switch (func) {
    case 0x23: /* sum */
        result = x[0] + x[1] + x[2] + x[3] + x[4] + x[5];
        logged = false;
        break;
    case 0x07: /* rpns: QEMU's virtual clock stands for gem5's simulated time */
        result = (uint64_t)qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
        logged = false;
        break;
    case 0x04: /* quiesce_time */
        result = 0;
        break;
    case 0x50: /* read_file: the first call of a file, and any that went wrong */
        result = op_readfile(cs, x, &note);
        logged = x[2] == 0 || note;
        break;
    case 0x4f: /* write_file: likewise */
        result = op_writefile(cs, x, &file, &note);
        logged = x[2] == 0 || note;
        /* A write the host could not complete is fatal to a gem5 simulation; here it is a failure
           with code 1 (m5ops wait and run return it; poweroff ends the VM), and the guest sees the
           short count: never a silent success. */
        if (result < MIN(x[1], CALL_CAP)) {
            has_code = true;
            code = 1;
            logged = true;
        }
        break;
    case 0x21: /* exit(delay) */
        has_code = true;
        code = 0;
        break;
    case 0x22: /* fail(delay, code) */
        has_code = true;
        code = (int)(int32_t)x[1];
        break;
    case 0x54: /* panic: gem5 aborts */
        has_code = true;
        code = 134;
        break;
    case 0x41: /* dump_stats(delay, period): now (delay and period are simulated-time schedules gem5 keeps) */
        dump_stats(&note);
        break;
    case 0x40: /* reset_stats */
        reset_stats();
        break;
    case 0x42: /* dump_reset_stats */
        dump_stats(&note);
        reset_stats();
        break;
    case 0x30: { /* init_param(key_str1, key_str2): the key packed little-endian in two registers, as gem5's */
        char key[17] = { 0 };
        uint64_t regs[2] = { cpu_to_le64(x[0]), cpu_to_le64(x[1]) };
        memcpy(key, regs, 16);
        result = 0;
        note = g_strdup_printf("key \"%s\": not given (answered 0)", key);
        for (int i = 0; i < n_params; i++) {
            if (!strcmp(params[i].key, key)) {
                result = params[i].value;
                g_free(note);
                note = g_strdup_printf("key \"%s\"", key);
                break;
            }
        }
        break;
    }
    case 0x43: /* checkpoint(delay, period): taken after delay ns of the guest's virtual time, then every period ns */
        if (!checkpoint_pause) {
            note = g_strdup("recorded only: m5dev run takes checkpoints");
        } else if (x[0] == 0) {
            pause_now = true;
            arm_checkpoint(x[1]);
            note = g_strdup(x[1] ? "paused for m5dev to take it (and again every period)" : "paused for m5dev to take it");
        } else {
            ckpt_period = (int64_t)x[1];
            /* Far delays saturate rather than overflow the clock. */
            timer_mod(checkpoint_timer(), qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) + (int64_t)MIN(x[0], (uint64_t)INT64_MAX / 2));
            note = g_strdup_printf("scheduled: taken %" PRIu64 " ns on", x[0]);
        }
        break;
    case 0x53: { /* add_symbol(addr, symbol) */
        note = guest_string(cs, x[1]);
        break;
    }
    default:
        if (!strcmp(op_name(func), "unknown")) {
            note = g_strdup_printf("unhandled m5 op 0x%x: answered 0", func);
        }
        break;
    }
    if (logged) {
        bool written = log_op(cs, func, x, result, has_code ? &code : NULL, file, note);
        /* m5dev learns of a checkpoint only from its record: none written (the log is full), no pause. */
        if (pause_now && written) {
            pause_for_checkpoint();
        }
    }
    /* An exit before the Nth (exits=N) is recorded and the guest runs on. */
    if (has_code && poweroff && !(func == 0x21 && ++exits_seen < exits_wanted)) {
        /* QEMU's own exit status becomes the guest's code (see m5ops_main). */
        exit_code = (code & 0xff) || !code ? code & 0xff : 1; /* fail(256) is a failure, not 0 */
        qemu_system_shutdown_request(SHUTDOWN_CAUSE_GUEST_SHUTDOWN);
    }
    in_op = false;
    return result;
}

static uint64_t m5ops_read(void *opaque, hwaddr addr, unsigned size)
{
    return m5op((addr >> 8) & 0xff);
}

static void m5ops_write(void *opaque, hwaddr addr, uint64_t data, unsigned size)
{
    m5op((addr >> 8) & 0xff);
}

static const MemoryRegionOps m5ops_ops = {
    .read = m5ops_read,
    .write = m5ops_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    /* One op per access: an 8-byte load must arrive as one call, not two 4-byte halves. */
    .valid = { .min_access_size = 1, .max_access_size = 8 },
    .impl = { .min_access_size = 8, .max_access_size = 8 },
};

/* QEMU's main after qemu_init: the usual loop and cleanup, then the guest's exit code if it gave one. */
static int m5ops_main(void)
{
    int status = qemu_default_main();

    return exit_code >= 0 ? exit_code : status;
}

/* nftw: each entry under m5out (not m5out itself) costs its apparent size and M5OUT_ENTRY_COST. */
static int count_out(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    if (ftw->level > 0) {
        out_entries++;
        out_bytes += M5OUT_ENTRY_COST + (type == FTW_F ? (long long)st->st_size : 0);
    }
    return 0;
}

static int fail(const char *fmt, const char *what)
{
    fprintf(stderr, "m5ops: ");
    fprintf(stderr, fmt, what);
    fprintf(stderr, "\n");
    return -1;
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    uint64_t base = 0x10010000;
    g_autofree char *out = NULL;
    g_autofree char *logpath = NULL;
    struct stat st;

    for (int i = 0; i < argc; i++) {
        if (g_str_has_prefix(argv[i], "base=")) {
            base = g_ascii_strtoull(argv[i] + 5, NULL, 0);
        } else if (g_str_has_prefix(argv[i], "dir=")) {
            dir = g_strdup(argv[i] + 4);
        } else if (!strcmp(argv[i], "exit=poweroff")) {
            poweroff = true;
        } else if (g_str_has_prefix(argv[i], "quota=")) {
            quota = (long long)g_ascii_strtoull(argv[i] + 6, NULL, 0);
        } else if (!strcmp(argv[i], "exit=continue")) {
            poweroff = false;
        } else if (!strcmp(argv[i], "checkpoint=pause")) {
            checkpoint_pause = true;
        } else if (g_str_has_prefix(argv[i], "param=")) {
            const char *kv = argv[i] + 6;
            const char *eq = strchr(kv, '=');
            if (!eq || eq - kv > 16 || n_params == MAX_PARAMS) {
                return fail("bad %s (param=KEY=VALUE, KEY up to 16 characters, at most 32)", argv[i]);
            }
            memcpy(params[n_params].key, kv, eq - kv);
            params[n_params].key[eq - kv] = 0;
            params[n_params].value = g_ascii_strtoull(eq + 1, NULL, 0);
            n_params++;
        } else if (g_str_has_prefix(argv[i], "exits=")) {
            exits_wanted = g_ascii_strtoull(argv[i] + 6, NULL, 10);
            if (exits_wanted < 1) {
                return fail("%s", "exits= must be 1 or more");
            }
        } else if (!strcmp(argv[i], "stats=insns")) {
            count_insns = true;
        } else {
            return fail("unknown argument %s", argv[i]);
        }
    }
    if (!dir) {
        return fail("%s", "needs dir=DIR");
    }

    /* Built for one QEMU: refuse another (its internal layout may differ). */
    {
        VersionInfo *v = qmp_query_version(NULL);
        g_autofree char *running = g_strdup_printf("%" PRId64 ".%" PRId64 ".%" PRId64 " (%s)", v->qemu->major, v->qemu->minor, v->qemu->micro, v->package);
        qapi_free_VersionInfo(v);
        if (strcmp(running, M5OPS_QEMU_VERSION)) {
            fprintf(stderr, "m5ops: built for QEMU %s, running in QEMU %s: rebuild the toolchain image\n", M5OPS_QEMU_VERSION, running);
            return -1;
        }
    }
    out = g_build_filename(dir, "m5out", NULL);
    if (g_mkdir_with_parents(out, 0755) != 0 || stat(dir, &st) != 0) {
        return fail("cannot create %s", out);
    }
    /* What the guest writes belongs to whoever owns the instance. */
    owner_uid = st.st_uid;
    owner_gid = st.st_gid;
    if (chown(out, owner_uid, owner_gid) != 0) {
        /* rootless engines map ids: the owner is right already */
    }
    out_fd = open(out, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    /* The quota is the instance's, across launches: what m5out already holds counts. */
    if (nftw(out, count_out, 16, FTW_PHYS) != 0) {
        return fail("cannot read %s", out);
    }
    logpath = g_build_filename(dir, "m5ops.log", NULL);
    /* A log at its cap starts afresh at the next launch (the old one kept as m5ops.log.1): the
       cap is a launch's, and exits are always written (m5ops wait reads the latest launch). */
    {
        struct stat old;
        if (stat(logpath, &old) == 0 && old.st_size >= M5OPS_LOG_CAP) {
            g_autofree char *kept = g_strconcat(logpath, ".1", NULL);
            if (rename(logpath, kept) != 0) {
                /* then it goes on past the cap for exits only, as before */
            }
        }
    }
    log_fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (out_fd < 0 || log_fd < 0) {
        return fail("cannot open %s", out_fd < 0 ? out : logpath);
    }
    {
        struct stat lst;
        if (fstat(log_fd, &lst) == 0) {
            log_bytes = (long long)lst.st_size;
        }
    }
    if (fchown(log_fd, owner_uid, owner_gid) != 0) {
        /* as above */
    }
    {
        /* A run starts: `m5dev m5ops wait` looks for an exit after the last of these. */
        g_autofree char *line = g_strdup_printf("{\"time\":%" PRId64 ",\"vclockNs\":0,\"vcpu\":-1,\"func\":-1,\"op\":\"start\",\"args\":[\"0x%" PRIx64 "\"],\"result\":\"0x0\",\"note\":\"exit=%s\"}\n",
                                                g_get_real_time() / 1000, base, poweroff ? "poweroff" : "continue");
        if (write(log_fd, line, strlen(line)) < 0) {
            /* the ops still answer */
        }
    }
    reset_stats();
    if (count_insns) {
        qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    }
    memory_region_init_io(&m5ops_mr, NULL, &m5ops_ops, NULL, "m5ops", M5OPS_SIZE);
    /* Over virt's PCIe MMIO window (priority 0), which would answer all ones. */
    memory_region_add_subregion_overlap(get_system_memory(), base, &m5ops_mr, 1);
    qemu_main = m5ops_main;
    return 0;
}
