#!/bin/sh
# In a tool container, or beside QEMU in the VM container (src/workflows/module.ts): build an
# out-of-tree module with kbuild and, when it has one, its static arm64 test program. The test
# program compiles while kbuild works (two cores; the make is mostly one). Output: both, merged.
# Arguments: DIR TEST_SOURCE TEST_BINARY MAKE ARGS... (DIR is the step's directory, the command
#   runs there; TEST_SOURCE '' when the module has no test program; paths relative to DIR or absolute).
# Exit codes: make's when it fails; else 1 when the test program did not compile; 0 both built.
cd "$1" || exit 1
test_source=$2; test_binary=$3
shift 3
exec 2>&1
if [ -z "$test_source" ]; then exec "$@"; fi
"$@" &
make_pid=$!
# Run as `sh -e`: a failing compile must not end the script while make still runs.
test_rc=0
aarch64-linux-gnu-gcc -static -O2 -Wall -Wextra -Werror -o "$test_binary" "$test_source" || test_rc=$?
wait "$make_pid" || exit $?
[ "$test_rc" -eq 0 ] || exit 1
