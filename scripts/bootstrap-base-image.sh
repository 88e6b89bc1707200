#!/usr/bin/env bash
# Build the toolchain image's base (debian:bookworm-slim by default) on a host with no
# container registry: mmdebstrap a minimal bookworm rootfs and `docker import` it under the tag.
# Idempotent: does nothing when the tag already exists.
set -euo pipefail

tag="${1:-${M5DEV_BASE_IMAGE:-debian:bookworm-slim}}"
suite="${M5DEV_BASE_SUITE:-bookworm}"

if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "bootstrap-base-image: $tag already present" >&2
  exit 0
fi
if ! command -v mmdebstrap >/dev/null 2>&1; then
  echo "bootstrap-base-image: mmdebstrap is missing (apt-get install mmdebstrap)" >&2
  exit 3
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "bootstrap-base-image: mmdebstrap $suite -> $tag" >&2
# minbase + apt sources as the host has them, so `apt-get` works in the image's build.
mmdebstrap --variant=minbase --format=tar \
  --include=ca-certificates \
  --aptopt='Acquire::Retries "3"' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
  "$suite" "$work/rootfs.tar" >&2
docker import \
  --change 'CMD ["bash"]' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  "$work/rootfs.tar" "$tag" >/dev/null
echo "bootstrap-base-image: imported $tag" >&2
