#!/usr/bin/env bash
# A second Docker engine that cannot see this machine's files, for the any-engine tests: dockerd in
# a container with its own filesystem and network namespace, reachable only at tcp://127.0.0.1:PORT
# (a remote build host, Docker Desktop's VM or a CI dind service, as m5dev meets them).
#   remote-engine.sh start [IMAGE…] -> prints the DOCKER_HOST; copies the given images in (docker save | load)
#   remote-engine.sh stop           -> removes the engine container (its data volume stays, for a warm restart)
#   remote-engine.sh purge          -> also removes the data volume
# This machine's quirks: no --privileged (the bounding set lacks CAP_SYS_RESOURCE), so every other
# capability, unconfined seccomp/apparmor, the cgroup tree bound in and a cgroup parent of its own.
# The inner dockerd never shares the host's network namespace: on exit it would delete docker0.
# Two test runs at once use two engines (M5DEV_REMOTE_NAME and _PORT: test/helpers/engines.ts).
set -euo pipefail
PORT="${M5DEV_REMOTE_PORT:-23751}"
NAME="${M5DEV_REMOTE_NAME:-m5dev-test-remote-engine}"
IMG="m5dev-test/remote-engine:1"
BASE="${M5DEV_BASE_IMAGE:-debian:bookworm-slim}"
HOST="tcp://127.0.0.1:$PORT"
log() { echo "remote-engine: $*" >&2; }
inner() { DOCKER_HOST="$HOST" docker "$@"; }

case "${1:-start}" in
  start)
    shift || true
    # One start at a time on this machine (two test runs at once): the engine image is built once.
    exec 9>/run/lock/m5dev-test-remote-engine.lock
    flock 9
    if ! docker image inspect "$IMG" >/dev/null 2>&1; then
      log "building $IMG (docker.io in $BASE)"
      printf 'FROM %s\nRUN apt-get update && apt-get install -y --no-install-recommends docker.io iptables ca-certificates && rm -rf /var/lib/apt/lists/*\n' "$BASE" \
        | docker build -q -t "$IMG" - >/dev/null
    fi
    if [ "$(docker inspect -f '{{.State.Running}}' "$NAME" 2>/dev/null)" != true ]; then
      docker rm -f "$NAME" >/dev/null 2>&1 || true
      docker run -d --name "$NAME" --cap-add ALL --cap-drop SYS_RESOURCE \
        --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
        --device-cgroup-rule 'a *:* rwm' -v /sys/fs/cgroup:/sys/fs/cgroup \
        -v "$NAME-data:/var/lib/docker-inner" --tmpfs /run -p "127.0.0.1:$PORT:2375" \
        "$IMG" dockerd -H tcp://0.0.0.0:2375 --data-root /var/lib/docker-inner --cgroup-parent "/$NAME" >/dev/null
    fi
    for _ in $(seq 1 60); do inner version >/dev/null 2>&1 && break; sleep 1; done
    inner version >/dev/null || { log "the inner engine did not answer"; docker logs --tail 20 "$NAME" >&2; exit 3; }
    for img in "$BASE" "$@"; do
      # Copied in, never rebuilt there: the same image ID, so the same m5dev toolchain tag.
      if ! inner image inspect "$img" >/dev/null 2>&1; then
        log "copying $img into the engine"
        docker save "$img" | inner load >/dev/null
      fi
    done
    echo "$HOST" ;;
  stop) docker rm -f "$NAME" >/dev/null 2>&1 || true ;;
  purge) docker rm -f "$NAME" >/dev/null 2>&1 || true; docker volume rm "$NAME-data" >/dev/null 2>&1 || true ;;
  *) echo "usage: $0 start [IMAGE…]|stop|purge" >&2; exit 2 ;;
esac
