#!/usr/bin/env bash
# Build the test fixture: a small arm64 Debian "cloud image" shaped like Ubuntu's
# (GPT, ESP = partition 15 with a standalone GRUB arm64 EFI at \EFI\BOOT\BOOTAA64.EFI,
# ext4 root = partition 1 labelled cloudimg-rootfs, qcow2), with real cloud-init and openssh-server.
# cloud-init runs its init stage in full (users, SSH keys, hosts, growpart: all m5dev's user-data
# needs) but not the config and final stages (locale-gen, apt, ntp, runcmd, …): under TCG they cost
# each boot ~20 s of both cores after SSH is up, which the other tests running meanwhile pay for,
# and with no module left, still ~12 s of a vCPU each to start Python: their services are masked.
# A guest of Ubuntu's image runs them; nothing m5dev does depends on them.
# Neither does anything in it use TLS: the CA certificates are left out of the package (its
# configure step, one emulated process after another for each of ~140 certificates, took 1.5 min).
# e2scrub_reap is masked too. Building costs one core for 10 minutes or more, so three things the
# package scripts would do under qemu-user are done once, or not at all: the initramfs is made once at the
# end (not by the kernel's hook and again by the trigger), Python modules are byte-compiled by one
# process at the end (not by an emulated py3compile per package), and no SSH host keys are made
# (cloud-init installs m5dev's; the RSA key alone took seconds).
# The initramfs holds only what finds the root disk (virtio over MMIO, virtio-blk; ext4 is built
# in): Debian's default (MODULES=most) copies hundreds of modules, each through emulated tools,
# for minutes, and every boot then loads a larger initrd under TCG. The rest loads from the disk.
# Cached outside the checkout, keyed by this script's hash. Prints the fixture directory
# (holding the image and a SHA256SUMS) on stdout.
# Host needs: mmdebstrap, qemu-user-static (binfmt registered), e2fsprogs, dosfstools, mtools, fdisk, qemu-utils.
set -euo pipefail

key="$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-16)"
root_cache="${M5DEV_FIXTURE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/m5dev-fixtures}"
out="$root_cache/cloudimg-$key"
name="debian-12-m5dev-fixture-arm64.img"

if [[ -f "$out/SHA256SUMS" && -f "$out/$name" ]]; then
  echo "$out"
  exit 0
fi

log() { echo "build-test-image: $*" >&2; }

# binfmt for arm64 binaries (mount binfmt_misc first when it is empty).
if [[ ! -e /proc/sys/fs/binfmt_misc/register ]]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
if [[ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]]; then
  update-binfmts --enable qemu-aarch64 >&2 || true
fi
[[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]] || { log "qemu-aarch64 binfmt not registered (install qemu-user-static)"; exit 3; }

work="$(mktemp -d "${TMPDIR:-/tmp}/m5dev-fixture.XXXXXX")"
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"

