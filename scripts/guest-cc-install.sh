# shellcheck shell=sh
# Runs in the fixture guest (`m5dev exec -- "$(cat scripts/guest-cc-install.sh)"`), with the
# directory scripts/guest-cc-debs.sh made shared at /opt/debs: verifies the .debs, then dpkg -i
# those not installed at that version (gcc, make, libc6-dev and their dependencies).
set -e
cd /opt/debs
sha256sum -c --quiet SHA256SUMS
n=""
for d in *.deb; do
  p=$(dpkg-deb -f "$d" Package); v=$(dpkg-deb -f "$d" Version)
  [ "$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null)" = "$v" ] || n="$n $d"
done
[ -z "$n" ] || sudo dpkg -i $n >/dev/null
gcc --version >/dev/null && make --version >/dev/null
