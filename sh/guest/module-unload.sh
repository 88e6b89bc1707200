#!/bin/sh
# Guest, root: unload modules and check that the kernel did not complain.
# Arguments: the module names (as /proc/modules spells them).
# Exit codes: 0 unloaded, no warning in the kernel log's last 20 lines; 1 a module stayed loaded or
#   the kernel logged an Oops, BUG, WARNING or call trace (printed); else rmmod failed.
set -e
for n in "$@"; do rmmod "$n"; done
for n in "$@"; do if grep -q "^$n " /proc/modules; then echo "$n still loaded"; exit 1; fi; done
if dmesg | tail -n 20 | grep -Ei 'Oops|BUG:|WARNING:|Call trace'; then exit 1; fi
