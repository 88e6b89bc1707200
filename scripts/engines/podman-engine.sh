#!/usr/bin/env bash
# Podman's Docker-compatible API on a unix socket (rootful), for the any-engine tests.
#   podman-engine.sh start [IMAGE…] -> installs podman if needed, starts `podman system service`,
#                                      copies the images in from the Docker engine, prints the DOCKER_HOST
#   podman-engine.sh stop
# This machine's quirk: the capability bounding set lacks CAP_SYS_RESOURCE, so podman's default
# rlimits (raised nofile/nproc for root) fail every container with "error setting rlimit";
# containers.conf gets defaults that stay within the hard limits.
set -euo pipefail
SOCK="${M5DEV_PODMAN_SOCK:-/run/m5dev-test-podman.sock}"
PID=/run/m5dev-test-podman.pid
BASE="${M5DEV_BASE_IMAGE:-debian:bookworm-slim}"
# The tests' throwaway registries (scripts/engines/registry.sh) speak plain HTTP on loopback; Docker
# allows that for 127.0.0.0/8, Podman only for registries its registries.conf marks insecure: the
# ports of every registry slot (test/helpers/engines.ts REGISTRY_PORTS), so that a second test run
# beside this one never changes the file (which would restart the service under the first).
mapfile -t REGISTRIES < <({ seq -f '127.0.0.1:%g' 25124 25131; [ -z "${M5DEV_TEST_REGISTRY:-}" ] || echo "$M5DEV_TEST_REGISTRY"; } | sort -u)
log() { echo "podman-engine: $*" >&2; }
case "${1:-start}" in
  start)
    shift || true
    # One start at a time on this machine (two test runs at once): the checks below and the service's start are one step.
    exec 9>/run/lock/m5dev-test-podman-engine.lock
    flock 9
    if ! command -v podman >/dev/null; then
      log "installing podman"
      for _ in $(seq 1 60); do apt-get update -q >/dev/null 2>&1 && break; sleep 5; done # the host's own apt may hold the lists' lock
      DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends podman uidmap slirp4netns fuse-overlayfs >/dev/null
    fi
    mkdir -p /etc/containers
    grep -qs default_ulimits /etc/containers/containers.conf \
      || printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=4096:4096"]\n' "$(ulimit -Hn)" "$(ulimit -Hn)" >> /etc/containers/containers.conf
    mkdir -p /etc/containers/registries.conf.d
    conf=/etc/containers/registries.conf.d/m5dev-test-registry.conf
    want="$(printf '[[registry]]\nlocation = "%s"\ninsecure = true\n' "${REGISTRIES[@]}")"
    if [ "$(cat "$conf" 2>/dev/null)" != "$want" ]; then
      printf '%s\n' "$want" > "$conf"
      [ -f "$PID" ] && kill "$(cat "$PID")" 2>/dev/null && sleep 1 # the service reads it at start
    fi
    # A service whose working directory is gone (started from a checkout since deleted, such as an
    # earlier CI clone) answers `version` but every container fails: conmon cannot get its working
    # directory ("write child: broken pipe"). Such a service is replaced; a new one starts from /.
    if [ -f "$PID" ] && readlink "/proc/$(cat "$PID")/cwd" 2>/dev/null | grep -q ' (deleted)$'; then
      log "restarting the service: its working directory was deleted"
      kill "$(cat "$PID")" 2>/dev/null || true
      sleep 1
    fi
    # Likewise a service started with a TMPDIR that is gone (a test run's scratch directory, removed
    # when that run ended): podman stages image copies there. The service starts without TMPDIR.
    if [ -f "$PID" ]; then
      svc_tmp="$( { tr '\0' '\n' < "/proc/$(cat "$PID")/environ"; } 2>/dev/null | sed -n 's/^TMPDIR=//p' || true)"
      if [ -n "$svc_tmp" ] && [ ! -d "$svc_tmp" ]; then
        log "restarting the service: its TMPDIR $svc_tmp was removed"
        kill "$(cat "$PID")" 2>/dev/null || true
        sleep 1
      fi
    fi
    if ! DOCKER_HOST="unix://$SOCK" docker version >/dev/null 2>&1; then
      rm -f "$SOCK"
      (cd / && exec env -u TMPDIR setsid podman system service --time=0 "unix://$SOCK" >/var/log/m5dev-test-podman.log 2>&1 < /dev/null 9>&-) & # the lock is this script's, not the service's
      echo $! > "$PID"
      for _ in $(seq 1 60); do DOCKER_HOST="unix://$SOCK" docker version >/dev/null 2>&1 && break; sleep 0.5; done
    fi
    DOCKER_HOST="unix://$SOCK" docker version >/dev/null || { log "podman did not answer; see /var/log/m5dev-test-podman.log"; exit 3; }
    for img in "$BASE" "$@"; do
      if ! podman image exists "$img"; then
        log "copying $img into podman"
        docker save "$img" | podman load >/dev/null
      fi
    done
    echo "unix://$SOCK" ;;
  stop) [ -f "$PID" ] && kill "$(cat "$PID")" 2>/dev/null; rm -f "$PID" "$SOCK" ;;
  *) echo "usage: $0 start [IMAGE…]|stop" >&2; exit 2 ;;
esac
