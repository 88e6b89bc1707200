#!/usr/bin/env bash
# A stand-in for a gem5-resources arm64 disk image (src/ubuntu-generic-diskimages: their
# /sbin/init is gem5_init.sh, and a serial autologin runs after_boot.sh from .bashrc), derived from
# the test fixture without booting it: no systemd, no network, no SSH, no cloud-init. Its init
# loads the bridge as theirs does (`modprobe gem5_bridge …`; the fixture's kernel has none, so
# m5op maps /dev/mem at 0x10010000 as gem5's `m5 --addr` does), says it booted, then runs the
# autologin's hook: `m5 exit` (booted), `m5 readfile` into a script, the script, `m5 exit`.
# So a job needs `m5dev run --exits 2`, as gem5-resources' images do.
# Written with debugfs into the root partition (found from the partition table): nothing is
# mounted, no root needed beyond reading the fixture.
# Usage: gem5-standin-image.sh FIXTURE_IMAGE M5OP_BINARY OUT_IMAGE (OUT: qcow2)
# Needs: qemu-img, sfdisk, debugfs (e2fsprogs), dd. Exit codes: 0 made; 2 usage; others: the tools'.
set -euo pipefail

[[ $# -eq 3 ]] || { echo "usage: $0 FIXTURE_IMAGE M5OP_BINARY OUT_IMAGE" >&2; exit 2; }
fixture=$1; m5op=$2; out=$3
work="$(mktemp -d "${TMPDIR:-/tmp}/m5dev-standin.XXXXXX")"
trap 'rm -rf "$work"' EXIT

qemu-img convert -O raw "$fixture" "$work/disk.raw"
# Partition 1 is the root (cloudimg-rootfs), as on Ubuntu's cloud images.
read -r start size < <(sfdisk --json "$work/disk.raw" | python3 -c 'import json,sys; p=[p for p in json.load(sys.stdin)["partitiontable"]["partitions"] if p["node"].endswith("1")][0]; print(p["start"], p["size"])')
dd if="$work/disk.raw" of="$work/root.img" bs=512 skip="$start" count="$size" conv=sparse status=none

cat > "$work/init" <<'INIT'
#!/bin/sh
# m5dev's stand-in for gem5-resources' gem5_init.sh: mount the basics, load the bridge, hand the
# serial console to the autologin's hook. PID 1 never returns.
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
modprobe gem5_bridge gem5_bridge_baseaddr=0x10010000 gem5_bridge_rangesize=0x10000 2>/dev/null || echo "standin-init: no gem5_bridge module: m5 maps /dev/mem"
echo "standin-init: booted"
export HOME=/root PATH=/usr/local/bin:/usr/bin:/usr/sbin:/bin:/sbin
cd /root && sh /root/.bashrc </dev/console >/dev/console 2>&1
echo "standin-init: the hook returned"
while :; do sleep 3600; done
INIT
cat > "$work/bashrc" <<'HOOK'
# m5dev's stand-in for gem5-resources' after_boot.sh, run by the serial autologin.
m5 exit
m5 readfile > /tmp/script
echo "after_boot: running the host's script ($(wc -c < /tmp/script) bytes)"
sh /tmp/script
m5 exit
HOOK

debugfs -w "$work/root.img" -f - >/dev/null 2>&1 <<CMDS
rm /usr/sbin/init
write $work/init /usr/sbin/init
sif /usr/sbin/init mode 0100755
sif /usr/sbin/init uid 0
sif /usr/sbin/init gid 0
write $m5op /usr/local/bin/m5
sif /usr/local/bin/m5 mode 0100755
sif /usr/local/bin/m5 uid 0
sif /usr/local/bin/m5 gid 0
rm /root/.bashrc
write $work/bashrc /root/.bashrc
sif /root/.bashrc mode 0100644
CMDS
# debugfs's exit code says nothing of its commands: check that each file holds what was written.
check() {
  cmp -s <(debugfs -R "cat $2" "$work/root.img" 2>/dev/null) "$1" || { echo "gem5-standin-image: $2 was not written" >&2; exit 3; }
}
check "$work/init" /usr/sbin/init
check "$m5op" /usr/local/bin/m5
check "$work/bashrc" /root/.bashrc
dd if="$work/root.img" of="$work/disk.raw" bs=512 seek="$start" conv=notrunc,sparse status=none
qemu-img convert -O qcow2 "$work/disk.raw" "$out.tmp"
mv "$out.tmp" "$out"
