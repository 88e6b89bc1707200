#!/usr/bin/env bash
# The toolchain image on a linux/arm64 engine (Apple-silicon Docker Desktop, arm64 CI), checked here
# under binfmt emulation: an arm64 debian:bookworm-slim made with mmdebstrap, the image built from
# docker/ for linux/arm64, then in it: qemu-system-aarch64 --version, aarch64-linux-gnu-gcc --version,
# and a build of module/ with the image's native gcc against Debian's arm64 kernel headers.
# Slow (everything runs under qemu-user): `make test-arm64-image`; results go to docs/arm64-image.md.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
base="m5dev-test/debian-arm64:bookworm-slim"
tag="m5dev-test/toolchain-arm64:check"
log() { echo "arm64-image-check: $*" >&2; }
t0=$(date +%s)

[[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]] || update-binfmts --enable qemu-aarch64 >&2 || true
[[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]] || { log "qemu-aarch64 binfmt not registered (apt-get install qemu-user-static binfmt-support)"; exit 3; }

if ! docker image inspect "$base" >/dev/null 2>&1; then
  work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
  log "mmdebstrap arm64 bookworm minbase -> $base"
  mmdebstrap --arch=arm64 --variant=minbase --format=tar --include=ca-certificates \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' bookworm "$work/rootfs.tar" >&2
  docker import --platform linux/arm64 --change 'CMD ["bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' "$work/rootfs.tar" "$base" >/dev/null
fi
t1=$(date +%s)
log "building the toolchain image for linux/arm64 (docker/)"
DOCKER_BUILDKIT=0 docker build -q --platform linux/arm64 --build-arg "BASE_IMAGE=$base" -t "$tag" "$here/docker" >/dev/null
t2=$(date +%s)
# (Docker 20.10's classic builder may label the result with the host's architecture: the binaries decide.)
log "checking the tools and building module/ in it"
docker run --rm -v "$here/module:/src-module:ro" "$tag" sh -ec '
  echo "uname -m: $(uname -m)"
  [ "$(uname -m)" = aarch64 ]
  qemu-system-aarch64 --version | head -1
  aarch64-linux-gnu-gcc --version | head -1
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends linux-headers-arm64 >/dev/null
  kdir=$(ls -d /usr/src/linux-headers-*-arm64 | head -1)
  cp -r /src-module /mod
  make -s -C "$kdir" M=/mod modules
  modinfo /mod/m5.ko | grep -E "^(vermagic|name):"
  aarch64-linux-gnu-gcc -static -O2 -Wall -Wextra -Werror -o /mod/m5-test /mod/test/m5_test.c
  echo "m5-test: $(od -An -tx1 -j18 -N2 /mod/m5-test | tr -d " ") (e_machine b700 = aarch64)"
'
t3=$(date +%s)
echo "arm64 base: $((t1 - t0)) s, image build: $((t2 - t1)) s, checks and module build: $((t3 - t2)) s"
