// SPDX-License-Identifier: GPL-2.0-only
/*
 * m5-test: runs in the guest as an unprivileged user against a loaded m5 module.
 * Maps inside the m5ops range must succeed; maps that end beyond it must fail with EINVAL.
 * The mapping is never touched: outside gem5 nothing answers at that address.
 * Prints TAP; exit status 0 only if every check passed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define DEV "/dev/gem5_bridge"
#define PARAMS "/sys/module/m5/parameters/"

static int failures, count;

static unsigned long param(const char *name)
{
	char path[256], buf[64];
	FILE *f;

	snprintf(path, sizeof(path), PARAMS "%s", name);
	f = fopen(path, "r");
	if (!f || !fgets(buf, sizeof(buf), f)) {
		printf("Bail out! cannot read %s: %s\n", path, strerror(errno));
		exit(2);
	}
	fclose(f);
	return strtoul(buf, NULL, 0);
}

static void check(int ok, const char *what)
{
	count++;
	if (!ok)
		failures++;
	printf("%s %d - %s\n", ok ? "ok" : "not ok", count, what);
}

static void expect_map(int fd, size_t len, off_t off, int want_ok, const char *what)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, off);
	int err = errno;

	if (want_ok) {
		check(p != MAP_FAILED, what);
		if (p == MAP_FAILED)
			printf("# mmap failed: %s\n", strerror(err));
		else
			munmap(p, len);
	} else {
		check(p == MAP_FAILED && err == EINVAL, what);
		if (p != MAP_FAILED) {
			printf("# mmap unexpectedly succeeded\n");
			munmap(p, len);
		} else if (err != EINVAL) {
			printf("# mmap failed with %s, wanted EINVAL\n", strerror(err));
		}
	}
}

int main(void)
{
	unsigned long base = param("gem5_bridge_baseaddr");
	unsigned long size = param("gem5_bridge_rangesize");
	long page = sysconf(_SC_PAGESIZE);
	int fd;

	printf("TAP version 13\n# uid %d, range 0x%lx+0x%lx, page %ld\n", (int)getuid(), base, size, page);
	fd = open(DEV, O_RDWR | O_SYNC);
	check(fd >= 0, "open " DEV " without privileges");
	if (fd < 0) {
		printf("# open: %s\n", strerror(errno));
		printf("1..%d\n", count);
		return 1;
	}
	expect_map(fd, size, 0, 1, "mmap the whole range");
	expect_map(fd, page, size - page, 1, "mmap the last page (offset inside the range)");
	expect_map(fd, size + page, 0, 0, "mmap one page longer than the range fails with EINVAL");
	expect_map(fd, page, size, 0, "mmap at an offset just past the range fails with EINVAL");
	expect_map(fd, 2 * page, size - page, 0, "mmap straddling the end of the range fails with EINVAL");
	close(fd);
	printf("1..%d\n", count);
	return failures ? 1 : 0;
}
