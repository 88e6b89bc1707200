#!/bin/sh
# In the guest, as root (src/vm/shares.ts): unmount the given dirs (QEMU refuses to save a guest
# with a 9p export mounted).
# Exit codes (SHARE_EXIT in src/vm/shares.ts): 0 done; 4 a share is in use (what uses it is named).
set -e
for dir in "$@"; do
  mountpoint -q "$dir" || continue
  sync
  if ! umount "$dir" 2>/dev/null; then
    echo "the share $dir is in use in the guest:" >&2
    if ! fuser -vm "$dir" >&2 2>&1; then
      for p in /proc/[0-9]*/cwd; do
        c=$(readlink "$p" 2>/dev/null) || continue
        case $c in "$dir" | "$dir"/*) echo "${p%/cwd}: $c" >&2 ;; esac
      done
    fi
    exit 4
  fi
done
