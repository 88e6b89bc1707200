#!/usr/bin/env bash
# `make test-concurrent`: two runs of guest lane B (the guests, the other engine kinds, the remote
# engine, m5dev run) started at once on this machine, as two CI jobs or a CI job beside a developer's
# `make test` would be. Both must pass: no fixed port, container name, user prefix or engine state
# is shared between them (test/helpers/slots.ts, ~/m5dev-prefix-PID, per-run instance names).
# Needs the fixture and the test kernel (built first, once, as `make test` does); records both
# runs' results in docs/data/concurrent-lanes-COMMIT.json. Exit 0 only when both passed.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/test-lanes.sh
source scripts/test-lanes.sh
commit="$(git rev-parse --short HEAD)" # the code under test: the one the runs start with
M5DEV_FIXTURE_DIR="$(bash scripts/build-test-image.sh)"
export M5DEV_FIXTURE_DIR
echo "concurrent lanes: the test kernel (cached after the first build)" >&2
npx vitest run test/e2e/kernel-build.test.ts >/dev/null
start=$SECONDS
pids=()
for n in 1 2; do
  setsid bash -c 'n=$1; shift; npx vitest run "$@" 2>&1 | sed -u "s/^/[run$n] /"; exit "${PIPESTATUS[0]}"' _ "$n" "${lane_b[@]}" &
  pids+=("$!")
done
trap 'for p in "${pids[@]}"; do kill -- "-$p" 2>/dev/null || true; done' EXIT
rc=()
secs=()
for p in "${pids[@]}"; do
  if wait "$p"; then rc+=(0); else rc+=($?); fi
  secs+=($((SECONDS - start)))
done
trap - EXIT
mkdir -p docs/data
node -e 'const [commit, files, a, sa, b, sb] = process.argv.slice(1); process.stdout.write(JSON.stringify({ commit, date: new Date().toISOString(), files: files.split(" "), runs: [{ exit: +a, seconds: +sa }, { exit: +b, seconds: +sb }] }, null, 1) + "\n")' \
  "$commit" "${lane_b[*]}" "${rc[0]}" "${secs[0]}" "${rc[1]}" "${secs[1]}" > "docs/data/concurrent-lanes-$commit.json"
echo "concurrent lanes: run 1 exit ${rc[0]} (${secs[0]} s), run 2 exit ${rc[1]} (${secs[1]} s); docs/data/concurrent-lanes-$commit.json" >&2
[ "${rc[0]}" -eq 0 ] && [ "${rc[1]}" -eq 0 ]
