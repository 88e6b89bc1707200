/**
 * `m5dev run --kernel VERSION`: the kernel m5dev built boots a disk image made for another kernel
 * (gem5-resources' images). Its initramfs (initramfs/init.c) mounts the image's root and binds the
 * built kernel's module tree over the root's /lib/modules, the project's m5 module in it (it answers
 * to `modprobe gem5_bridge`, as gem5's driver does), before the image's own init runs: the image
 * is never written, and its init loads the bridge as it would under gem5.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT, MODULE_DIR } from '../assets.js';
import { writer } from '../docker/containers.js';
import { KERNELS_MOUNT, inContainer } from '../kernel/cache.js';
import { CROSS } from '../kernel/build-spec.js';
import { guestTreeName, hasGuestTree } from '../kernel/guest-tree.js';
import { UsageError } from '../errors.js';
import { scriptCommand } from '../scripts.js';
import { IN_CONTAINER } from '../vm/instance.js';
import type { HomeLayout } from '../paths.js';
import type { Placement } from '../vmhost/placement.js';
import type { KernelBoot } from './kernel-boot.js';
import type { Toolchain } from './image-build.js';
import { buildModule, moduleRequest } from './module.js';
import type { Reporter } from './report.js';

const INIT_SOURCE = join(PACKAGE_ROOT, 'initramfs', 'init.c');
const INPUTS = '/tmp/m5dev-initramfs-in';

/**
 * The kernel command line a job's kernel gets when --append is not given: the initramfs finds the
 * root (the first partition of the disk holding /sbin/init), read-write; the console on the serial port.
 */
export const RUN_KERNEL_APPEND = 'rw console=ttyAMA0';

/** The project's module built for the kernel, and the initramfs made in the instance; `kernel` with it. */
export async function withInitramfs(report: Reporter, toolchain: Toolchain, home: HomeLayout, placement: Placement, kernel: KernelBoot): Promise<KernelBoot> {
  const built = await buildModule(report, toolchain, moduleRequest(home, kernel.version, MODULE_DIR));
  return report.step(`Initramfs: /lib/modules/${kernel.release} and gem5_bridge (the m5 module) for the image's init`, async (s) => {
    const rec = built.kernel;
    if (!(await hasGuestTree(placement.kernels, rec))) {
      throw new UsageError(`the build of linux-${rec.version} has no guest module tree`, `Run \`m5dev kernel build --version ${rec.version}\` again: it makes the tree the initramfs needs.`);
    }
    const modules = built.build.modules.map((m) => ({ name: `${INPUTS.slice(1)}/${m}`, data: readFileSync(join(built.build.dir, m)) }));
    const user = writer(placement.owner);
    await toolchain.engine.runTool({
      image: toolchain.tag,
      cmd: scriptCommand('makeInitramfs', [`${INPUTS}/init.c`, inContainer(guestTreeName(rec)), rec.release, IN_CONTAINER.initramfs, CROSS.CROSS_COMPILE, ...built.build.modules.map((m) => `${INPUTS}/${m}`)]),
      binds: [placement.kernels.bind(KERNELS_MOUNT, true), placement.storage.bind(IN_CONTAINER.dir)],
      home: home.root,
      description: 'Making the initramfs',
      confined: user,
      before: (box) => box.putFiles('/', [{ name: `${INPUTS.slice(1)}/init.c`, data: readFileSync(INIT_SOURCE) }, ...modules], user),
    });
    s.title(`Initramfs: m5dev's init, /lib/modules/${rec.release} with ${built.build.modules.join(', ')} (modprobe gem5_bridge loads it)`);
    return { ...kernel, initrd: IN_CONTAINER.initramfs };
  });
}
