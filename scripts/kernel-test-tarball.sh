#!/usr/bin/env bash
# The kernel source the tests use in place of kernel.org (unreachable here): the tarball inside
# Debian's linux-source package, downloaded and unpacked into a cache outside the checkout, never
# installed (installing it would pull in and upgrade unrelated host packages).
# Prints two lines: the tarball path and its upstream release.
set -euo pipefail
pkg="${M5DEV_TEST_KERNEL_PKG:-linux-source-6.1}"
cache="${M5DEV_FIXTURE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/m5dev-fixtures}/kernel-source"
log() { echo "kernel-test-tarball: $*" >&2; }

candidate() { apt-cache policy "$pkg" 2>/dev/null | sed -n 's/^ *Candidate: *//p'; }
ver="$(candidate)"
if [[ -z "$ver" || "$ver" == "(none)" ]]; then
  log "refreshing the package lists to find $pkg"
  apt-get update -q >&2 || true
  ver="$(candidate)"
fi
[[ -n "$ver" && "$ver" != "(none)" ]] || { log "no candidate for $pkg"; exit 1; }
# Debian version 6.1.192-2 -> upstream release 6.1.192 (the tree's Makefile says the same).
release="${ver%-*}"
dir="$cache/$pkg-$ver"
tarball="$(ls "$dir"/usr/src/linux-source-*.tar.xz 2>/dev/null | head -1 || true)"
if [[ -z "$tarball" ]]; then
  log "downloading $pkg $ver (not installed: only its tarball is used)"
  mkdir -p "$cache"
  stage="$(mktemp -d "$cache/.stage.XXXXXX")"
  trap 'rm -rf "$stage"' EXIT
  # The lists may be older than the mirror (Debian supersedes linux-source with each stable update):
  # a version the mirror no longer serves means the lists are stale, so refresh them and take today's.
  if ! (cd "$stage" && apt-get download "$pkg=$ver" >&2); then
    log "$pkg $ver is no longer served; refreshing the package lists"
    apt-get update -q >&2 || true
    ver="$(candidate)"; release="${ver%-*}"; dir="$cache/$pkg-$ver"
    (cd "$stage" && apt-get download "$pkg=$ver" >&2)
  fi
  dpkg-deb -x "$stage"/*.deb "$stage/root"
  rm -rf "$dir"
  mv "$stage/root" "$dir"
  tarball="$(ls "$dir"/usr/src/linux-source-*.tar.xz | head -1)"
fi
[[ -f "$tarball" ]] || { log "no tarball in $pkg"; exit 1; }
echo "$tarball"
echo "$release"
