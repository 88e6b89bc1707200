#!/bin/sh
# In the guest (src/ssh/client.ts, GuestSsh.upload): a file from stdin to DEST, written under a
# temporary name and renamed when whole, with MODE.
# Arguments: DEST MODE; the file's bytes on stdin.
# Exit codes: 0 written; others: cat's, chmod's or mv's (DEST is then untouched).
set -e
cat > "$1.part"
chmod "$2" "$1.part"
mv -f "$1.part" "$1"
