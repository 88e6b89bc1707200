#!/bin/sh
# shellcheck shell=dash
# In the toolchain container (src/kernel/guest-tree.ts): the guest's side of a built kernel.
# Arguments: SRC BUILD OUT STAMP ARCH CROSS_COMPILE. Writes OUT.partial, renames it to OUT when whole.
# A host program is rebuilt by replaying the command its `.cmd` file recorded (cmd_ in 6.1,
# savedcmd_ from 6.3) with the cross compiler in place of the host's gcc, objects before the link;
# host programs an external module build never runs (kconfig, dtc, mk_elfconfig) are left out.
# Exit codes: 0 done; 1 a host program could not be rebuilt (the message names it); others: make's.
# shellcheck disable=SC2046 # find's file lists are split into words on purpose (kernel paths have no spaces)
set -eu
S=$1; B=$2; OUT=$3; STAMP=$4; ARCH=$5; CROSS_COMPILE=$6
rel=$(cat "$B/include/config/kernel.release")
G="$OUT.partial"
rm -rf "$G"; mkdir -p "$G"
make -s -C "$S" O="$B" ARCH="$ARCH" CROSS_COMPILE="$CROSS_COMPILE" INSTALL_MOD_PATH="$G" INSTALL_MOD_STRIP=1 modules_install >&2
H="$G/usr/src/linux-headers-$rel"
mkdir -p "$H"
( cd "$S"
  find . "arch/$ARCH" -maxdepth 1 -name 'Makefile*'
  find include scripts -type f -o -type l
  find "arch/$ARCH" -name Kbuild.platforms -o -name Platform
  find $(find "arch/$ARCH" -name include -o -name scripts -type d) -type f
) | tar -c -C "$S" -T - | tar -x -C "$H"
( cd "$B"; find "arch/$ARCH/include" Module.symvers include scripts -type f ) | tar -c -C "$B" -T - | tar -x -C "$H"
cp "$B/.config" "$H/.config"
cp "$B/System.map" "$H/System.map"
cd "$H"
replay() {
  local cmdf line w
  cmdf="$(dirname "$1")/.$(basename "$1").cmd"
  [ -f "$cmdf" ] || { echo "guest tree: no recorded build command for $1" >&2; exit 1; }
  line=$(sed -n -e "s|^cmd_$1 := ||p" -e "s|^savedcmd_$1 := ||p" "$cmdf")
  case "$line" in
    gcc\ *) line="${CROSS_COMPILE}gcc ${line#gcc }" ;;
    *) echo "guest tree: $1 was not built by gcc: $line" >&2; exit 1 ;;
  esac
  case "$1" in *.o) ;; *) for w in $line; do case "$w" in *.o) replay "$w" ;; esac; done ;; esac
  eval "$line"
}
# shellcheck disable=SC2044 # the kernel's script paths have no spaces
for f in $(find scripts -type f -perm -u+x); do
  case "$(file -b "$f")" in
    *ELF*aarch64*) ;;
    *ELF*)
      case "$f" in
        scripts/kconfig/*|scripts/dtc/*|scripts/mod/mk_elfconfig) rm -f "$f" ;;
        *) replay "$f"
           file -b "$f" | grep -q aarch64 || { echo "guest tree: $f is not an aarch64 program after the rebuild" >&2; exit 1; } ;;
      esac ;;
  esac
done
find . \( -name '.*.cmd' -o -name '*.o' -o -name '.*.d' \) -delete
m="$G/lib/modules/$rel"
rm -f "$m/build" "$m/source"
ln -s "/usr/src/linux-headers-$rel" "$m/build"
echo "$STAMP" > "$m/.m5dev-tree"
rm -rf "$OUT"; mv "$G" "$OUT"
