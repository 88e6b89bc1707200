/**
 * `up`'s first phase: find the instance (its state, its storages on the engine, a VM container
 * that runs, a suspended state) and reconcile it with what was asked (vm/reconcile.ts): attach,
 * resume, boot, or refuse before anything is made.
 */
import type { ListrTask } from 'listr2';
import { existsSync, statSync } from 'node:fs';
import { ShareError } from '../../errors.js';
import { reconcile } from '../../vm/reconcile.js';
import { readState } from '../../vm/instance.js';
import { diskName } from '../../vm/prepare.js';
import { checkError, storageDiskCheck } from '../../engine/doctor.js';
import { placeInstance } from '../../vmhost/placement.js';
import { finishPending, readSaved } from '../../vm/saved-state.js';
import { kernelBootFor } from '../kernel-boot.js';
import { STATUS_FILES, type UpCtx } from './context.js';

export function instanceTask(): ListrTask<UpCtx> {
  return {
      title: 'Instance',
      task: async (ctx, task) => {
        ctx.state = readState(ctx.files);
        await openStorages(ctx);
        if (ctx.kernelVersion) ctx.kernel = await kernelBootFor(ctx.kernels!, ctx.kernelVersion);
        if (!ctx.state) {
          // As `m5dev doctor` says it: stop before filling a disk that cannot hold a new instance.
          const disk = await storageDiskCheck(ctx.storage!);
          if (disk.status === 'fail') throw checkError(disk);
        }
        ctx.stored = await ctx.storage!.stat(STATUS_FILES);
        const host = ctx.host!;
        const found = await host.list(ctx.name);
        const live = found.find((c) => c.running);
        for (const c of found) if (!c.running) await host.attach(c).remove();
        ctx.saved = live ? undefined : await readSaved(ctx.storage!);
        if (!live && !ctx.saved) {
          // A complete save whose commit was cut short after QEMU quit: finished now, not dropped.
          ctx.saved = await finishPending(ctx.storage!);
          if (ctx.saved) ctx.notes.push(`finished committing the suspend of ${ctx.saved.savedAt}, which had saved completely`);
        }
        const plan = reconcile(
          {
            name: ctx.name,
            state: ctx.state,
            live: live !== undefined,
            suspended: ctx.saved !== undefined,
            kernelRelease: ctx.kernel?.release,
            disks: new Set((['raw', 'overlay'] as const).filter((d) => ctx.stored!.has(diskName(d)))),
          },
          { config: ctx.config, explicit: ctx.explicit, noResume: ctx.noResume },
        );
        if (plan.kind === 'refuse') throw plan.error;
        ctx.config = plan.config;
        if (live) {
          ctx.running = ctx.vm = host.attach(live);
          ctx.sshPort = live.sshPort;
        }
        if (plan.kind === 'resume' && plan.kernelVersion) ctx.kernel = await kernelBootFor(ctx.kernels!, plan.kernelVersion);
        const suspended = ctx.saved !== undefined;
        checkShareable(ctx);
        task.title = `Instance ${ctx.name}${live ? ' (running)' : suspended ? ' (suspended)' : ctx.state ? ' (stopped)' : ' (new)'}`;
      },
    };
}

/** Where the instance lives (vmhost/placement.ts): its VM host and storages. */
async function openStorages(ctx: UpCtx): Promise<void> {
  const placed = await placeInstance(ctx.image.engine!, ctx.home, ctx.files, ctx.name, ctx.state, () => ctx.image.tag!);
  ctx.placement = placed;
  ctx.host = placed.host;
  ctx.storage = placed.storage;
  ctx.blobs = placed.blobs;
  ctx.kernels = placed.kernels;
  await Promise.all([ctx.storage.ensure(), ctx.blobs.ensure()]);
}

/** Shares need the engine to see this machine's directories, and the directories to exist. */
function checkShareable(ctx: UpCtx): void {
  const shares = ctx.config.shares;
  if (shares.length === 0) return;
  if (!ctx.host!.features.seesClientFiles) {
    throw new ShareError(
      `the engine ${ctx.image.engine!.endpoint.host} cannot see this machine's files, so it cannot share ${shares[0]!.host}`,
      'Copy the tree in and out instead: `m5dev cp DIR guest:PATH` and `m5dev cp guest:PATH DIR` (see docs/any-engine.md), or use a local engine.',
    );
  }
  for (const s of shares) {
    if (!existsSync(s.host) || !statSync(s.host).isDirectory()) throw new ShareError(`${s.host} is not a directory`, 'Share an existing directory: --share HOST_DIR[:GUEST_PATH].');
  }
}
