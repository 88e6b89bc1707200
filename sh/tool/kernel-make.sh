#!/bin/sh
# In a tool container (src/workflows/kernel-build.ts): a kbuild make (configure or compile) into
# its output directory, made first when it is not there yet.
# Arguments: BUILD_DIR MAKE ARGS...
# Exit codes: make's.
set -e
mkdir -p "$1"
shift
exec "$@"
