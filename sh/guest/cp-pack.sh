#!/bin/sh
# In the guest, as the guest user (src/workflows/copy.ts): SRC packed under its own name, a tar on stdout.
# Exit codes: 0 done; 1 SRC does not exist (the message says so), or tar failed.
set -e
src=$1
[ -e "$src" ] || { echo "no such file or directory: $src" >&2; exit 1; }
cd "$(dirname "$src")"
tar -c -- "$(basename "$src")"
