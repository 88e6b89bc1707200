/** Mount and unmount the instance's shares in the running guest, over its SSH (see vm/shares.ts). */
import { ShareError, VmStateError } from '../errors.js';
import { guestScript } from '../ssh/guest-command.js';
import type { GuestSsh } from '../ssh/client.js';
import { SHARE_EXIT, mountScriptArgs, ownerNotes, unmountScriptArgs, type NinepExport } from '../vm/shares.js';

/**
 * Mount every share not mounted yet (at boot, after a resume, and idempotently on a running guest);
 * returns notes on shares the guest user does not own.
 */
export async function mountShares(ssh: GuestSsh, exports: NinepExport[]): Promise<string[]> {
  const res = await ssh.capture(guestScript('mountShares', mountScriptArgs(exports), { root: true }), { timeoutMs: 60_000 });
  if (res.exitCode === SHARE_EXIT.noNinep) {
    throw new ShareError(
      `cannot mount the shares: ${res.stderr.trim()}`,
      'The guest is up without the shares. Boot a kernel with 9p over virtio (Ubuntu\'s cloud images have it; so does `m5dev kernel build` + `up --kernel VERSION`): `m5dev down`, then up again; or copy with `m5dev cp DIR guest:PATH`.',
    );
  }
  if (res.exitCode === SHARE_EXIT.noXattrs) {
    throw new ShareError(
      `cannot use the shares: ${res.stderr.trim()}`,
      'The guest is up without a usable share. m5dev keeps what the guest sets (owner, mode, links) in extended attributes, so that nothing the guest does becomes a setuid file or device on the host: the probe before launch did not see that this file system refuses them: share a directory on ext4, xfs or btrfs, or copy with `m5dev cp DIR guest:PATH`.',
    );
  }
  if (res.exitCode !== 0) throw new ShareError('mounting the shares in the guest failed', 'See the guest\'s message above; `m5dev ssh` to look (dmesg).', res.stderr.trim());
  return ownerNotes(res.stdout);
}

/** Unmount them before QEMU saves the guest: it refuses to save one with a 9p export mounted. */
export async function unmountShares(ssh: GuestSsh, exports: NinepExport[]): Promise<void> {
  const res = await ssh.capture(guestScript('unmountShares', unmountScriptArgs(exports), { root: true }), { timeoutMs: 60_000 });
  if (res.exitCode === SHARE_EXIT.inUse) {
    throw new VmStateError(
      'cannot suspend: a share is in use in the guest',
      res.stderr.trim(),
      'Leave the shared directory (shells and programs whose working directory is in it) and suspend again; the guest keeps running.',
    );
  }
  if (res.exitCode !== 0) throw new VmStateError('unmounting the shares before the save failed; the guest keeps running', res.stderr.trim());
}
