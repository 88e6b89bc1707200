/*
 * m5dev's initramfs init for `m5dev run --kernel VERSION` (src/workflows/initramfs.ts): the kernel
 * m5dev built boots a disk image made for another kernel. Before the image's own init runs, this
 * makes the built kernel's module tree (with the project's m5 module, which answers to
 * `modprobe gem5_bridge` as gem5's driver does) visible at /lib/modules, without writing the image:
 *
 *   1. mount /proc, /sys and /dev (devtmpfs);
 *   2. find the root: `root=/dev/…` from the kernel command line (waiting for it to appear, as
 *      rootwait does), else the first partition of /dev/vda holding /sbin/init;
 *   3. mount it (read-write unless `ro` is given; `rootfstype=` or ext4, then the other common types);
 *   4. bind this initramfs' /lib/modules over the root's (a directory the root must have);
 *   5. move /dev there, unmount /proc and /sys, make it the root, and run its init (`init=`, else
 *      /sbin/init), with the arguments the kernel gave this one.
 * Every step says what it did on the console ("m5dev-initramfs: …"); a root that cannot be found or
 * mounted ends in a message and a power-off, never a hang.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <unistd.h>

#define NEWROOT "/newroot"

static void say(const char *fmt, ...)
{
	va_list ap;

	fputs("m5dev-initramfs: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void give_up(const char *why)
{
	say("%s: powering off", why);
	sync();
	reboot(RB_POWER_OFF);
	for (;;)
		pause();
}

/* The value of `key=` on the kernel command line, or NULL; `flag` alone: "" when present. */
static char cmdline[4096];

static const char *param(const char *key)
{
	size_t n = strlen(key);
	char *p = cmdline;

	while (*p) {
		char *end;

		while (*p == ' ' || *p == '\n')
			p++;
		end = p;
		while (*end && *end != ' ' && *end != '\n')
			end++;
		if ((size_t)(end - p) >= n && !strncmp(p, key, n) && (p[n] == '=' || p + n == end)) {
			static char value[512];
			size_t len = p + n == end ? 0 : (size_t)(end - p - n - 1);

			if (len >= sizeof(value))
				len = sizeof(value) - 1;
			memcpy(value, p + n + (p + n == end ? 0 : 1), len);
			value[len] = 0;
			return value;
		}
		p = end;
	}
	return NULL;
}

static int try_mount(const char *dev, unsigned long flags)
{
	static const char *types[] = { "ext4", "xfs", "btrfs", "ext3", "ext2", "vfat", NULL };
	const char *given = param("rootfstype");
	const char *opts = param("rootflags");

	if (given)
		return mount(dev, NEWROOT, given, flags, opts);
	for (int i = 0; types[i]; i++)
		if (mount(dev, NEWROOT, types[i], flags, opts) == 0)
			return 0;
	return -1;
}

/* The first partition of vda (by number) holding /sbin/init. */
static int find_root(unsigned long flags, char *dev, size_t size)
{
	for (int part = 1; part <= 128; part++) {
		struct stat st;

		snprintf(dev, size, "/dev/vda%d", part);
		if (stat(dev, &st) != 0)
			continue;
		if (try_mount(dev, flags) != 0)
			continue;
		if (access(NEWROOT "/sbin/init", X_OK) == 0)
			return 0;
		umount(NEWROOT);
	}
	return -1;
}

int main(int argc, char **argv)
{
	unsigned long flags = 0;
	char dev[256];
	const char *root, *init;
	int fd;

	(void)argc;
	mkdir("/proc", 0755);
	mkdir("/sys", 0755);
	mkdir("/dev", 0755);
	mkdir(NEWROOT, 0755);
	if (mount("proc", "/proc", "proc", 0, NULL) || mount("sysfs", "/sys", "sysfs", 0, NULL) || mount("devtmpfs", "/dev", "devtmpfs", 0, NULL))
		give_up("cannot mount /proc, /sys and /dev");
	/* The archive holds no device node (it is made without privilege): the console comes from devtmpfs. */
	fd = open("/dev/console", O_RDWR);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	fd = open("/proc/cmdline", O_RDONLY);
	if (fd < 0 || read(fd, cmdline, sizeof(cmdline) - 1) < 0)
		give_up("cannot read /proc/cmdline");
	close(fd);
	if (param("ro"))
		flags |= MS_RDONLY;

	root = param("root");
	if (root) {
		if (strncmp(root, "/dev/", 5) != 0)
			give_up("root= must name a device (/dev/...) here");
		snprintf(dev, sizeof(dev), "%s", root);
		for (int i = 0; access(dev, F_OK) != 0; i++) {
			if (i == 300)
				give_up("the root device did not appear within 30 s");
			usleep(100000);
		}
		if (try_mount(dev, flags) != 0)
			give_up("cannot mount the root device");
	} else {
		/* The virtio disk's partitions appear as it is probed: give it a moment. */
		for (int i = 0; access("/dev/vda", F_OK) != 0; i++) {
			if (i == 300)
				give_up("no /dev/vda within 30 s");
			usleep(100000);
		}
		if (find_root(flags, dev, sizeof(dev)) != 0)
			give_up("no partition of /dev/vda holds /sbin/init (give root=/dev/vdaN)");
	}
	say("root %s mounted %s", dev, flags & MS_RDONLY ? "read-only" : "read-write");

	if (mount("/lib/modules", NEWROOT "/lib/modules", NULL, MS_BIND, NULL) == 0)
		say("/lib/modules is the built kernel's (gem5_bridge: the project's m5 module)");
	else
		say("cannot bind /lib/modules over the root's (%s): the image's own modules stay", strerror(errno));

	if (mount("/dev", NEWROOT "/dev", NULL, MS_MOVE, NULL) != 0)
		umount2("/dev", MNT_DETACH);
	umount2("/proc", MNT_DETACH);
	umount2("/sys", MNT_DETACH);
	if (chdir(NEWROOT) || mount(".", "/", NULL, MS_MOVE, NULL) || chroot(".") || chdir("/"))
		give_up("cannot switch to the root");
	init = param("init");
	if (!init || !*init)
		init = "/sbin/init";
	argv[0] = (char *)init;
	say("running %s", init);
	execv(init, argv);
	say("cannot run %s: %s", init, strerror(errno));
	give_up("no init");
	return 1;
}
