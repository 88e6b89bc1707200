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
import { script } from '../scripts.js';

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

/** The tool-container command making the tree of `rec`. */
export function guestTreeCommand(rec: KernelRecord): string[] {
  return ['sh', '-c', script('makeGuestTree'), 'm5dev-guest-tree', inContainer(rec.src), inContainer(rec.build), inContainer(guestTreeName(rec)), guestTreeStamp(rec), CROSS.ARCH, CROSS.CROSS_COMPILE];
}
