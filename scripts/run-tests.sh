#!/usr/bin/env bash
# `make test`: the tiers, cheapest first (a unit failure stops the run before any image is built or
# guest booted), and every slow thing started as soon as what it needs is there:
#   - the arm64 fixture image (an emulated mmdebstrap: about 20 minutes of one core on a cold
#     machine, cached by content afterwards) builds in the background from the start;
#   - build and lint, unit, then the toolchain image;
#   - then the kernel build test (the test kernel, in the shared kernel home) in the background,
#     while the integration tier runs;
#   - guest lane B (guests of the fixture's own kernel, the other engine kinds, the remote engine)
#     once the fixture is there; its tests that need the kernel ask for it and wait for the build's lock;
#   - guest lane A (the module loop on the built kernel, the CI recipe, then the fault tests, which
#     fill only tmpfs homes of their own) once the fixture and the kernel are there.
# Lane B starts about 14 minutes before lane A on a cold machine (the fixture is ready before the
# kernel), so it holds the larger share: balanced by the cold run of docs/benchmarks.md.
# Each phase prints its time since the start and how busy the two cores were (docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/test-lanes.sh
source scripts/test-lanes.sh
# Every e2e file runs somewhere: one added without a lane fails the run here.
for f in test/e2e/*.test.ts; do
  case " test/e2e/kernel-build.test.ts ${lane_a[*]} ${lane_b[*]} " in
    *" $f "*) ;;
    *) echo "make test: $f is in no tier of scripts/run-tests.sh" >&2; exit 1 ;;
  esac
done
fx_out="$(mktemp)"
fx_log="$(mktemp)"
start=$SECONDS
# CPU time of the whole machine (user+nice+system+irq+softirq+steal, and all) from /proc/stat.
cpu() { awk '/^cpu /{ busy=$2+$3+$4+$7+$8+$9; print busy, busy+$5+$6 }' /proc/stat; }
read -r busy0 all0 < <(cpu)
busy_prev=$busy0 all_prev=$all0
phase() {
  local busy all
  read -r busy all < <(cpu)
  echo "make test: $* ($((SECONDS - start)) s; cores $(( (busy - busy0) * 100 / (all - all0 + 1) ))% busy since the start, $(( (busy - busy_prev) * 100 / (all - all_prev + 1) ))% since the line before)" >&2
  busy_prev=$busy all_prev=$all
}
# Its own process group, so that a failed or interrupted run stops all of it (mmdebstrap too).
setsid bash scripts/build-test-image.sh >"$fx_out" 2>"$fx_log" &
fx=$!
groups=("$fx")
tc_home=""
# On any exit: every background group stopped, and waited for (none runs on after make test).
stop_all() {
  local g
  for g in "${groups[@]}"; do kill -- "-$g" 2>/dev/null || true; done
  for g in "${groups[@]}"; do wait "$g" 2>/dev/null || true; done
  rm -rf "$fx_out" "$fx_log" "$tc_home"
}
trap stop_all EXIT
# In the background, in its own process group: vitest on files, its lines marked [name]; the exit
# code is vitest's. Sets $bg to its PID (= its group, which the exit trap stops with all in it).
bg_tier() {
  local name=$1; shift
  setsid bash -c 'name=$1; shift; npx vitest run "$@" 2>&1 | sed -u "s/^/[$name] /"; exit "${PIPESTATUS[0]}"' _ "$name" "$@" &
  bg=$!
  groups+=("$bg")
}
fixture_ready() {
  if ! wait "$fx"; then
    tail -n 40 "$fx_log" >&2
    echo "make test: the fixture image did not build (log above)" >&2
    return 1
  fi
}

# Build and lint while the fixture builds (make's targets: npm ci when the lock changed, tsc, lint).
make -s build lint
phase "built and linted"
npx vitest run test/unit
phase "unit tier done"
# The toolchain image, once, by the CLI as a user gets it: the kernel build needs it, and then runs
# beside the integration tier (whose image tests find this image and build only small ones).
tc_home="$(mktemp -d)"
M5DEV_HOME="$tc_home" node dist/cli/main.js image build 2>&1 | sed -u "s/^/[toolchain] /"
rm -rf "$tc_home"
phase "toolchain image built"
bg_tier kernel-build test/e2e/kernel-build.test.ts; kb=$bg
npx vitest run test/integration
phase "integration tier done"
fixture_ready || exit 1
phase "fixture image ready"
M5DEV_FIXTURE_DIR="$(cat "$fx_out")"
export M5DEV_FIXTURE_DIR
# The guest lanes share no instance or port; the kernel home is shared (its built kernel, read by
# both), and each file cleans up only its own instances.
bg_tier guests-b "${lane_b[@]}"; b=$bg
rc=0
wait "$kb" || rc=$?
phase "kernel build tier done"
if [ "$rc" -ne 0 ]; then
  echo "make test: the kernel build tier failed (its lines are marked [kernel-build]); lane B runs to its end, lane A does not run" >&2
  wait "$b" || echo "make test: guest lane B failed too (its lines are marked [guests-b])" >&2
  exit 1
fi
bg_tier guests-a "${lane_a[@]}"; a=$bg
wait "$a" || rc=1
phase "guest lane A done"
wait "$b" || rc=1
phase "guest lanes done"
[ "$rc" -eq 0 ] || { echo "make test: a guest lane failed (its lines are marked [guests-a] or [guests-b])" >&2; exit 1; }
