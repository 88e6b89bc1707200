# The guest lanes of `make test` (scripts/run-tests.sh), also run twice at once by `make
# test-concurrent` (scripts/concurrent-lanes.sh). Sourced; sets lane_a and lane_b.
# shellcheck shell=bash disable=SC2034 # used by the scripts that source it
lane_a=(test/e2e/kernel.test.ts test/e2e/recipe.test.ts test/e2e/faults.test.ts)
lane_b=(test/e2e/guest.test.ts test/e2e/run.test.ts test/e2e/engines.test.ts test/e2e/remote-engine.test.ts)
