#!/bin/sh
# build.sh OUT: build m5ops.so for the QEMU installed in this image, against that QEMU's exact
# Debian source (patches applied: Debian's stable updates change struct layouts), with plugins on
# as in Debian's build (the version check at load time guards the rest). Only QEMU's generated headers are made (configure and the
# QAPI generator); no part of QEMU is compiled. Writes OUT/m5ops.so and OUT/qemu-version.
# It runs in a build stage of its own (docker/Dockerfile): what it installs never reaches the image.
set -eu
out="${1:?usage: build.sh OUT}"
here="$(cd "$(dirname "$0")" && pwd)"
src_version="$(dpkg-query -W -f '${source:Version}' qemu-system-arm)"
# deb-src lines beside the deb lines apt already uses (deb822 .sources or one-line sources.list).
for f in /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] && sed -i 's/^Types: deb$/Types: deb deb-src/' "$f"
done
if [ -f /etc/apt/sources.list ]; then
  sed -n 's/^deb \(.*\)$/deb-src \1/p' /etc/apt/sources.list > /etc/apt/sources.list.d/m5dev-src.list
fi
apt-get update -qq
apt-get install -y -q --no-install-recommends gcc libc6-dev dpkg-dev meson ninja-build pkg-config libglib2.0-dev libpixman-1-dev zlib1g-dev libfdt-dev >/dev/null
work="$(mktemp -d)"
cd "$work"
if ! apt-get source -qq --only-source "qemu=$src_version" >/dev/null; then
  # The toolchain stage was cached from a day the mirror still served this QEMU; it no longer does.
  echo "m5dev-lock: not-served qemu(source) $src_version" >&2
  echo "m5ops: the mirror no longer serves the source of the image's QEMU ($src_version): rebuild the toolchain image from scratch (docker rmi the m5dev/toolchain images; the lock's drift path then installs a served QEMU)" >&2
  exit 3
fi
cd qemu-*/
mkdir build && cd build
../configure --target-list=aarch64-softmmu --disable-docs --disable-user --enable-plugins --with-git-submodules=ignore >/dev/null
ninja config-poison.h qapi/qapi-types-run-state.h qapi/qapi-commands-control.h >/dev/null
# The QEMU the plugin refuses to run in when it is not this one: "MAJOR.MINOR.MICRO (PACKAGE)", as
# QEMU reports itself (Debian builds with --with-pkgversion="Debian <version>").
version="$(cut -d. -f1-3 ../VERSION) (Debian $(dpkg-query -W -f '${Version}' qemu-system-arm))"
glib="$(pkg-config --cflags glib-2.0)"
mkdir -p "$out"
# shellcheck disable=SC2086 # glib's flags are several words
gcc -O2 -g -Wall -Wno-unused-function -std=gnu11 -fPIC -shared -fno-strict-aliasing -fno-common \
  -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -D_LARGEFILE_SOURCE $glib \
  -iquote . -iquote .. -iquote ../include -I ../include -I . \
  -DM5OPS_QEMU_VERSION="\"$version\"" \
  -o "$out/m5ops.so" "$here/m5ops.c"
echo "$version" > "$out/qemu-version"
cd /
rm -rf "$work"
echo "m5ops: built $out/m5ops.so for QEMU $version"
