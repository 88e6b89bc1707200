#!/usr/bin/env bash
# Host prerequisites for m5dev and its tests on Debian/Ubuntu (run as root; idempotent, fast when done):
# a running Docker engine (Debian's docker.io; dockerd started when `docker info` fails), the locally
# bootstrapped base image when no registry can serve it, the tools the test fixture is built with, and
# python3 (the unit tests run the QMP client that m5dev runs inside the VM container) and shellcheck
# (`npm run lint` checks every shell script). With --tests, also what the test suite's engines and
# registry need (Debian's docker-registry, Podman, rootless Docker's helpers): installed here, before
# any test runs, never by a test on the fly (a test's apt could meet the host's apt, or another tier's).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

log() { echo "setup-host: $*" >&2; }
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

pkgs=(mmdebstrap qemu-user-static binfmt-support arch-test fdisk dosfstools mtools qemu-utils e2fsprogs openssh-client make ca-certificates python3 shellcheck)
if [[ ${1:-} == --tests ]]; then
  # scripts/engines/: registry.sh, podman-engine.sh, rootless-engine.sh (after ../shared/harness/);
  # the unit tier compiles the m5ops plugin's pure C policy with the host compiler;
  # xmllint checks the JUnit XML of module test --junit.
  pkgs+=(docker-registry podman uidmap slirp4netns fuse-overlayfs rootlesskit gcc libc6-dev libxml2-utils)
fi
# A Docker that is already there (Docker CE, a static client and engine, a reachable DOCKER_HOST)
# is used as it is: Debian's docker.io is installed only when there is neither an engine nor a dockerd.
if ! docker info >/dev/null 2>&1 && ! command -v dockerd >/dev/null 2>&1; then
  pkgs=(docker.io "${pkgs[@]}")
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  # The host's own apt (a daily update) may hold the lock: wait for it rather than fail.
  for _ in $(seq 1 60); do as_root apt-get update -q >&2 && break; sleep 5; done
  # --no-upgrade: a package that is already installed is left at its version.
  as_root apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends --no-upgrade "${missing[@]}" >&2
fi

if ! docker info >/dev/null 2>&1; then
  log "starting dockerd"
  as_root sh -c 'nohup dockerd >/var/log/m5dev-dockerd.log 2>&1 &'
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { log "dockerd did not come up; see /var/log/m5dev-dockerd.log"; tail -20 /var/log/m5dev-dockerd.log >&2 || true; exit 3; }
fi

base="${M5DEV_BASE_IMAGE:-debian:bookworm-slim}"
if ! docker image inspect "$base" >/dev/null 2>&1; then
  docker pull "$base" >/dev/null 2>&1 || bash "$(dirname "$0")/bootstrap-base-image.sh" "$base"
fi
log "ready: $(docker version --format 'engine {{.Server.Version}}') with $base"
