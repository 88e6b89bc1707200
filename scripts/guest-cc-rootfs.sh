#!/usr/bin/env bash
# For `make bench` only: an arm64 Debian root holding gcc-12, to compile kernel files *inside* the
# guest (under TCG) and compare with the container's cross gcc-12 on the same preprocessed files.
# Not part of the test fixture, so the guests the tests boot stay small. Cached beside the fixture,
# keyed by this script's hash; prints the tarball's path on stdout.
set -euo pipefail

key="$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-16)"
root_cache="${M5DEV_FIXTURE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/m5dev-fixtures}"
out="$root_cache/guest-cc-$key.tar"
if [[ -f "$out" ]]; then echo "$out"; exit 0; fi

[[ -e /proc/sys/fs/binfmt_misc/register ]] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
[[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]] || update-binfmts --enable qemu-aarch64 >&2 || true
[[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]] || { echo "guest-cc-rootfs: qemu-aarch64 binfmt not registered (install qemu-user-static)" >&2; exit 3; }

echo "guest-cc-rootfs: mmdebstrap arm64 gcc-12 root (a few minutes under qemu-user)" >&2
mkdir -p "$root_cache"
tmp="$(mktemp "$root_cache/.guest-cc.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
mmdebstrap --arch=arm64 --variant=essential --mode=root --format=tar --include=gcc-12 \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  bookworm "$tmp" >&2
mv "$tmp" "$out"
trap - EXIT
echo "$out"
