#!/bin/sh
# In a tool container (src/docker/containers.ts, runTool): run a command, then give what it made in
# the client's shared storage to the client's user (the container runs as root).
# Arguments: UID:GID COUNT PATH1..PATHCOUNT CMD ARGS...
# Exit codes: the command's when it fails (nothing is chowned then); else chown's.
set -e
owner=$1; count=$2
shift 2
(shift "$count"; exec "$@")
i=0
while [ "$i" -lt "$count" ]; do
  chown -R "$owner" "$1"
  shift
  i=$((i + 1))
done
