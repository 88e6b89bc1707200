#!/usr/bin/env bash
# `make test`: the tiers, cheapest first (a unit failure stops the run before any image is built or
# guest booted). The arm64 fixture image (an emulated mmdebstrap: about 20 minutes on one core of a
# cold machine, cached by content afterwards) is built in the background meanwhile, while the tiers
# that need no guest run: unit, integration (which builds the toolchain image) and the kernel build
# test (which builds the test kernel). The guests' tiers wait for it.
set -euo pipefail
cd "$(dirname "$0")/.."
# The guest tier's lanes (below).
# Balanced by the cold run of 2026-11-29 (docs/benchmarks.md): kernel 18 + recipe 7 + remote engine
# 11 min against guest 15 + engines 15 min, with both lanes running.
lane_a=(test/e2e/kernel.test.ts test/e2e/recipe.test.ts test/e2e/remote-engine.test.ts)
lane_b=(test/e2e/guest.test.ts test/e2e/engines.test.ts)
# Every e2e file runs somewhere: one added without a lane fails the run here.
for f in test/e2e/*.test.ts; do
  case " test/e2e/kernel-build.test.ts test/e2e/faults.test.ts ${lane_a[*]} ${lane_b[*]} " in
    *" $f "*) ;;
    *) echo "make test: $f is in no tier of scripts/run-tests.sh" >&2; exit 1 ;;
  esac
done
fx_out="$(mktemp)"
fx_log="$(mktemp)"
start=$SECONDS
# Its own process group, so that a failed or interrupted run stops all of it (mmdebstrap too).
setsid bash scripts/build-test-image.sh >"$fx_out" 2>"$fx_log" &
fx=$!
trap 'kill -- "-$fx" 2>/dev/null || true; rm -f "$fx_out" "$fx_log"' EXIT
phase() { echo "make test: $* ($((SECONDS - start)) s)" >&2; }

npx vitest run test/unit
phase "unit tier done"
npx vitest run test/integration
phase "integration tier done"
npx vitest run test/e2e/kernel-build.test.ts
phase "kernel build tier done"
if ! wait "$fx"; then
  tail -n 40 "$fx_log" >&2
  echo "make test: the fixture image did not build (log above)" >&2
  exit 1
fi
phase "fixture image ready"
export M5DEV_FIXTURE_DIR="$(cat "$fx_out")"

# The guest tier in two lanes at once (a TCG guest keeps about one core busy, and much of a test is
# waiting on SSH, image copies and boots): lane A holds the local engine's kernel instance, the CI
# recipe and the remote engine, lane B the fixture guest and the other engine kinds. They share no instance or port; the
# kernel home is shared (its built kernel, read by both), and each file cleans up only its own instances.
# The fault tests fill the disk on purpose, so they run alone, last.
lane() {
  local name=$1; shift
  npx vitest run "$@" 2>&1 | sed -u "s/^/[$name] /"
  return "${PIPESTATUS[0]}"
}
lane guests-a "${lane_a[@]}" & a=$!
lane guests-b "${lane_b[@]}" & b=$!
rc=0
wait "$a" || rc=1
wait "$b" || rc=1
phase "guest lanes done"
[ "$rc" -eq 0 ] || { echo "make test: a guest lane failed (its lines are marked [guests-a] or [guests-b])" >&2; exit 1; }
npx vitest run test/e2e/faults.test.ts
phase "fault tier done"
