#!/usr/bin/env bash
# A Docker registry (Debian's docker-registry 2.8) on 127.0.0.1, for the push/pull-by-digest tests.
#   registry.sh start DIR PORT -> installs docker-registry if needed, serves DIR on 127.0.0.1:PORT, prints HOST:PORT
#   registry.sh stop DIR
# Docker trusts registries on 127.0.0.0/8 over plain HTTP, so no TLS is needed.
set -euo pipefail
log() { echo "registry: $(date +%T.%3N) $*" >&2; }
trap 'log "line $LINENO: a command exited $?"' ERR
dir="$(realpath -m "${2:?usage: registry.sh start|stop DIR [PORT]}")" # absolute: the registry runs from /
case "$1" in
  start)
    port="${3:?usage: registry.sh start DIR PORT}"
    if ! command -v docker-registry >/dev/null; then
      log "installing docker-registry"
      for _ in $(seq 1 60); do apt-get update -q >/dev/null && break; sleep 5; done # the host's own apt may hold the lists' lock
      log "apt-get update done"
      DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends --no-upgrade docker-registry >/dev/null || { rc=$?; log "apt-get install docker-registry exited $rc"; exit "$rc"; }
    fi
    log "starting $(command -v docker-registry) on 127.0.0.1:$port"
    mkdir -p "$dir/data"
    cat > "$dir/config.yml" <<YAML
version: 0.1
log: { level: warn }
storage: { filesystem: { rootdirectory: $dir/data }, delete: { enabled: true } }
http: { addr: 127.0.0.1:$port }
YAML
    (cd / && exec setsid docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 < /dev/null) &
    pid=$!
    echo "$pid" > "$dir/pid"
    # Up when *this* registry answers its API on the port (another listener there is not it).
    answers() { (exec 3<>"/dev/tcp/127.0.0.1/$port" && printf 'GET /v2/ HTTP/1.0\r\n\r\n' >&3 && timeout 2 grep -qi '^docker-distribution-api-version: registry/2' <&3) 2>/dev/null; }
    for _ in $(seq 1 50); do
      if ! kill -0 "$pid" 2>/dev/null; then log "docker-registry exited; its log:"; cat "$dir/registry.log" >&2; exit 1; fi
      if answers; then echo "127.0.0.1:$port"; exit 0; fi
      sleep 0.2
    done
    kill "$pid" 2>/dev/null || true
    log "did not answer on 127.0.0.1:$port in 10 s; its log:"; cat "$dir/registry.log" >&2; exit 1 ;;
  stop)
    [[ -f "$dir/pid" ]] && kill "$(cat "$dir/pid")" 2>/dev/null || true
    rm -f "$dir/pid" ;;
  *) echo "usage: registry.sh start|stop DIR [PORT]" >&2; exit 2 ;;
esac
