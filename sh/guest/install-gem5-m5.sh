#!/bin/sh
# In the guest, as root (src/workflows/gem5-m5.ts): gem5's m5 placed as gem5-resources' images have
# it, from a tar on stdin holding usr/local/bin/gem5-bridge, usr/local/lib/libm5.a and
# usr/local/include/gem5/: gem5-bridge setuid root (it maps the m5ops range; /dev/mem without the
# module), /usr/local/bin/m5 a link to it. Each is renamed into place whole.
# Exit codes: 0 installed; 1 the tar that came in is incomplete.
set -eu
t=$(mktemp -d /var/tmp/m5dev-gem5-m5.XXXXXX); trap 'rm -rf "$t"' EXIT
tar -x --no-same-owner -C "$t"
u="$t/usr/local"
if [ ! -f "$u/bin/gem5-bridge" ] || [ ! -f "$u/lib/libm5.a" ] || [ ! -d "$u/include/gem5" ]; then
  echo "the m5 build that came in is incomplete" >&2; exit 1
fi
mkdir -p /usr/local/bin /usr/local/lib /usr/local/include
install -o root -g root -m 4755 "$u/bin/gem5-bridge" /usr/local/bin/.gem5-bridge.m5dev-new
mv -f /usr/local/bin/.gem5-bridge.m5dev-new /usr/local/bin/gem5-bridge
ln -sfn /usr/local/bin/gem5-bridge /usr/local/bin/.m5.m5dev-new
mv -Tf /usr/local/bin/.m5.m5dev-new /usr/local/bin/m5
install -o root -g root -m 0644 "$u/lib/libm5.a" /usr/local/lib/.libm5.a.m5dev-new
mv -f /usr/local/lib/.libm5.a.m5dev-new /usr/local/lib/libm5.a
rm -rf /usr/local/include/.gem5.m5dev-new /usr/local/include/.gem5.m5dev-old
cp -R "$u/include/gem5" /usr/local/include/.gem5.m5dev-new
chown -R root:root /usr/local/include/.gem5.m5dev-new
chmod -R u=rwX,go=rX /usr/local/include/.gem5.m5dev-new
if [ -e /usr/local/include/gem5 ]; then mv /usr/local/include/gem5 /usr/local/include/.gem5.m5dev-old; fi
mv /usr/local/include/.gem5.m5dev-new /usr/local/include/gem5
rm -rf /usr/local/include/.gem5.m5dev-old
