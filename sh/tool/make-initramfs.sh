#!/bin/sh
# In a tool container (src/workflows/initramfs.ts): the initramfs `m5dev run --kernel` boots with:
# m5dev's init (initramfs/init.c, compiled static here) and the built kernel's /lib/modules/RELEASE
# (from its guest tree, without the build and source links) with the given modules in extra/ and
# depmod run, as an uncompressed newc cpio (the kernel reads it with no decompressor), written to
# OUT.partial and renamed to OUT when whole.
# Arguments: INIT_C TREE RELEASE OUT CROSS_COMPILE MODULE.ko...
# Exit codes: 0 made; others: the compiler's, depmod's or cpio's.
set -eu
init_c=$1; tree=$2; rel=$3; out=$4; cross=$5
shift 5
r=$(mktemp -d /tmp/m5dev-initramfs.XXXXXX)
"${cross}gcc" -static -O2 -Wall -Werror -o "$r/init" "$init_c"
mkdir -p "$r/lib/modules"
cp -R "$tree/lib/modules/$rel" "$r/lib/modules/$rel"
rm -f "$r/lib/modules/$rel/build" "$r/lib/modules/$rel/source"
mkdir -p "$r/lib/modules/$rel/extra"
for ko in "$@"; do cp "$ko" "$r/lib/modules/$rel/extra/"; done
depmod -b "$r" "$rel"
(cd "$r" && find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 --reproducible) > "$out.partial"
mv "$out.partial" "$out"
