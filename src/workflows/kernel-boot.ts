/** Direct boot of a kernel built by `m5dev kernel build`: what `up --kernel <version>` passes to QEMU. */
import { inContainer, requireKernel } from '../kernel/cache.js';
import { guestTreeName, guestTreeStamp, hasGuestTree } from '../kernel/guest-tree.js';
import type { Storage } from '../engine/storage.js';
/** The Image as the VM container sees it, the version it was built as and the release it reports. */
export interface KernelBoot {
  version: string;
  image: string;
  release: string;
  append: string;
  /** The build's guest module tree (kernel/guest-tree.ts) as the VM container sees it, if it was made. */
  guestTree?: { dir: string; stamp: string };
  /** An initramfs as the VM container sees it (`run --kernel`: workflows/initramfs.ts). */
  initrd?: string;
}

/**
 * No initramfs: the kernel mounts the root itself. The instance disk is the first virtio-blk
 * device (qemu-args orders it so), and cloud images keep their root on partition 1.
 */
export const DIRECT_BOOT_APPEND = 'root=/dev/vda1 rw rootwait console=ttyAMA0';

/** The built kernel of `version` in the engine's kernel storage (mounted read-only at /kernels in the VM container). */
export async function kernelBootFor(ks: Storage, version: string): Promise<KernelBoot> {
  const rec = await requireKernel(ks, version);
  return {
    version: rec.version,
    image: inContainer(rec.image),
    release: rec.release,
    append: DIRECT_BOOT_APPEND,
    guestTree: (await hasGuestTree(ks, rec)) ? { dir: inContainer(guestTreeName(rec)), stamp: guestTreeStamp(rec) } : undefined,
  };
}
