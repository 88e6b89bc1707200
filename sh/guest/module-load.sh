#!/bin/sh
# Guest, root (one sudo): `m5dev module load`'s side. Shell builtins where a process would do:
# each process costs a TCG guest about 15 ms.
# Arguments: RELEASE [PARAM...]   the release the modules were built for; insmod's name=value
#   parameters (validated by the CLI: no spaces, no shell characters), given to each module.
# Stdin: a header line of `file.ko:module_name` pairs, then the modules as a tar.
# Output: insmod's and dmesg's last words, the line "--- m5dev: what the module added ---",
#   then "device /dev/X" and "parameter MODULE.NAME=VALUE" lines.
# Exit codes: 0 loaded; 97 the guest runs another kernel ("m5dev: the guest runs RELEASE", before
#   any input is read); 98 no modules on stdin (the build failed); else tar, rmmod or insmod failed.
set -e
release=$1
shift
params=$*
read -r running < /proc/sys/kernel/osrelease
if [ "$running" != "$release" ]; then echo "m5dev: the guest runs $running"; exit 97; fi
IFS= read -r mods || { echo 'm5dev: no modules on stdin'; exit 98; }
# Root unpacks into a directory of its own (not /tmp itself, which anyone can write to).
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
tar -xof - -C "$dir"
for m in $mods; do n=${m#*:}; if [ -e "/sys/module/$n/initstate" ]; then rmmod "$n"; fi; done
# What the module adds is what it is for: its device nodes and its sysfs parameters.
set -- /dev/*
before=" $* "
# shellcheck disable=SC2086 # the parameters are words on purpose (validated name=value pairs)
for m in $mods; do insmod "$dir/${m%%:*}" $params; done
dmesg | tail -n 5
echo '--- m5dev: what the module added ---'
for d in /dev/*; do case "$before" in *" $d "*) ;; *) if [ -c "$d" ] || [ -b "$d" ]; then echo "device $d"; fi ;; esac; done
for m in $mods; do n=${m#*:}; for f in "/sys/module/$n/parameters/"*; do if [ -f "$f" ]; then v=; read -r v < "$f" || true; echo "parameter $n.${f##*/}=$v"; fi; done; done
