/**
 * `up`'s provision phase, once QEMU runs: wait for the guest's SSH (from then on the guest outlives
 * any failure of this command), set its clock, install the booted kernel's module tree, mount the
 * shares. Each step runs over the guest's SSH.
 */
import type { ListrTask } from 'listr2';
import { PassThrough } from 'node:stream';
import { CopyError } from '../../errors.js';
import { writeState, exportsOf, STORED } from '../../vm/instance.js';
import { guestArgv, guestScript } from '../../ssh/guest-command.js';
import { guestStampPath } from '../../kernel/guest-tree.js';
import type { VmExec } from '../../vmhost/vm-host.js';
import { waitForSsh } from '../../vm/readiness.js';
import type { GuestSsh } from '../../ssh/client.js';
import { mountShares } from '../guest-shares.js';
import { upSsh, type KernelBoot, type UpCtx } from './context.js';

export function provisionTasks(): ListrTask<UpCtx>[] {
  return [
    {
      title: 'Wait for SSH with the pinned host key',
      task: async (ctx, task) => {
        const ssh = upSsh(ctx);
        const storage = ctx.storage!;
        const vm = ctx.vm!;
        ctx.bootSeconds = await waitForSsh({
          readConsole: () => storage.readTail(STORED.console, 64 * 1024, { vm, mountedAt: '/instance' }),
          timeoutMs: ctx.config.bootTimeoutSec * 1000,
          probe: () => ssh.capture(guestArgv(['true']), { connectTimeoutSec: 5, timeoutMs: 30_000 }),
          alive: () => vm.isRunning(),
          onProgress: (line) => {
            if (line) task.output = line;
          },
        });
        // The guest answers: from here a failing step (the clock, shares, the module tree) fails the command, and the guest runs on.
        ctx.scope?.keep();
        // A resumed guest's clock stands where it was suspended, and a directly booted kernel may not read the RTC.
        if (ctx.resumed || ctx.kernel) {
          const set = await ssh.capture(guestArgv(['date', '-u', '-s', `@${(Date.now() / 1000).toFixed(3)}`], { root: true }), { timeoutMs: 30_000 });
          if (set.exitCode !== 0) ctx.notes.push(`guest clock not set: ${set.stderr.trim().split('\n').pop() ?? ''}`);
        }
        await ctx.dropping;
        task.title = `SSH ready (${ctx.bootSeconds.toFixed(1)} s${ctx.resumed ? ', resumed' : ''})`;
      },
    },
    {
      title: 'Kernel modules and build tree in the guest',
      skip: (ctx) => (ctx.kernel ? false : "the image's own kernel"),
      task: async (ctx, task) => {
        const kernel = ctx.kernel!;
        if (!kernel.guestTree) {
          ctx.notes.push(`no /lib/modules/${kernel.release} for the guest: run \`m5dev kernel build --version ${kernel.version}\` to make it`);
          task.skip(`the build of ${kernel.release} has no guest module tree (made by \`m5dev kernel build\`)`);
          return;
        }
        const ssh = upSsh(ctx);
        const inGuest = (await ssh.capture(guestArgv(['cat', `/${guestStampPath(kernel.release)}`]), { timeoutMs: 30_000 })).stdout.trim();
        if (inGuest === kernel.guestTree.stamp) {
          task.skip(`already in the guest: /lib/modules/${kernel.release}, build → /usr/src/linux-headers-${kernel.release}`);
          return;
        }
        await installGuestTree(ctx.vm!, ssh, kernel);
        task.title = `Installed /lib/modules/${kernel.release} (modules.dep) and its build tree in the guest`;
      },
    },
    {
      title: 'Mount the shared directories in the guest',
      skip: (ctx) => (ctx.config.shares.length ? false : 'no shares (up --share HOST_DIR[:GUEST_PATH])'),
      task: async (ctx, task) => {
        try {
          ctx.notes.push(...(await mountShares(upSsh(ctx), exportsOf(ctx.state!))));
        } catch (e) {
          // The guest runs on without them: the instance stops asking for them (a later up, a suspend).
          ctx.state = { ...ctx.state!, shares: undefined, exports: undefined };
          writeState(ctx.files, ctx.state);
          throw e;
        }
        task.title = `Shared ${ctx.config.shares.map((s) => `${s.host} → ${s.guest}${s.readOnly ? ' (read-only)' : ''}`).join(', ')} (9p)`;
      },
    },
  ];
}

/** The kernel storage's guest tree, packed in the VM container (which mounts it), unpacked in the guest. */
export async function installGuestTree(vm: VmExec, ssh: GuestSsh, kernel: KernelBoot): Promise<void> {
  const stream = new PassThrough();
  const [packed, unpacked] = await Promise.all([
    vm.pipe(['tar', '-cz', '-C', kernel.guestTree!.dir, 'lib', 'usr'], { output: stream }),
    ssh.pipe(guestScript('installKernelTree', [kernel.release], { root: true }), { input: stream }),
  ]);
  if (packed.exitCode !== 0 || unpacked.exitCode !== 0) {
    throw new CopyError(`installing /lib/modules/${kernel.release} in the guest failed`, `${packed.stderr}${unpacked.stderr}`.trim());
  }
}
