#!/bin/sh
# On the base image, with the network (src/workflows/image-lock.ts, `m5dev image lock`): which
# versions apt would install for the toolchain's packages, against the snapshot archive when one is
# named and answers, else against the image's configured mirror.
# Arguments: SNAPSHOT SOURCES PACKAGES. SNAPSHOT: the archive's URL, '' for none. SOURCES: a file
#   with the toolchain install script's own snapshot block (it writes the apt sources from
#   $snapshot), read here so both agree. PACKAGES: the m5dev-toolchain-packages script (ARCH → names).
# Output: "ARCH arch", "SNAPSHOT answers|unreachable" when one is named, then apt's "Inst" lines.
# Exit codes: 0 resolved; others: apt's (an unknown package, an unreachable mirror).
set -e
snapshot=$1; sources=$2; packages=$3
arch="$(dpkg --print-architecture)"
echo "ARCH $arch"
if [ -n "$snapshot" ]; then
  backup="$(mktemp -d)"
  cp -a /etc/apt/sources.list* "$backup/" 2>/dev/null || true
  # shellcheck source=/dev/null
  . "$sources"
  # Resolved against the snapshot only when it answers; else the mirror, and the lock drops the line.
  if apt-get update -qq -o Acquire::Retries=1 -o APT::Update::Error-Mode=any >/dev/null 2>&1; then
    echo "SNAPSHOT answers"
  else
    echo "SNAPSHOT unreachable"
    rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*
    [ ! -e "$backup/sources.list" ] || cp -a "$backup/sources.list" /etc/apt/
    [ ! -d "$backup/sources.list.d" ] || cp -a "$backup/sources.list.d/." /etc/apt/sources.list.d/
  fi
fi
apt-get update -qq >/dev/null
# The package names are words on purpose.
# shellcheck disable=SC2046
apt-get install -s -y --no-install-recommends $(sh "$packages" "$arch") | grep "^Inst"
