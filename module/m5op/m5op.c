// SPDX-License-Identifier: GPL-2.0-only
/*
 * m5op: a small user-space m5ops client for the guest, through the m5 module's /dev/gem5_bridge
 * (no root needed: the device is 0666). It issues each op the way gem5's `m5` utility does in its
 * arm64 address mode: arguments in x0..x5, then one 64-bit load from base + (func << 8); the
 * loaded value is the op's result (gem5 util/m5/src/abi/arm64/m5op_addr.S).
 *
 *   m5op sum A B C D E F          print the sum (gem5's op 0x23)
 *   m5op readfile [OFFSET]        the host's readfile to stdout, from OFFSET
 *   m5op writefile FILE [NAME [OFFSET]]  FILE to the host's out directory as NAME (default: FILE's
 *                                 name), from OFFSET in the host file (default 0)
 *   m5op readfile-into FILE       the host's readfile into FILE mapped read-only and shared, without
 *                                 touching it first: prints what the host says it wrote (the host
 *                                 must refuse: the page is not writable; a boundary test)
 *   m5op exit [DELAY_NS]          m5_exit
 *   m5op fail CODE [DELAY_NS]     m5_fail (gem5's `m5 fail` order: the code first)
 *   m5op op FUNC [ARG...]         any op by number (up to 6 arguments); print its result
 *   m5op bench N                  N sums; print the mean round trip in ns
 *
 * Without /dev/gem5_bridge (no m5 module), it maps /dev/mem at $M5OP_ADDR (default 0x10010000) as
 * gem5's m5 does; that needs root.
 *
 * Buffers handed to the host are touched and locked first: the host reads and writes guest memory
 * through the page tables, and a page that is not present cannot be read or written there.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEV "/dev/gem5_bridge"
#define RANGE_PARAM "/sys/module/m5/parameters/gem5_bridge_rangesize"
#define CHUNK (4 * 1024 * 1024) /* one call moves up to 4 MiB, as gem5's m5 asks for a whole buffer */

enum { OP_EXIT = 0x21, OP_FAIL = 0x22, OP_SUM = 0x23, OP_WRITEFILE = 0x4f, OP_READFILE = 0x50 };

static volatile uint8_t *base;

static uint64_t m5op(unsigned func, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
	register uint64_t x0 __asm__("x0") = a0;
	register uint64_t x1 __asm__("x1") = a1;
	register uint64_t x2 __asm__("x2") = a2;
	register uint64_t x3 __asm__("x3") = a3;
	register uint64_t x4 __asm__("x4") = a4;
	register uint64_t x5 __asm__("x5") = a5;
	volatile uint8_t *addr = base + ((uint64_t)(func & 0xff) << 8);

	__asm__ volatile("ldr x0, [%[addr]]"
			 : "+r"(x0)
			 : [addr] "r"(addr), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
			 : "memory");
	return x0;
}

static void die(const char *what)
{
	fprintf(stderr, "m5op: %s: %s\n", what, strerror(errno));
	exit(2);
}

static unsigned long range_size(void)
{
	char buf[64];
	FILE *f = fopen(RANGE_PARAM, "r");
	unsigned long size = 0x10000;

	if (f && fgets(buf, sizeof(buf), f))
		size = strtoul(buf, NULL, 0);
	if (f)
		fclose(f);
	return size;
}

/*
 * The m5 module's device (any user); without it, as gem5's m5 does, /dev/mem at M5OP_ADDR
 * (default 0x10010000; root only).
 */
static void map_device(void)
{
	unsigned long size = range_size();
	int fd = open(DEV, O_RDWR | O_SYNC);
	off_t offset = 0;

	if (fd < 0) {
		const char *addr = getenv("M5OP_ADDR");

		fd = open("/dev/mem", O_RDWR | O_SYNC);
		if (fd < 0)
			die("open " DEV " (is the m5 module loaded?) and /dev/mem");
		offset = (off_t)strtoull(addr ? addr : "0x10010000", NULL, 0);
		size = 0x10000;
	}
	base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, offset);
	if (base == MAP_FAILED)
		die("mmap");
	close(fd);
}

static uint64_t num(const char *s)
{
	char *end;
	uint64_t v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end || end == s) {
		fprintf(stderr, "m5op: not a number: %s\n", s);
		exit(2);
	}
	return v;
}

static uint8_t *buffer(size_t len)
{
	uint8_t *buf = aligned_alloc(4096, len);

	if (!buf)
		die("alloc");
	memset(buf, 0, len);
	mlock(buf, len); /* best effort: the memset made every page present */
	return buf;
}

static int readfile(uint64_t offset)
{
	uint8_t *buf = buffer(CHUNK);

	for (;;) {
		uint64_t n = m5op(OP_READFILE, (uintptr_t)buf, CHUNK, offset, 0, 0, 0);

		if (n == 0)
			return 0;
		if (n > CHUNK) {
			fprintf(stderr, "m5op: readfile returned %" PRIu64 " for a %d-byte buffer\n", n, CHUNK);
			return 1;
		}
		for (uint64_t done = 0; done < n;) {
			ssize_t w = write(1, buf + done, n - done);

			if (w < 0)
				die("write");
			done += (uint64_t)w;
		}
		offset += n;
	}
}

