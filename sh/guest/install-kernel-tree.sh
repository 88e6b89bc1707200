#!/bin/sh
# In the guest, as root (src/kernel/guest-tree.ts): RELEASE on $1 and the tree as a gzipped tar on
# stdin, unpacked beside its place, then swapped in; the previous /lib/modules/RELEASE (with modules
# the user installed against the previous build) and headers are removed only once the new ones are in place.
# Exit codes: 0 done; 1 the tree that came in is incomplete.
set -eu
rel=$1
t=$(mktemp -d /var/tmp/m5dev-kernel.XXXXXX); trap 'rm -rf "$t"' EXIT
tar -xz --no-same-owner -C "$t"
[ -f "$t/lib/modules/$rel/.m5dev-tree" ] || { echo "the kernel tree for $rel is incomplete" >&2; exit 1; }
mkdir -p /usr/src /lib/modules
for d in "/usr/src/linux-headers-$rel" "/lib/modules/$rel"; do
  if [ -e "$d" ]; then rm -rf "$d.m5dev-old"; mv "$d" "$d.m5dev-old"; fi
done
mv "$t/usr/src/linux-headers-$rel" /usr/src/
mv "$t/lib/modules/$rel" /lib/modules/
sync
rm -rf "/usr/src/linux-headers-$rel.m5dev-old" "/lib/modules/$rel.m5dev-old"
