/** Direct boot of a kernel built by `m5dev kernel build`: what `up --kernel <version>` passes to QEMU. */
import type { HomeLayout } from '../paths.js';
import { requireKernel } from '../kernel/cache.js';
import type { KernelBoot } from './up.js';

/**
 * No initramfs: the kernel mounts the root itself. The instance disk is the first virtio-blk
 * device (qemu-args orders it so), and cloud images keep their root on partition 1.
 */
export const DIRECT_BOOT_APPEND = 'root=/dev/vda1 rw rootwait console=ttyAMA0';

export function kernelBootFor(home: HomeLayout, version: string): KernelBoot {
  const rec = requireKernel(home, version);
  return { version: rec.version, imagePath: rec.imagePath, release: rec.release, append: DIRECT_BOOT_APPEND };
}
