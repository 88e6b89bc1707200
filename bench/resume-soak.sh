#!/usr/bin/env bash
# Soak test of suspend → resume on the fixture guest (make soak; SOAK_CYCLES, SOAK_UP_ARGS).
# The guest keeps rewriting 32 MiB of tmpfs while it is saved; each cycle checks that the resumed
# guest holds the marker it wrote before the suspend and still answers 3 s later. A failed cycle is
# reported with the console lines of its oops and the guest is rebooted (`up --no-resume`).
# Uses a throwaway M5DEV_HOME; talks only to loopback.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cycles="${SOAK_CYCLES:-30}"
read -r -a up_args <<<"${SOAK_UP_ARGS:-}"
fixture="${M5DEV_FIXTURE_DIR:-$(bash "$root/scripts/build-test-image.sh")}"
image="$(cd "$fixture" && ls ./*.img | head -1)"; image="${image#./}"
export M5DEV_HOME; M5DEV_HOME="$(mktemp -d /tmp/m5dev-soak-XXXXXX)"
m5dev() { node "$root/dist/cli/main.js" "$@"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

http_port="$(free_port)"
python3 -m http.server "$http_port" --bind 127.0.0.1 --directory "$fixture" >/dev/null 2>&1 &
server=$!
cleanup() { m5dev down >/dev/null 2>&1; kill "$server" 2>/dev/null; rm -rf "$M5DEV_HOME"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
sleep 1

churn() { m5dev exec -- "nohup setsid sh -c 'while :; do head -c 32M /dev/urandom > /dev/shm/churn; done' >/dev/null 2>&1 </dev/null &"; }
fresh() { m5dev down >/dev/null 2>&1; m5dev up --no-resume --boot-timeout 600 "${up_args[@]}" >/dev/null 2>&1 && churn; }

log="$M5DEV_HOME/up.log"
m5dev up --image-url "http://127.0.0.1:$http_port/$image" --disk overlay --ssh-port "$(free_port)" --boot-timeout 600 "${up_args[@]}" >"$log" 2>&1 \
  || { cat "$log"; exit 1; }
m5dev exec -- sudo systemctl is-system-running --wait >/dev/null 2>&1
churn
ok=0 failed=0
for i in $(seq 1 "$cycles"); do
  m5dev exec -- "echo $i > /dev/shm/marker" >/dev/null 2>&1
  if ! m5dev suspend >"$log" 2>&1; then
    failed=$((failed + 1)); echo "cycle $i: suspend failed"; tail -3 "$log"; fresh; continue
  fi
  t0=$(date +%s%N)
  if m5dev up >"$log" 2>&1 && [[ "$(m5dev exec -- 'cat /dev/shm/marker; sleep 3' 2>/dev/null)" == "$i" ]] && m5dev exec -- true >/dev/null 2>&1; then
    ok=$((ok + 1))
    echo "cycle $i: ok (up $(( ($(date +%s%N) - t0) / 1000000 )) ms incl. the 3 s check)"
  else
    failed=$((failed + 1))
    echo "cycle $i: FAILED"; grep -m4 -E 'Oops|panic|pc :|error:' "$log"
    fresh
  fi
done
echo "resume soak: $ok ok, $failed failed of $cycles cycles (${SOAK_UP_ARGS:-default mode})"
[[ $failed -eq 0 ]]
