#!/bin/sh
# In the guest, as the guest user (src/workflows/copy.ts): DEST NAME ENTRY, a tar on stdin whose one
# top entry is ENTRY (NAME renamed). Unpacks it beside the target, then moves it into place (a
# directory into an existing one merges); prints the target on stderr.
# Exit codes: 0 done; 1 a file cannot replace a directory, or tar failed.
set -e
dest=$1; name=$2; entry=$3
if [ -d "$dest" ]; then target="$dest/$name"; else target="$dest"; fi
parent=$(dirname "$target"); mkdir -p "$parent"
t=$(mktemp -d "$parent/.m5dev-cp.XXXXXX"); trap 'rm -rf "$t"' EXIT
tar -x --no-same-owner -C "$t"
if [ -d "$target" ] && [ ! -d "$t/$entry" ]; then echo "cannot overwrite directory $target with a file" >&2; exit 1; fi
if [ -d "$target" ]; then cp -a "$t/$entry/." "$target/"; else rm -f "$target"; mv "$t/$entry" "$target"; fi
echo "$target" >&2