static int writefile(const char *path, const char *name, uint64_t offset)
{
	uint8_t *buf = buffer(CHUNK);
	char *host = (char *)buffer(4096);
	const uint64_t start = offset;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		die(path);
	if (strlen(name) >= 4096) {
		fprintf(stderr, "m5op: name too long\n");
		return 2;
	}
	strcpy(host, name);
	for (;;) {
		ssize_t r = read(fd, buf, CHUNK);

		if (r < 0)
			die(path);
		if (r == 0) {
			/* An empty file still creates (and truncates) its host copy: one call at offset 0. */
			if (offset == start)
				m5op(OP_WRITEFILE, (uintptr_t)buf, 0, offset, (uintptr_t)host, 0, 0);
			break;
		}
		for (ssize_t done = 0; done < r;) {
			uint64_t n = m5op(OP_WRITEFILE, (uintptr_t)(buf + done), (uint64_t)(r - done), offset, (uintptr_t)host, 0, 0);

			if (n == 0 || n > (uint64_t)(r - done)) {
				fprintf(stderr, "m5op: writefile took %" PRIu64 " of %zd bytes at offset %" PRIu64 "\n", n, r - done, offset);
				return 1;
			}
			done += (ssize_t)n;
			offset += n;
		}
	}
	close(fd);
	printf("%" PRIu64 "\n", offset - start);
	return 0;
}

static int readfile_into(const char *path)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	uint8_t *map;

	if (fd < 0 || fstat(fd, &st) != 0 || st.st_size == 0)
		die(path);
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		die("mmap");
	/* Present, and read-only: a read faults it in. */
	if (map[0] == 0xff && map[st.st_size - 1] == 0xff)
		fprintf(stderr, "m5op: (all ones)\n");
	printf("%" PRIu64 "\n", m5op(OP_READFILE, (uintptr_t)map, (uint64_t)st.st_size, 0, 0, 0, 0));
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: m5op sum A B C D E F | readfile [OFFSET] | readfile-into FILE | writefile FILE [NAME [OFFSET]] | exit [DELAY_NS] |\n"
			"            fail CODE [DELAY_NS] | op FUNC [ARG...] | bench N\n");
	return 2;
}

int main(int argc, char **argv)
{
	uint64_t a[6] = { 0 };

	if (argc < 2)
		return usage();
	map_device();
	if (!strcmp(argv[1], "sum") && argc == 8) {
		for (int i = 0; i < 6; i++)
			a[i] = num(argv[2 + i]);
		printf("%" PRIu64 "\n", m5op(OP_SUM, a[0], a[1], a[2], a[3], a[4], a[5]));
		return 0;
	}
	if (!strcmp(argv[1], "readfile") && argc <= 3)
		return readfile(argc == 3 ? num(argv[2]) : 0);
	if (!strcmp(argv[1], "writefile") && argc >= 3 && argc <= 5) {
		const char *name = argc >= 4 ? argv[3] : strrchr(argv[2], '/') ? strrchr(argv[2], '/') + 1 : argv[2];
		return writefile(argv[2], name, argc == 5 ? num(argv[4]) : 0);
	}
	if (!strcmp(argv[1], "readfile-into") && argc == 3)
		return readfile_into(argv[2]);
	if (!strcmp(argv[1], "exit") && argc <= 3) {
		m5op(OP_EXIT, argc == 3 ? num(argv[2]) : 0, 0, 0, 0, 0, 0);
		return 0;
	}
	if (!strcmp(argv[1], "fail") && (argc == 3 || argc == 4)) {
		/* gem5's m5_fail(delay, code): x0 the delay, x1 the code. */
		m5op(OP_FAIL, argc == 4 ? num(argv[3]) : 0, num(argv[2]), 0, 0, 0, 0);
		return 0;
	}
	if (!strcmp(argv[1], "op") && argc >= 3 && argc <= 9) {
		for (int i = 3; i < argc; i++)
			a[i - 3] = num(argv[i]);
		printf("%" PRIu64 "\n", m5op((unsigned)num(argv[2]), a[0], a[1], a[2], a[3], a[4], a[5]));
		return 0;
	}
	if (!strcmp(argv[1], "bench") && argc == 3) {
		uint64_t n = num(argv[2]), sum = 0;
		struct timespec t0, t1;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (uint64_t i = 0; i < n; i++)
			sum += m5op(OP_SUM, i, 1, 0, 0, 0, 0);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (n && sum != n * (n - 1) / 2 + n) {
			fprintf(stderr, "m5op: bench: wrong sums\n");
			return 1;
		}
		printf("%.0f\n", n ? ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / (double)n : 0.0);
		return 0;
	}
	return usage();
}
