/**
 * `m5dev up`: composed of its phases (workflows/up/), each a list of tasks that skip with a reason
 * when their output is there already: the instance found and reconciled with what was asked, the
 * artefacts prepared, QEMU launched (boot or resume), the guest provisioned over SSH.
 */
import type { ListrTask } from 'listr2';
import { cleanupScope } from '../cleanup.js';
import { imageTasks } from './image-build.js';
import { toolchainTask, type UpCtx } from './up/context.js';
import { instanceTask } from './up/instance.js';
import { prepareTasks } from './up/prepare.js';
import { launchTask } from './up/launch.js';
import { provisionTasks } from './up/provision.js';

export { newUpCtx, upSkipped, type KernelBoot, type UpCtx } from './up/context.js';

/**
 * One instance's `up` as one operation: what it makes and defers on `ctx.scope` (the VM container)
 * is undone when it fails or is interrupted, unless provision kept it (the guest answered).
 */
export async function inInstanceScope(ctx: UpCtx, run: () => Promise<unknown>): Promise<void> {
  await using scope = cleanupScope(`up ${ctx.name}`);
  ctx.scope = scope;
  await run();
}

export function upTasks(): ListrTask<UpCtx>[] {
  return [toolchainTask(), instanceTask(), ...prepareTasks(), launchTask(), ...provisionTasks()];
}

/**
 * Several instances at once (`up --name a --name b`): one task per instance, run concurrently, each
 * with its own context; the toolchain image is made (or found) once, before them.
 */
export function upSeveralTasks(ctxs: UpCtx[]): ListrTask<{ ctxs: UpCtx[] }>[] {
  return [
    {
      title: 'Toolchain image',
      task: async (_ctx, task) => {
        await task.newListr<UpCtx>(imageTasks<UpCtx>(), { concurrent: false, ctx: ctxs[0]! }).run();
        for (const c of ctxs.slice(1)) c.image = ctxs[0]!.image;
      },
    },
    {
      title: `Instances ${ctxs.map((c) => c.name).join(', ')}`,
      task: (_ctx, task) =>
        task.newListr(
          ctxs.map((c) => ({
            title: c.name,
            task: async (_x, sub) => {
              try {
                await inInstanceScope(c, () => sub.newListr<UpCtx>(upTasks().slice(1), { concurrent: false, ctx: c }).run());
              } catch (e) {
                c.failure = e;
                throw e;
              }
            },
          })),
          { concurrent: true, exitOnError: false },
        ),
    },
  ];
}