log "mmdebstrap arm64 rootfs (takes a few minutes under qemu-user)"
mmdebstrap --arch=arm64 --variant=minbase --mode=root --format=directory \
  --include=systemd-sysv,udev,kmod,cloud-guest-utils,e2fsprogs,linux-image-cloud-arm64,initramfs-tools,cloud-init,openssh-server,sudo,ifupdown,isc-dhcp-client,netbase,iproute2,grub-efi-arm64-bin,ca-certificates \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/ca-certificates/*' \
  --essential-hook='mkdir -p "$1/etc/initramfs-tools/conf.d" "$1/usr/share/initramfs-tools/modules.d"' \
  --essential-hook='echo MODULES=list > "$1/etc/initramfs-tools/conf.d/m5dev-fixture"' \
  --essential-hook='printf "virtio_mmio\nvirtio_pci\nvirtio_blk\n" > "$1/usr/share/initramfs-tools/modules.d/m5dev-fixture"' \
  --essential-hook='for f in /usr/sbin/update-initramfs /usr/bin/py3compile; do chroot "$1" dpkg-divert --quiet --local --rename --add "$f" && printf "#!/bin/sh\nexit 0\n" > "$1$f" && chmod 755 "$1$f"; done' \
  --essential-hook='mkdir -p "$1/etc/ssh" && for t in rsa ecdsa ed25519; do : > "$1/etc/ssh/ssh_host_${t}_key"; done' \
  --customize-hook='echo "LABEL=cloudimg-rootfs / ext4 defaults,discard 0 1" > "$1/etc/fstab"' \
  --customize-hook='echo "m5dev-fixture" > "$1/etc/hostname"' \
  --customize-hook='printf "datasource_list: [ NoCloud, None ]\n" > "$1/etc/cloud/cloud.cfg.d/90-m5dev-fixture.cfg"' \
  --customize-hook='for f in /usr/sbin/update-initramfs /usr/bin/py3compile; do rm "$1$f" && chroot "$1" dpkg-divert --quiet --local --rename --remove "$f"; done' \
  --customize-hook='chroot "$1" python3 -m compileall -q -j0 /usr/lib/python3/dist-packages /usr/share/python3 >/dev/null' \
  --customize-hook='chroot "$1" update-initramfs -c -k all' \
  --customize-hook='rm -f "$1"/etc/ssh/ssh_host_*' \
  --customize-hook='chroot "$1" systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer systemd-timesyncd.service cloud-config.service cloud-final.service >/dev/null 2>&1 || true' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
  bookworm "$rootfs" >&2

log "standalone GRUB arm64 EFI"
cat > "$rootfs/tmp/grub.cfg" <<'GRUB'
set timeout=0
search --no-floppy --label cloudimg-rootfs --set=root
linux /vmlinuz root=LABEL=cloudimg-rootfs rw console=ttyAMA0 earlycon
initrd /initrd.img
boot
GRUB
chroot "$rootfs" grub-mkstandalone -O arm64-efi -o /tmp/BOOTAA64.EFI \
  --modules="part_gpt ext2 fat search search_label linux normal configfile echo" \
  --locales= --themes= --fonts= "boot/grub/grub.cfg=/tmp/grub.cfg" >&2
mv "$rootfs/tmp/BOOTAA64.EFI" "$work/BOOTAA64.EFI"
rm -f "$rootfs/tmp/grub.cfg"

log "filesystems"
esp_mib=63
root_mib=2048
mkfs.vfat -C -n UEFI "$work/esp.fat" $((esp_mib * 1024)) >&2
mmd -i "$work/esp.fat" ::/EFI ::/EFI/BOOT
mcopy -i "$work/esp.fat" "$work/BOOTAA64.EFI" ::/EFI/BOOT/BOOTAA64.EFI
mke2fs -q -t ext4 -L cloudimg-rootfs -d "$rootfs" "$work/root.ext4" "${root_mib}M" >&2

log "GPT disk"
disk="$work/disk.raw"
truncate -s $(((1 + esp_mib + root_mib + 1) * 1024 * 1024)) "$disk"
sfdisk -q "$disk" >&2 <<SFDISK
label: gpt
${disk}1 : start=$(((1 + esp_mib) * 2048)), size=$((root_mib * 2048)), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=cloudimg-rootfs
${disk}15 : start=2048, size=$((esp_mib * 2048)), type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=UEFI
SFDISK
dd if="$work/esp.fat" of="$disk" bs=1M seek=1 conv=notrunc status=none
dd if="$work/root.ext4" of="$disk" bs=1M seek=$((1 + esp_mib)) conv=notrunc status=none

mkdir -p "$root_cache"
stage="$(mktemp -d "$root_cache/.stage.XXXXXX")"
qemu-img convert -c -f raw -O qcow2 "$disk" "$stage/$name"
(cd "$stage" && sha256sum --tag "$name" >/dev/null && sha256sum "$name" | sed 's/  / */' > SHA256SUMS)
rm -rf "$out"
mv "$stage" "$out"
log "done: $out"
echo "$out"
