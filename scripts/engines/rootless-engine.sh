#!/usr/bin/env bash
# Rootless Docker of a normal user (default m5dev-rootless), as on a laptop without sudo, for the
# any-engine tests. Run as root; the engine runs as the user.
#   rootless-engine.sh start [IMAGE…] -> prints "USER DOCKER_HOST"; images are copied in (docker save | load)
#   rootless-engine.sh stop
# This machine's quirks: /dev/net/tun is 0600 (slirp4netns needs it 0666); cgroup v1, so rootless
# dockerd runs without cgroup limits (a warning; containers still run); subuids come from useradd.
set -euo pipefail
U="${M5DEV_ROOTLESS_USER:-m5dev-rootless}"
BASE="${M5DEV_BASE_IMAGE:-debian:bookworm-slim}"
log() { echo "rootless-engine: $*" >&2; }
case "${1:-start}" in
  start)
    shift || true
    # One start at a time on this machine (two test runs at once): installing, the user and the daemon's start are one step.
    exec 9>/run/lock/m5dev-test-rootless-engine.lock
    flock 9
    for p in rootlesskit uidmap slirp4netns; do
      dpkg -s "$p" >/dev/null 2>&1 && continue
      log "installing rootlesskit uidmap slirp4netns"
      for _ in $(seq 1 60); do apt-get update -q >/dev/null 2>&1 && break; sleep 5; done # the host's own apt may hold the lists' lock
      DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends rootlesskit uidmap slirp4netns >/dev/null
      break
    done
    PATH="/usr/share/docker.io/contrib:$PATH" command -v dockerd-rootless.sh >/dev/null \
      || { log "dockerd-rootless.sh is missing (Debian's docker.io ships it in /usr/share/docker.io/contrib; Docker CE in docker-ce-rootless-extras)"; exit 3; }
    id "$U" >/dev/null 2>&1 || useradd -m -s /bin/bash "$U"
    chmod 666 /dev/net/tun
    uid=$(id -u "$U"); run="/run/user/$uid"; mkdir -p "$run"; chown "$U" "$run"; chmod 700 "$run"
    host="unix://$run/docker.sock"
    as_user() { su - "$U" -c "export XDG_RUNTIME_DIR=$run DOCKER_HOST=$host; $1"; }
    if ! as_user 'docker version' >/dev/null 2>&1; then
      as_user 'export PATH=/usr/share/docker.io/contrib:/usr/sbin:$PATH; setsid dockerd-rootless.sh > ~/dockerd-rootless.log 2>&1 < /dev/null 9>&- & echo $! > ~/dockerd-rootless.pid'
      for _ in $(seq 1 60); do as_user 'docker version' >/dev/null 2>&1 && break; sleep 1; done
    fi
    as_user 'docker version' >/dev/null 2>&1 || { log "rootless dockerd did not answer; see ~$U/dockerd-rootless.log"; exit 3; }
    for img in "$BASE" "$@"; do
      if ! as_user "docker image inspect $img" >/dev/null 2>&1; then
        log "copying $img into $U's engine"
        docker save "$img" | as_user 'docker load' >/dev/null
      fi
    done
    echo "$U $host" ;;
  stop) su - "$U" -c 'test -f ~/dockerd-rootless.pid && kill "$(cat ~/dockerd-rootless.pid)"; rm -f ~/dockerd-rootless.pid' 2>/dev/null || true ;;
  *) echo "usage: $0 start [IMAGE…]|stop" >&2; exit 2 ;;
esac
