#!/bin/sh
# In the toolchain container (src/workflows/kernel-build.ts): a kernel source tarball extracted into
# FINAL.partial, renamed to FINAL when whole, so a cut-short extraction is never taken for a tree.
# Arguments: TARBALL (.tar.xz) FINAL.
# Exit codes: 0 extracted; others: tar's (a full disk, a broken tarball).
set -e
tarball=$1; final=$2; partial="$2.partial"
rm -rf "$partial"
mkdir -p "$partial"
tar -xJf "$tarball" --strip-components=1 --no-same-owner -C "$partial"
rm -rf "$final"
mv "$partial" "$final"
