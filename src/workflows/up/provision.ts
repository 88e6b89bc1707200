/**
 * `up`'s provision phase, once QEMU runs: wait for the guest's SSH (from then on the guest outlives
 * any failure of this command), set its clock, install the booted kernel's module tree, mount the
 * shares. Each step runs over the guest's SSH.
 */
import { PassThrough } from 'node:stream';
import { CopyError } from '../../errors.js';
import { instanceRecord, exportsOf, STORED } from '../../vm/instance.js';
import { guestArgv, guestScript } from '../../ssh/guest-command.js';
import { guestStampPath } from '../../kernel/guest-tree.js';
import type { VmExec } from '../../vmhost/vm-host.js';
import { waitForSsh } from '../../vm/readiness.js';
import { guestSsh } from '../../ssh/guest.js';
import type { GuestSsh } from '../../ssh/client.js';
import type { CleanupScope } from '../../cleanup.js';
import { mountShares } from '../guest-shares.js';
import { stepUnless, type Reporter } from '../report.js';
import type { Running } from './launch.js';

/** The guest answers over SSH, provisioned. */
export interface Provisioned {
  running: Running;
  bootSeconds: number;
}

export async function provision(report: Reporter, running: Running, scope: CleanupScope): Promise<Provisioned> {
  const { found, vm } = running;
  const { placement, config, kernel, notes, files } = found;
  const ssh = guestSsh(files, running.state, running.sshPort, vm);
  const bootSeconds = await report.step('Wait for SSH with the pinned host key', async (s) => {
    const seconds = await waitForSsh({
      readConsole: () => placement.storage.readTail(STORED.console, 64 * 1024, { vm, mountedAt: '/instance' }),
      timeoutMs: config.bootTimeoutSec * 1000,
      probe: () => ssh.capture(guestArgv(['true']), { connectTimeoutSec: 5, timeoutMs: 30_000 }),
      alive: () => vm.isRunning(),
      onProgress: (line) => {
        if (line) s.output(line);
      },
    });
    // The guest answers: from here a failing step (the clock, shares, the module tree) fails the command, and the guest runs on.
    scope.keep();
    // A resumed guest's clock stands where it was suspended, and a directly booted kernel may not read the RTC.
    if (running.resumed || kernel) {
      const set = await ssh.capture(guestArgv(['date', '-u', '-s', `@${(Date.now() / 1000).toFixed(3)}`], { root: true }), { timeoutMs: 30_000 });
      if (set.exitCode !== 0) notes.push(`guest clock not set: ${set.stderr.trim().split('\n').pop() ?? ''}`);
    }
    await running.dropping;
    s.title(`SSH ready (${seconds.toFixed(1)} s${running.resumed ? ', resumed' : ''})`);
    return seconds;
  });
  const moduleTree = "Kernel modules and build tree in the guest";
  if (!kernel) await report.skipped(moduleTree, "the image's own kernel");
  else {
    await report.step(moduleTree, async (s) => {
      if (!kernel.guestTree) {
        notes.push(`no /lib/modules/${kernel.release} for the guest: run \`m5dev kernel build --version ${kernel.version}\` to make it`);
        return s.skip(`the build of ${kernel.release} has no guest module tree (made by \`m5dev kernel build\`)`);
      }
      const inGuest = (await ssh.capture(guestArgv(['cat', `/${guestStampPath(kernel.release)}`]), { timeoutMs: 30_000 })).stdout.trim();
      if (inGuest === kernel.guestTree.stamp) return s.skip(`already in the guest: /lib/modules/${kernel.release}, build → /usr/src/linux-headers-${kernel.release}`);
      await installGuestTree(vm, ssh, kernel.release, kernel.guestTree.dir);
      s.title(`Installed /lib/modules/${kernel.release} (modules.dep) and its build tree in the guest`);
    });
  }
  await stepUnless(report, 'Mount the shared directories in the guest', config.shares.length === 0 && 'no shares (up --share HOST_DIR[:GUEST_PATH])', async (s) => {
    try {
      notes.push(...(await mountShares(ssh, exportsOf(running.state))));
    } catch (e) {
      // The guest runs on without them: the instance stops asking for them (a later up, a suspend).
      instanceRecord.sharesDropped(files, running.state);
      throw e;
    }
    s.title(`Shared ${config.shares.map((x) => `${x.host} → ${x.guest}${x.readOnly ? ' (read-only)' : ''}`).join(', ')} (9p)`);
  });
  return { running, bootSeconds };
}

/** The kernel storage's guest tree, packed in the VM container (which mounts it), unpacked in the guest. */
export async function installGuestTree(vm: VmExec, ssh: GuestSsh, release: string, treeDir: string): Promise<void> {
  const stream = new PassThrough();
  const [packed, unpacked] = await Promise.all([
    vm.pipe(['tar', '-cz', '-C', treeDir, 'lib', 'usr'], { output: stream }),
    ssh.pipe(guestScript('installKernelTree', [release], { root: true }), { input: stream }),
  ]);
  if (packed.exitCode !== 0 || unpacked.exitCode !== 0) {
    throw new CopyError(`installing /lib/modules/${release} in the guest failed`, `${packed.stderr}${unpacked.stderr}`.trim());
  }
}
