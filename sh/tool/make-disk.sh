#!/bin/sh
# In the toolchain container (src/vm/prepare.ts): the instance disk, made under a temporary name
# and renamed when whole. The cached base image is only read.
# Arguments: KIND BASE DISK GROW [FORMAT]. KIND raw: a raw copy of BASE grown by GROW; overlay: a
#   qcow2 overlay backed by BASE, grown by GROW ('-': not grown). FORMAT: BASE's format, as m5dev
#   judged it from its bytes (a user's image: never probed); absent, read from qemu-img info (a
#   verified cloud image).
# Exit codes: 0 made; 2 an unknown KIND; others: qemu-img's.
set -e
kind=$1; base=$2; disk=$3; grow=$4; fmt=${5:-}
case "$kind" in
  raw)
    qemu-img convert -O raw "$base" "$disk.tmp"
    qemu-img resize -f raw "$disk.tmp" "$grow"
    ;;
  overlay)
    [ -n "$fmt" ] || fmt=$(qemu-img info --output=json "$base" | sed -n 's/.*"format": *"\([a-z0-9]*\)".*/\1/p' | head -n1)
    qemu-img create -q -f qcow2 -F "$fmt" -b "$base" "$disk.tmp"
    [ "$grow" = - ] || qemu-img resize -q "$disk.tmp" "$grow"
    ;;
  *) echo "make-disk: unknown kind $kind" >&2; exit 2 ;;
esac
mv "$disk.tmp" "$disk"
