/**
 * Exit 16 (DiskFullError), 17 (CopyError) and 18 (ShareError) on the paths where what a step or the
 * guest answered decides the error: a step beside QEMU that ran out of space, a kernel module tree
 * the guest could not install, a guest that cannot mount its shares.
 */
import { describe, expect, it } from 'vitest';
import { CopyError, DiskFullError, ExitCode, ModuleError, ShareError, ToolError, toolStepError } from '../../src/errors.js';
import { installGuestTree } from '../../src/workflows/up/provision.js';
import type { VmExec } from '../../src/vmhost/vm-host.js';
import { mountShares } from '../../src/workflows/guest-shares.js';
import { SHARE_EXIT } from '../../src/vm/shares.js';
import type { GuestSsh } from '../../src/ssh/client.js';

const answering = (exitCode: number, stderr: string, stdout = '') => ({ capture: async () => ({ exitCode, stdout, stderr }) });

describe('a failed tool step', () => {
  it('is DiskFullError when it ran out of space, whatever its own error would be; else its own error, else ToolError', () => {
    const own = (message: string, tail: string) => new ModuleError(message, tail);
    const full = toolStepError({ description: 'Building the module', failure: own }, 2, 'cc1: error: No space left on device\n');
    expect(full).toBeInstanceOf(DiskFullError);
    expect((full as DiskFullError).exitCode).toBe(ExitCode.diskFull);
    expect(full.message).toBe('No space left on the device while running Building the module');
    const mine = toolStepError({ description: 'Building the module', failure: own }, 2, 'm5.c:3: error: x undeclared\n');
    expect(mine).toBeInstanceOf(ModuleError);
    expect(mine.message).toBe('Building the module failed (exit 2)');
    expect(toolStepError({ description: 'Converting' }, 1, 'qemu-img: bad\n')).toBeInstanceOf(ToolError);
  });
});

describe('the built kernel\'s module tree, installed in the guest at boot', () => {
  it('a tree the guest could not install is exit 17 with both sides\' words', async () => {
    const packing = { pipe: async (_argv: string[], io: { output?: NodeJS.WritableStream }) => (io.output!.end(), { exitCode: 0, stderr: '' }) } as unknown as VmExec;
    const refusing = {
      pipe: async (_cmd: unknown, io: { input?: NodeJS.ReadableStream }) => {
        io.input!.resume();
        return { exitCode: 1, stderr: 'install-kernel-tree: /lib/modules/6.1.192 incomplete\n' };
      },
    } as unknown as GuestSsh;
    const err = await installGuestTree(packing, refusing, '6.1.192', '/kernels/build/k/m5dev-guest').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CopyError);
    expect((err as CopyError).exitCode).toBe(ExitCode.copyFailed);
    expect((err as CopyError).message).toBe('installing /lib/modules/6.1.192 in the guest failed');
    expect((err as CopyError).details).toBe('install-kernel-tree: /lib/modules/6.1.192 incomplete');
  });
});

describe('ShareError (exit 18) from the guest\'s mount script', () => {
  const shares = [{ tag: 'm5dev0', path: '/shares/0', guest: '/home/ubuntu/src', readOnly: false, model: 'mapped-xattr' as const }];
  it('no 9p in the guest kernel, no extended attributes on the share, any other failure: each its own words; success gives the owner notes', async () => {
    const ninep = await mountShares(answering(SHARE_EXIT.noNinep, 'the kernel has no 9p\n') as unknown as GuestSsh, shares).catch((e: unknown) => e);
    expect(ninep).toBeInstanceOf(ShareError);
    expect((ninep as ShareError).exitCode).toBe(ExitCode.shareFailed);
    expect((ninep as ShareError).hint).toMatch(/Boot a kernel with 9p over virtio/);
    const xattrs = await mountShares(answering(SHARE_EXIT.noXattrs, '/home/ubuntu/src: no extended attributes\n') as unknown as GuestSsh, shares).catch((e: unknown) => e);
    expect(xattrs).toBeInstanceOf(ShareError);
    expect((xattrs as ShareError).message).toBe('cannot use the shares: /home/ubuntu/src: no extended attributes');
    expect((xattrs as ShareError).hint).toMatch(/nothing the guest does becomes a setuid file or device on the host/);
    const other = await mountShares(answering(32, 'mount: /home/ubuntu/src: wrong fs type\n') as unknown as GuestSsh, shares).catch((e: unknown) => e);
    expect(other).toBeInstanceOf(ShareError);
    expect((other as ShareError).exitCode).toBe(ExitCode.shareFailed);
    expect((other as ShareError).message).toBe('mounting the shares in the guest failed');
    expect((other as ShareError).details).toBe('mount: /home/ubuntu/src: wrong fs type');
    await expect(mountShares(answering(0, '') as unknown as GuestSsh, shares)).resolves.toEqual([]);
  });
});
