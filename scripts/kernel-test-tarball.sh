#!/usr/bin/env bash
# The kernel source the tests use in place of kernel.org (unreachable here): Debian's
# linux-source package, installed if missing. Prints two lines: the tarball path and its release.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
pkg="${M5DEV_TEST_KERNEL_PKG:-linux-source-6.1}"
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
  echo "kernel-test-tarball: installing $pkg" >&2
  as_root apt-get update -q >&2
  as_root apt-get install -y -q --no-install-recommends "$pkg" >&2
fi
tarball=$(dpkg -L "$pkg" | grep -E '/usr/src/linux-source-[^/]*\.tar\.xz$' | head -1)
[[ -f "$tarball" ]] || { echo "kernel-test-tarball: no tarball in $pkg" >&2; exit 1; }
# Debian version 6.1.192-2 -> upstream release 6.1.192 (the tree's Makefile says the same).
version=$(dpkg-query -W -f='${Version}' "$pkg" | sed -E 's/-[^-]*$//')
echo "$tarball"
echo "$version"
