#!/bin/sh
# In the toolchain container (src/vm/prepare.ts): the cloud-init seed (cloud-localds, qcow2), made
# under a temporary name and renamed when whole (0600: it holds the guest's host key).
# Arguments: SEED USER_DATA META_DATA.
# Exit codes: 0 made; others: cloud-localds's.
set -e
seed=$1
cloud-localds --disk-format qcow2 "$seed.tmp" "$2" "$3"
chmod 600 "$seed.tmp"
mv "$seed.tmp" "$seed"
