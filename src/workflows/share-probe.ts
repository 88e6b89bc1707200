/** Before QEMU starts: how each share's host file system can keep what the guest sets (vm/shares.ts). */
import type { Engine } from '../engine/engine.js';
import { XATTR_PROBE, containerPath, shareMounts, shareModels, type Share, type ShareModel } from '../vm/shares.js';

/**
 * In a throwaway toolchain container that mounts the shares as the VM container will (read-only:
 * the probe only reads), so the answer is about the file system QEMU will really see.
 */
export async function probeShareModels(engine: Engine, image: string, home: string, shares: Share[]): Promise<ShareModel[]> {
  if (shares.length === 0) return [];
  const out = await engine.runTool({
    image,
    cmd: [...XATTR_PROBE, ...shares.map((_, i) => containerPath(i))],
    binds: shareMounts(shares, () => false, true),
    home,
    description: 'the shares\' file system probe',
  });
  return shareModels(out, shares.length);
}
