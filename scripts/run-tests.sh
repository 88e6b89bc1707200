#!/usr/bin/env bash
# `make test`: the tiers, cheapest first (a unit failure stops the run before any image is built or
# guest booted). The arm64 fixture image (an emulated mmdebstrap: about 20 minutes on one core of a
# cold machine, cached by content afterwards) is built in the background meanwhile, while the tiers
# that need no guest run: unit, integration (which builds the toolchain image) and the kernel build
# test (which builds the test kernel). The guests' tiers wait for it.
set -euo pipefail
cd "$(dirname "$0")/.."
fx_out="$(mktemp)"
fx_log="$(mktemp)"
start=$SECONDS
bash scripts/build-test-image.sh >"$fx_out" 2>"$fx_log" &
fx=$!
trap 'kill "$fx" 2>/dev/null || true; rm -f "$fx_out" "$fx_log"' EXIT
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
M5DEV_FIXTURE_DIR="$(cat "$fx_out")" npx vitest run test/e2e --exclude test/e2e/kernel-build.test.ts
phase "guest tier done"
