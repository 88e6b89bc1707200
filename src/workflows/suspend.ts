/**
 * `m5dev suspend`: save the paused guest's state to the instance dir (QEMU migration to a file:
 * only the devices, and a sparse copy of the RAM file from the container's tmpfs; or, with
 * `--no-ram-file`, RAM and devices in the stream), stop QEMU and remove its container. `m5dev up`
 * resumes it (see up.ts).
 * Until the save is complete, a failure or Ctrl-C cancels it and lets the guest run on: nothing
 * half-saved is kept. Once it is complete, they finish the suspend instead: the save is never dropped.
 */
import { DiskFullError, InterruptedError, VmStateError, isDiskFull } from '../errors.js';
import { isInterrupting, onCleanup } from '../cleanup.js';
import { IN_CONTAINER, RAM_TMPFS, exportsOf } from '../vm/instance.js';
import { withQmp, type QmpClient, type QmpFd } from '../vm/qmp.js';
import { removeInVm } from '../vmhost/vm-files.js';
import { SAVED_FORMAT, commitSaved, saveStream, saveSteps, dropSaved, guestStamps, markComplete, savedBytes } from '../vm/saved-state.js';
import type { LiveInstance } from './running.js';
import { stopInstance } from './down.js';
import { mountShares, unmountShares } from './guest-shares.js';
import { guestArgv } from '../ssh/guest-command.js';

export interface SuspendResult {
  name: string;
  bytes: number;
  seconds: number;
  /** Whether the guest flushed its file systems before the save (false: SSH did not answer). */
  synced: boolean;
}

export async function suspendInstance(live: LiveInstance, timeoutSec = 300): Promise<SuspendResult> {
  const { storage, vm } = live;
  const session = <T>(timeoutSec: number, use: (q: QmpClient) => Promise<T>, fds?: QmpFd[]) => withQmp(() => vm.monitor(timeoutSec, fds), use);
  const stream = saveStream(`${IN_CONTAINER.vmState}.tmp`);
  const launchKey = live.state.launchKey;
  if (!launchKey) {
    throw new VmStateError(`instance ${live.name} was started by an older m5dev that did not record its launch`, '', 'Run `m5dev down` and `m5dev up` once; it can be suspended after that.');
  }
  const format = live.state.ramFile === true ? SAVED_FORMAT.ramFile : SAVED_FORMAT.stream;
  await dropSaved(storage);
  // Flush the guest's page cache first: should the saved state ever be discarded (`up --no-resume`,
  // a changed disk), the disk still holds everything written before the suspend.
  const sync = await live.ssh.capture(guestArgv(['sync']), { connectTimeoutSec: 10, timeoutMs: 120_000 }).catch(() => undefined);
  const synced = sync?.exitCode === 0;
  // QEMU will not save a guest with a 9p export mounted: unmount, and mount again if the save fails.
  const shares = exportsOf(live.state);
  if (shares.length) {
    await unmountShares(live.ssh, shares).catch(async (e: unknown) => {
      await mountShares(live.ssh, shares).catch(() => undefined); // those unmounted before the busy one
      throw e;
    });
  }
  const resumeGuest = async () => {
    await session(20, async (q) => {
      await q.execute('migrate_cancel');
      await q.execute('cont');
    }).catch(() => undefined);
    if (shares.length) await mountShares(live.ssh, shares).catch(() => undefined);
  };
  // The save's own session, while it runs: QEMU's monitor takes one client at a time, so a
  // cancel (Ctrl-C) must end it before its own session can reach QEMU.
  let saving: QmpClient | undefined;
  const undo = onCleanup('cancel suspend', async () => {
    await saving?.close();
    await resumeGuest();
    await dropSaved(storage);
  });
  const t0 = Date.now();
  try {
    const results = await session(
      timeoutSec,
      (q) => {
        saving = q;
        return q.run(saveSteps(format, stream), (path) => removeInVm(vm, path));
      },
      [stream],
    ).finally(() => {
      saving = undefined;
    });
    const status = results.at(-1) as { status?: string; 'error-desc'?: string };
    if (status.status !== 'completed') {
      const why = status['error-desc'] ?? status.status ?? '';
      if (isDiskFull(why)) throw new DiskFullError('saving the guest state; the guest keeps running', undefined, why);
      throw new VmStateError(`saving the guest state failed: ${why}`);
    }
    if (format === SAVED_FORMAT.ramFile) {
      // The guest is paused: its RAM file is still; copy it out of the container's tmpfs (holes stay holes).
      const cp = await vm.capture(['cp', '--sparse=always', RAM_TMPFS.file, `${IN_CONTAINER.ram}.tmp`]);
      if (cp.exitCode !== 0 && isDiskFull(cp.stderr)) throw new DiskFullError('saving the guest\'s RAM; the guest keeps running', undefined, cp.stderr.trim());
      if (cp.exitCode !== 0) throw new VmStateError(`saving the guest's RAM failed: ${cp.stderr.trim()}`, '', 'The guest keeps running; free disk space in the m5dev home and suspend again, or stop it with `m5dev down`.');
    }
  } catch (e) {
    await resumeGuest();
    await dropSaved(storage);
    throw e;
  } finally {
    undo();
  }
  // Ctrl-C while the save ran: its cleanup has already cancelled the save and resumed the guest.
  if (isInterrupting()) throw new InterruptedError();
  // The save is complete, and QEMU flushed and released the disks when it completed: from here the
  // saved state is the guest. Nothing drops it any more: a slow QEMU exit, a failure or Ctrl-C
  // finishes the suspend (QEMU stopped, the state committed) instead of cancelling it.
  let finishing: Promise<number> | undefined;
  const finish = () => (finishing ??= (async () => {
    // Complete: should the commit below be cut short after QEMU quits, the next up finishes it.
    // (A mark that cannot be written leaves only this safety net out: the commit goes on.)
    await markComplete(storage, { format, launchKey, savedAt: new Date().toISOString(), saveMs: Date.now() - t0 }).catch(() => undefined);
    await session(30, (q) => q.execute('quit')).catch(() => undefined);
    // QEMU has exited, or is stopped now (which the released disks allow); the state is committed
    // before anything else can fail, then its container and stale SSH connection go, as in `down`.
    // An engine that does not answer for a moment must not leave a complete save uncommitted.
    if (!(await vm.waitExit(30_000).catch(() => false))) await vm.remove().catch(() => undefined);
    const bytes = await savedBytes(storage, format, '.tmp');
    await commitSaved(storage, { format, launchKey, stamps: await guestStamps(storage), bytes, savedAt: new Date().toISOString(), saveMs: Date.now() - t0 });
    await stopInstance(live, 0);
    return bytes;
  })());
  const undoFinish = onCleanup('finish the suspend (the save is complete)', async () => {
    await finish().catch(() => undefined);
  });
  try {
    const bytes = await finish();
    return { name: live.name, bytes, seconds: (Date.now() - t0) / 1000, synced };
  } finally {
    undoFinish();
  }
}
