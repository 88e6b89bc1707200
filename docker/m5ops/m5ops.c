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
 * Arguments (-plugin file=m5ops.so,base=0x10010000,dir=/instance,exit=continue|poweroff):
 *   dir/m5ops-readfile   what the guest's readfile reads (opened at each call: replace it any time)
 *   dir/m5out/           where writefile's files land, named by the guest, never outside it
 *   dir/m5ops.log        one JSON object a line per op (not sum, nor a readfile/writefile continuation)
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

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define M5OPS_SIZE 0x10000
/* At most this much a readfile or writefile call (gem5's m5 loops on what a call did). */
#define READ_CAP (1024 * 1024)
#define NAME_MAX_LEN 4096
/* The log stops growing past this (one line says so); m5out stops taking bytes past quota= (8 GiB)
   or when the filesystem would keep less than RESERVE free. */
#define LOG_CAP (64LL * 1024 * 1024)
#define RESERVE (1024LL * 1024 * 1024)

static MemoryRegion m5ops_mr;
static char *dir;
static int log_fd = -1;
static int out_fd = -1;
static bool poweroff;
static int exit_code = -1;
static long long log_bytes;
static long long out_bytes;
static long long quota = 8LL * 1024 * 1024 * 1024;
static bool in_op;
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

static void log_op(CPUState *cs, unsigned func, const uint64_t *x, uint64_t result, const int *code, const char *file, const char *note)
{
    GString *line;
    int argc = op_argc(func);

    if (log_fd < 0) {
        return;
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
    if (log_bytes + (long long)line->len > LOG_CAP) {
        static const char full[] = "{\"time\":0,\"vclockNs\":0,\"vcpu\":-1,\"func\":-1,\"op\":\"log_full\",\"args\":[],\"result\":\"0x0\",\"note\":\"m5ops.log reached its cap: later ops are not logged\"}\n";
        if (log_bytes <= LOG_CAP && write(log_fd, full, sizeof(full) - 1) > 0) {
            log_bytes = LOG_CAP + 1;
        }
    } else if (write(log_fd, line->str, line->len) > 0) {
        log_bytes += (long long)line->len;
    }
    g_string_free(line, true);
}

/* Guest virtual memory through the vCPU's page tables, one page at a time: bytes done. */
static size_t guest_rw(CPUState *cs, uint64_t addr, uint8_t *buf, size_t len, bool is_write)
{
    size_t done = 0;

    while (done < len) {
        size_t piece = MIN(len - done, 4096 - ((addr + done) & 4095));
        if (cpu_memory_rw_debug(cs, addr + done, buf + done, piece, is_write) != 0) {
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
 * The guest names a file under m5out: a relative path whose "", "." and ".." parts are dropped
 * (so it never leaves m5out), each directory opened without following a link (only QEMU writes
 * there, but the check costs nothing). Returns an fd for writing, or -1.
 */
static int open_out(const char *name, bool truncate, GString *clean)
{
    gchar **parts = g_strsplit(name, "/", -1);
    int dfd = dup(out_fd);
    int fd = -1;
    int last = -1;

    for (int i = 0; parts[i]; i++) {
        if (parts[i][0] && strcmp(parts[i], ".") && strcmp(parts[i], "..")) {
            last = i;
        }
    }
    if (last < 0) {
        errno = EINVAL; /* nothing left of the name */
    }
    for (int i = 0; parts[i] && dfd >= 0; i++) {
        if (!parts[i][0] || !strcmp(parts[i], ".") || !strcmp(parts[i], "..")) {
            continue;
        }
        if (clean->len) {
            g_string_append_c(clean, '/');
        }
        g_string_append(clean, parts[i]);
        if (i == last) {
            struct stat fst;
            fd = openat(dfd, parts[i], O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0644);
            if (fd >= 0 && fstat(fd, &fst) == 0 && (fst.st_uid != owner_uid || fst.st_gid != owner_gid) && fchown(fd, owner_uid, owner_gid) != 0) {
                /* an engine that maps ids (rootless) owns it already */
            }
            break;
        }
        if (mkdirat(dfd, parts[i], 0755) == 0 && fchownat(dfd, parts[i], owner_uid, owner_gid, AT_SYMLINK_NOFOLLOW) != 0) {
            /* as above */
        }
        int next = openat(dfd, parts[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        close(dfd);
        dfd = next;
    }
    if (dfd >= 0) {
        close(dfd);
    }
    g_strfreev(parts);
    return fd;
}

static uint64_t op_readfile(CPUState *cs, const uint64_t *x, char **note)
{
    uint64_t len = MIN(x[1], (uint64_t)READ_CAP);
    g_autofree char *path = g_build_filename(dir, "m5ops-readfile", NULL);
    g_autofree uint8_t *buf = NULL;
    ssize_t got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

    if (fd < 0) {
        *note = g_strdup("no readfile (m5dev up --m5ops-readfile FILE, or m5dev m5ops readfile FILE)");
        return 0;
    }
    buf = g_malloc(len ? len : 1);
    while ((uint64_t)got < len) {
        ssize_t r = pread(fd, buf + got, len - got, (off_t)(x[2] + got));
        if (r <= 0) {
            break;
        }
        got += r;
    }
    close(fd);
    if (got > 0) {
        size_t put = guest_rw(cs, x[0], buf, (size_t)got, true);
        if (put < (size_t)got) {
            *note = g_strdup_printf("guest buffer at 0x%" PRIx64 " not mapped after %zu bytes", x[0], put);
            got = (ssize_t)put;
        }
    }
    return (uint64_t)got;
}

/*
 * At most READ_CAP bytes a call, and the count done is returned (gem5's m5 loops until it has written
 * all; never 0 for a non-empty call, which would make it loop forever): a failure, or m5out's quota,
 * drops the rest of the call's bytes and says so in the log.
 */
static uint64_t op_writefile(CPUState *cs, const uint64_t *x, char **file, char **note)
{
    g_autofree char *name = guest_string(cs, x[3]);
    g_autofree uint8_t *buf = NULL;
    uint64_t want = MIN(x[1], (uint64_t)READ_CAP);
    struct statvfs vfs;
    GString *clean;
    size_t got;
    int fd;

    if (!name || !name[0]) {
        *note = g_strdup(name ? "empty file name" : "file name not readable in guest memory");
        return want;
    }
    if (x[2] > (uint64_t)quota || out_bytes + (long long)want > quota ||
        (fstatvfs(out_fd, &vfs) == 0 && (long long)vfs.f_bavail * (long long)vfs.f_frsize < RESERVE + (long long)want)) {
        *note = g_strdup_printf("m5out is full (quota %lld bytes a run, %lld kept free on the host): %" PRIu64 " bytes dropped", quota, RESERVE, want);
        return want;
    }
    clean = g_string_new(NULL);
    fd = open_out(name, x[2] == 0, clean);
    *file = g_string_free(clean, false);
    if (fd < 0) {
        *note = g_strdup_printf("cannot open m5out/%s: %s", *file, strerror(errno));
        return want;
    }
    if (strcmp(*file, name) && x[2] == 0) {
        *note = g_strdup_printf("the guest asked for \"%.200s\"", name);
    }
    buf = g_malloc(want ? want : 1);
    got = guest_rw(cs, x[0], buf, want, false);
    if (got && pwrite(fd, buf, got, (off_t)x[2]) != (ssize_t)got) {
        g_free(*note);
        *note = g_strdup_printf("write failed: %s", strerror(errno));
    } else if (got < want) {
        g_free(*note);
        *note = g_strdup_printf("guest buffer at 0x%" PRIx64 " not mapped after %zu bytes", x[0], got);
    }
    out_bytes += (long long)got;
    close(fd);
    return want;
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
    case 0x30: /* init_param: gem5's System.init_param, 0 by default */
        result = 0;
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
        log_op(cs, func, x, result, has_code ? &code : NULL, file, note);
    }
    if (has_code && poweroff) {
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
    logpath = g_build_filename(dir, "m5ops.log", NULL);
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
    memory_region_init_io(&m5ops_mr, NULL, &m5ops_ops, NULL, "m5ops", M5OPS_SIZE);
    /* Over virt's PCIe MMIO window (priority 0), which would answer all ones. */
    memory_region_add_subregion_overlap(get_system_memory(), base, &m5ops_mr, 1);
    qemu_main = m5ops_main;
    return 0;
}
