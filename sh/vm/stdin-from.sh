#!/bin/sh
# In the VM container (src/ssh/client.ts, a guest command fed from a file staged there): run the
# command with FILE on its stdin, then remove FILE, whatever the command did.
# Arguments: FILE CMD ARGS...
# Exit codes: the command's.
file=$1
shift
# Run as `sh -e`: a failing command must not skip the removal.
rc=0
"$@" < "$file" || rc=$?
rm -f "$file"
exit "$rc"
