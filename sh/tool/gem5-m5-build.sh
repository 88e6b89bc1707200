#!/bin/sh
# In the gem5 m5 builder image (src/workflows/gem5-m5.ts): gem5's util/m5 for arm64 with SCons, as
# gem5-resources' images build it (only the m5 target: no googletest, no tests).
# Arguments: TREE JOBS CROSS_COMPILE. Output: TREE/util/m5/build/arm64/out (m5, libm5.a).
# Exit codes: scons's.
set -eu
cd "$1/util/m5"
exec scons -j "$2" build/arm64/out/m5 "arm64.CROSS_COMPILE=$3"
