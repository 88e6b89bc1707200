#!/bin/sh
# In the guest, as root (src/vm/shares.ts): GUEST_USER MOUNT_OPTIONS, then TAG DIR MODE triples (MODE
# ro or rw; a nested export, a share's .git, comes after its share). Mounts each export not mounted
# yet and prints `UID DIR` for each writable one whose owner is not the guest user.
# Exit codes (SHARE_EXIT in src/vm/shares.ts): 0 done; 3 the guest kernel has no 9p over virtio;
# 5 a share's host file system keeps no extended attributes (up probes for that first).
set -e
guest_user=$1; options=$2; shift 2
modprobe -q 9pnet_virtio 2>/dev/null || true
modprobe -q 9p 2>/dev/null || true
if ! grep -qw 9p /proc/filesystems; then echo "the guest kernel $(uname -r) has no 9p file system" >&2; exit 3; fi
user_uid=$(id -u "$guest_user")
while [ $# -ge 3 ]; do
  tag=$1; dir=$2; mode=$3; shift 3
  if ! mountpoint -q "$dir"; then
    mkdir -p "$dir"
    mount -t 9p -o "$options,$mode" "$tag" "$dir"
  fi
  # QEMU exports a read-only share read-only: nothing to probe, nobody to own it.
  [ "$mode" = rw ] || continue
  # A host file system without user extended attributes refuses every file the guest creates (up
  # probes for it and exports such a share with mapped-file; this catches what the probe missed).
  probe="$dir/.m5dev-share-probe.$$"
  if err=$( { set -C; : > "$probe"; } 2>&1 ); then rm -f "$probe"; else
    case $err in *"not supported"*) echo "the host directory behind $dir cannot keep extended attributes (user.*), which the share needs" >&2; exit 5;; esac
  fi
  owner=$(stat -c %u "$dir")
  [ "$owner" = "$user_uid" ] || echo "$owner $dir"
done
