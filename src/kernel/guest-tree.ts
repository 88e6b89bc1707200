/**
 * The guest's side of a built kernel: what a direct-booted guest needs to build and install
 * modules itself, the way the seed's recipe and gem5's util/gem5_bridge Makefile do
 * (`make -C /lib/modules/$(uname -r)/build M=$PWD`, `make modules_install INSTALL_MOD_DIR=…`,
 * `modprobe`). Made once per kernel build, beside it in the kernel storage:
 *   build/<key>/m5dev-guest/lib/modules/<release>/             modules_install: modules, modules.dep
 *   build/<key>/m5dev-guest/usr/src/linux-headers-<release>/   the external-module build tree
 * and `build` in the first pointing at the second. The build tree is the file list of the kernel's
 * own deb-pkg headers package (scripts/package/builddeb) plus System.map (modules_install runs
 * depmod only with it), with the kbuild host programs (fixdep,
 * modpost, …) compiled again for arm64: the cross build's are x86-64 and cannot run in the guest.
 */
import { inContainer, type KernelRecord } from './cache.js';
import type { Storage } from '../engine/storage.js';
import { CROSS } from './build-spec.js';

/** Bumped when the tree's layout changes: a guest or a build holding another format gets it anew. */
export const GUEST_TREE_FORMAT = 2;
export const GUEST_TREE_DIR = 'm5dev-guest';

export const guestTreeName = (rec: KernelRecord): string => `${rec.build}/${GUEST_TREE_DIR}`;
/** The stamp both the staged tree and the guest carry: the build it came from, in this format. */
export const guestTreeStamp = (rec: KernelRecord): string => `${rec.key} format ${GUEST_TREE_FORMAT}`;
/** Where the stamp sits, relative to the tree's root (and to / in the guest). */
export const guestStampPath = (release: string): string => `lib/modules/${release}/.m5dev-tree`;

/** Whether the kernel storage holds `rec`'s guest tree, whole and of this format. */
export async function hasGuestTree(ks: Storage, rec: KernelRecord): Promise<boolean> {
  const stamp = await ks.read(`${guestTreeName(rec)}/${guestStampPath(rec.release)}`);
  return stamp?.toString('utf8').trim() === guestTreeStamp(rec);
}

/**
 * Tool-container script: SRC BUILD OUT STAMP. Writes OUT.partial, renames it to OUT when whole.
 * A host program is rebuilt by replaying the command its `.cmd` file recorded (cmd_ in 6.1,
 * savedcmd_ from 6.3) with the cross compiler in place of the host's gcc, objects before the link;
 * host programs an external module build never runs (kconfig, dtc, mk_elfconfig) are left out.
 */
export const GUEST_TREE_SCRIPT = `set -eu
S=$1; B=$2; OUT=$3; STAMP=$4
rel=$(cat "$B/include/config/kernel.release")
G="$OUT.partial"
rm -rf "$G"; mkdir -p "$G"
make -s -C "$S" O="$B" ARCH=${CROSS.ARCH} CROSS_COMPILE=${CROSS.CROSS_COMPILE} INSTALL_MOD_PATH="$G" INSTALL_MOD_STRIP=1 modules_install >&2
H="$G/usr/src/linux-headers-$rel"
mkdir -p "$H"
( cd "$S"
  find . arch/arm64 -maxdepth 1 -name 'Makefile*'
  find include scripts -type f -o -type l
  find arch/arm64 -name Kbuild.platforms -o -name Platform
  find $(find arch/arm64 -name include -o -name scripts -type d) -type f
) | tar -c -C "$S" -T - | tar -x -C "$H"
( cd "$B"; find arch/arm64/include Module.symvers include scripts -type f ) | tar -c -C "$B" -T - | tar -x -C "$H"
cp "$B/.config" "$H/.config"
cp "$B/System.map" "$H/System.map"
cd "$H"
replay() {
  local cmdf line w
  cmdf="$(dirname "$1")/.$(basename "$1").cmd"
  [ -f "$cmdf" ] || { echo "guest tree: no recorded build command for $1" >&2; exit 1; }
  line=$(sed -n -e "s|^cmd_$1 := ||p" -e "s|^savedcmd_$1 := ||p" "$cmdf")
  case "$line" in
    gcc\\ *) line="${CROSS.CROSS_COMPILE}gcc \${line#gcc }" ;;
    *) echo "guest tree: $1 was not built by gcc: $line" >&2; exit 1 ;;
  esac
  case "$1" in *.o) ;; *) for w in $line; do case "$w" in *.o) replay "$w" ;; esac; done ;; esac
  eval "$line"
}
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
find . \\( -name '.*.cmd' -o -name '*.o' -o -name '.*.d' \\) -delete
m="$G/lib/modules/$rel"
rm -f "$m/build" "$m/source"
ln -s "/usr/src/linux-headers-$rel" "$m/build"
echo "$STAMP" > "$m/.m5dev-tree"
rm -rf "$OUT"; mv "$G" "$OUT"
`;

/** The tool-container command making the tree of `rec`. */
export function guestTreeCommand(rec: KernelRecord): string[] {
  return ['sh', '-c', GUEST_TREE_SCRIPT, 'm5dev-guest-tree', inContainer(rec.src), inContainer(rec.build), inContainer(guestTreeName(rec)), guestTreeStamp(rec)];
}

/**
 * Guest script (as root), RELEASE on $1 and the tree as a gzipped tar on stdin: unpacked beside
 * its place, then swapped in; the previous /lib/modules/RELEASE (with modules the user installed
 * against the previous build) and headers are removed only once the new ones are in place.
 */
export const GUEST_INSTALL_SCRIPT = `set -eu
rel=$1
t=$(mktemp -d /var/tmp/m5dev-kernel.XXXXXX); trap 'rm -rf "$t"' EXIT
tar -xz --no-same-owner -C "$t"
[ -f "$t/lib/modules/$rel/.m5dev-tree" ] || { echo "the kernel tree for $rel is incomplete" >&2; exit 1; }
mkdir -p /usr/src /lib/modules
for d in "/usr/src/linux-headers-$rel" "/lib/modules/$rel"; do
  if [ -e "$d" ]; then rm -rf "$d.m5dev-old"; mv "$d" "$d.m5dev-old"; fi
done
mv "$t/usr/src/linux-headers-$rel" /usr/src/
mv "$t/lib/modules/$rel" /lib/modules/
sync
rm -rf "/usr/src/linux-headers-$rel.m5dev-old" "/lib/modules/$rel.m5dev-old"
`;
