/** Exit 13 (VmStateError) on the paths that need no QEMU: what the guest or the VM container answered decides it. */
import { describe, expect, it } from 'vitest';
import { ExitCode, VmStateError } from '../../src/errors.js';
import { removeInVm } from '../../src/vmhost/vm-files.js';
import { unmountShares } from '../../src/workflows/guest-shares.js';
import { SHARE_EXIT } from '../../src/vm/shares.js';
import type { GuestSsh } from '../../src/ssh/client.js';
import type { VmExec } from '../../src/vmhost/vm-host.js';

const answering = (exitCode: number, stderr: string) => ({ capture: async () => ({ exitCode, stdout: '', stderr }) });

describe('VmStateError (exit 13)', () => {
  it('a file the VM container could not remove (a resume relies on its record being gone)', async () => {
    const err = await removeInVm(answering(1, 'rm: Read-only file system\n') as unknown as VmExec, '/instance/vmstate.json').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VmStateError);
    expect((err as VmStateError).exitCode).toBe(ExitCode.vmStateFailed);
    expect((err as VmStateError).message).toBe("could not remove /instance/vmstate.json in the VM's container");
    expect((err as VmStateError).details).toBe('rm: Read-only file system');
    await expect(removeInVm(answering(0, '') as unknown as VmExec, '/x')).resolves.toBeUndefined();
  });

  it('shares that would not unmount before a save: in use (its own hint) or another failure; the guest keeps running either way', async () => {
    const share = [{ tag: 'm5dev0', path: '/shares/0', guest: '/mnt/src', readOnly: false, model: 'mapped-xattr' as const }];
    const inUse = await unmountShares(answering(SHARE_EXIT.inUse, 'umount: /mnt/src: target is busy') as unknown as GuestSsh, share).catch((e: unknown) => e);
    expect((inUse as VmStateError).message).toBe('cannot suspend: a share is in use in the guest');
    const other = await unmountShares(answering(1, 'umount: bad') as unknown as GuestSsh, share).catch((e: unknown) => e);
    expect(other).toBeInstanceOf(VmStateError);
    expect((other as VmStateError).exitCode).toBe(ExitCode.vmStateFailed);
    expect((other as VmStateError).message).toBe('unmounting the shares before the save failed; the guest keeps running');
    await expect(unmountShares(answering(0, '') as unknown as GuestSsh, share)).resolves.toBeUndefined();
  });
});
