#!/usr/bin/env bash
# For the tests: the arm64 Debian packages that give the fixture guest (Debian 12, no compiler) a
# C toolchain and make, to build a module *inside* the guest against /lib/modules/$(uname -r)/build.
# Downloaded (not installed: mmdebstrap's extract variant runs no arm64 code) with every dependency,
# cached beside the fixture, keyed by this script's hash; prints the directory of .debs on stdout.
# In the guest: the ones not installed at that version go to `dpkg -i` (test/e2e/guest-build.test.ts).
set -euo pipefail

key="$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-16)"
root_cache="${M5DEV_FIXTURE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/m5dev-fixtures}"
out="$root_cache/guest-cc-debs-$key"
if [[ -f "$out/SHA256SUMS" ]]; then echo "$out"; exit 0; fi

command -v mmdebstrap >/dev/null || { echo "guest-cc-debs: mmdebstrap is missing (apt-get install mmdebstrap)" >&2; exit 3; }
echo "guest-cc-debs: downloading gcc, make and libc6-dev for arm64 (Debian 12)" >&2
mkdir -p "$root_cache"
tmp="$(mktemp -d "$root_cache/.guest-cc-debs.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
mmdebstrap --arch=arm64 --variant=extract --mode=root --format=directory --include=gcc,make,libc6-dev \
  --skip=download/empty,cleanup/apt bookworm "$tmp/root" >&2
mv "$tmp"/root/var/cache/apt/archives/*.deb "$tmp/"
rm -rf "$tmp/root"
(cd "$tmp" && sha256sum -- *.deb > SHA256SUMS)
chmod 755 "$tmp"
rm -rf "$out"; mv "$tmp" "$out"
trap - EXIT
echo "$out"
