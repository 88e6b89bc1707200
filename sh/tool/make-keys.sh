#!/bin/sh
# In the toolchain container (src/vm/prepare.ts): a dedicated ed25519 user key and the guest's
# ed25519 host key, written anew (private ones 0600) into the instance dir.
# Arguments: INSTANCE_DIR NAME (the keys' comments are m5dev-NAME and m5dev-NAME-host).
# Exit codes: 0 made; others: ssh-keygen's.
set -e
d=$1; name=$2
rm -f "$d/id_ed25519" "$d/id_ed25519.pub" "$d/ssh_host_ed25519_key" "$d/ssh_host_ed25519_key.pub"
ssh-keygen -q -t ed25519 -N '' -C "m5dev-$name" -f "$d/id_ed25519"
ssh-keygen -q -t ed25519 -N '' -C "m5dev-$name-host" -f "$d/ssh_host_ed25519_key"
chmod 600 "$d/id_ed25519" "$d/ssh_host_ed25519_key"
