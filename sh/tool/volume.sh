#!/bin/sh
# On an engine's data volume (src/engine/storage.ts, VolumeStorage): one small operation per run,
# in a helper container with the volume at ROOT (and `tail` in the VM container, where it is
# /instance). Names are relative to ROOT; every argument is a word of the argv, never shell text.
# Arguments: ROOT OP ARGS...
#   stat NAME...            "NAME|SIZE|MTIME|BLOCKS|BLOCKSIZE" for each that exists
#   tail MAX NAME           the last MAX bytes of NAME (nothing when it does not exist)
#   verify-move TMP NAME SHA256
#                           TMP becomes NAME only when its SHA-256 is SHA256; else TMP is removed
#   stage NAME              NAME as a new empty directory (anything there before is removed)
#   replace TMP NAME        TMP takes the place of NAME
#   list NAME               "SIZE|PATH" of each regular file under the directory NAME
#   sha256 NAME             NAME's SHA-256 (hex)
#   rm-tree NAME / rm NAME...
#   sync-rename FROM TO...  each FROM synced to disk, then renamed TO (pairs, in order)
#   df                      POSIX df of ROOT (one line)
# Exit codes: 0 done; 2 an unknown OP; 3 verify-move: the digest did not match; others: the tools'.
set -e
cd "$1"
op=$2
shift 2
case "$op" in
  stat)
    for f in "$@"; do
      if [ -e "$f" ]; then stat -c '%n|%s|%.9Y|%b|%B' "$f"; fi
    done
    ;;
  tail)
    if [ -f "$2" ]; then tail -c "$1" "$2"; fi
    ;;
  verify-move)
    if [ "$(sha256sum < "$1" | cut -d' ' -f1)" = "$3" ]; then
      mv "$1" "$2"
    else
      rm -f "$1"
      echo 'digest mismatch after the copy' >&2
      exit 3
    fi
    ;;
  stage)
    rm -rf "$1"
    mkdir -p "$1"
    ;;
  replace)
    rm -rf "$2"
    mv "$1" "$2"
    ;;
  list)
    if [ -d "$1" ]; then cd "$1" && find . -type f -printf '%s|%P\n'; fi
    ;;
  sha256)
    sha256sum < "$1" | cut -d' ' -f1
    ;;
  rm-tree)
    rm -rf "$1"
    ;;
  rm)
    rm -f "$@"
    ;;
  sync-rename)
    while [ $# -ge 2 ]; do
      sync "$1"
      mv "$1" "$2"
      shift 2
    done
    ;;
  df)
    df -Pk . | tail -n 1
    ;;
  *)
    echo "volume: unknown operation $op" >&2
    exit 2
    ;;
esac
