/**
 * `up`'s launch phase: the VM container with QEMU, booting afresh or resuming a saved state (and
 * booting afresh when the resume fails), on a free SSH port; it records the instance's state.
 */
import type { ListrTask } from 'listr2';
import { existsSync, lstatSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { mountLabel, type Mount } from '../../docker/mounts.js';
import { NetworkUnavailableError, PortInUseError, UsageError } from '../../errors.js';
import { MESSAGES } from '../../messages.js';
import { GIT_DIR, mappedFileNote, shareExports, shareMounts, shareTag, type NinepExport } from '../../vm/shares.js';
import { writeState, IN_CONTAINER, CACHE_IN_CONTAINER, RAM_TMPFS, STORED } from '../../vm/instance.js';
import { KERNELS_MOUNT } from '../../kernel/cache.js';
import { chooseMachine, type MachineChoice } from '../../vm/machine.js';
import { qemuArgs } from '../../vm/qemu-args.js';
import { GUEST_SSH_FORWARD } from '../../vm/guest-access.js';
import { firstFreePort, isPortFree } from '../../vm/ports.js';
import { lastConsoleLine } from '../../vm/readiness.js';
import { isInterrupting } from '../../cleanup.js';
import { withQmp } from '../../vm/qmp.js';
import type { RunningVm } from '../../vmhost/vm-host.js';
import type { Storage } from '../../engine/storage.js';
import { removeInVm } from '../../vmhost/vm-files.js';
import { loadStream, loadSteps, restoringRam, savedFilesIn, SAVED_FORMAT, type ResumePlan, type SavedFormat, type SavedRecord, dropSaved, isSuspended, launchKey, resumePlan, viewSaved } from '../../vm/saved-state.js';
import { M5OPS_PLUGIN } from '../m5ops.js';
import { probeShareModels } from '../share-probe.js';
import { baseState, upSkipped, type UpCtx } from './context.js';

/** Start paused, waiting for an incoming state (a RAM file's ignore-shared capability is set first). */
const RESUME_ARGS = ['-S', '-incoming', 'defer'];

/** One QMP session: load the saved state (with a RAM file, only the devices), consume the record, run. */
async function continueSaved(vm: RunningVm, storage: Storage, format: SavedFormat): Promise<void> {
  // The record goes between load and `cont`: on a local directory an unlink here, else an rm beside QEMU.
  const local = storage.clientPath(STORED.vmStateRecord);
  const unlink = local ? async () => rmSync(local, { force: true }) : (path: string) => removeInVm(vm, path);
  const stream = loadStream(IN_CONTAINER.vmState);
  await withQmp(() => vm.monitor(120, [stream]), (q) => q.run(loadSteps(format, stream, IN_CONTAINER.vmStateRecord), unlink));
}

/** What QEMU is started with: decided once, the same for a boot and a resume (whose key must match). */
interface LaunchSpec {
  machine: MachineChoice;
  binds: Mount[];
  cmd: string[];
  /** The shares' 9p exports (recorded: provision and suspend mount and unmount these). */
  exports: NinepExport[];
  /** The launch key: a saved state resumes only into the same key (vm/saved-state.ts). */
  key: string;
}

/** The machine (where the VM runs: the engine's architecture, /dev/kvm there), the mounts, QEMU's arguments. */
async function launchSpec(ctx: UpCtx): Promise<LaunchSpec> {
  const engine = ctx.image.engine!;
  const host = ctx.host!;
  const platform = await host.platform();
  const machine = chooseMachine({
    requested: ctx.config.accel,
    hostArch: platform.arch,
    kvmUsable: ctx.config.accel !== 'tcg' ? await host.kvmUsable(ctx.image.tag!) : false,
    cpuOverride: ctx.config.cpu,
  });
  const binds = [ctx.storage!.bind('/instance'), ctx.blobs!.bind(CACHE_IN_CONTAINER, true)];
  if (ctx.kernel) binds.push(ctx.kernels!.bind(KERNELS_MOUNT, true));
  const shareModels = await probeShareModels(engine, ctx.image.tag!, ctx.home.root, ctx.config.shares);
  shareModels.forEach((m, i) => m === 'mapped-file' && ctx.notes.push(mappedFileNote(ctx.config.shares[i]!)));
  // A writable share's git metadata is read-only for QEMU itself (a bind over it in the VM container:
  // guest root cannot write it by unmounting the guest's view or mounting the share's tag again),
  // and exported read-only over the share. A resume keeps what its launch decided (the launch key).
  const recorded = ctx.saved && ctx.state?.exports;
  const hasGit = (i: number) => (recorded ? recorded.some((e) => e.tag === `${shareTag(i)}git`) : isRealDir(join(ctx.config.shares[i]!.host, GIT_DIR)));
  binds.push(...shareMounts(ctx.config.shares, hasGit));
  const exports = shareExports(ctx.config.shares, shareModels, hasGit);
  const cmd = qemuArgs({
    machine,
    cpus: ctx.config.cpus,
    memoryMiB: ctx.config.memoryMiB,
    flash0: IN_CONTAINER.flash0,
    flash1: IN_CONTAINER.flash1,
    disk: { path: ctx.config.disk === 'raw' ? IN_CONTAINER.diskRaw : IN_CONTAINER.diskOverlay, format: ctx.config.disk === 'raw' ? 'raw' : 'qcow2' },
    seed: { path: IN_CONTAINER.seed, format: 'qcow2' },
    guestSshForward: GUEST_SSH_FORWARD,
    consoleLog: IN_CONTAINER.console,
    qmpSocket: IN_CONTAINER.qmp,
    ramFile: ctx.config.ramFile ? RAM_TMPFS.file : undefined,
    kernel: ctx.kernel ? { image: ctx.kernel.image, append: ctx.kernel.append } : undefined,
    shares: exports,
    tcgCacheMiB: ctx.config.tcgCacheMiB,
    m5ops: { plugin: M5OPS_PLUGIN, addr: ctx.config.m5opsAddr, dir: '/instance', exit: ctx.config.m5opsExit, stats: ctx.config.m5opsStats },
    runAs: ctx.placement!.owner,
  });
  return { machine, binds, cmd, exports, key: launchKey({ image: ctx.image.tag!, cmd, binds: binds.map(mountLabel) }) };
}

/**
 * A directory itself, not a link to one: a share's `.git` that is a link (a cloned tree may hold one,
 * the guest may make one) is never followed on the host, by the bind or by QEMU's export.
 */
const isRealDir = (p: string): boolean => existsSync(p) && lstatSync(p).isDirectory();

/** Resume the saved state, or boot: a saved state of other settings refuses; one that cannot resume is dropped, with a note. */
async function savedStatePlan(ctx: UpCtx, spec: LaunchSpec): Promise<ResumePlan> {
  const storage = ctx.storage!;
  const view = await viewSaved(storage);
  const plan = resumePlan(ctx.saved, savedFilesIn(view, ctx.saved), { launchKey: spec.key, stamps: view.stamps }, ctx.noResume ? '--no-resume' : false);
  if (plan.kind === 'refuse') throw new UsageError(MESSAGES.suspendedOther(ctx.name, plan.reason), MESSAGES.suspendedOtherHint);
  // Nothing to resume: drop whatever is there (a memory file left without its record is garbage).
  if (plan.kind === 'discard' || (plan.kind === 'none' && view.saved.size > 0)) await dropSaved(storage);
  if (plan.kind === 'none' && view.saved.size > 0) ctx.notes.push(`the files of a suspend that did not finish were dropped (${[...view.saved].sort().join(', ')})`);
  if (plan.kind === 'discard') ctx.notes.push(`saved state discarded: ${plan.reason}`);
  return plan;
}

/** The launch record: the instance's state as it is launched, written before the container starts. */
function recordLaunch(ctx: UpCtx, spec: LaunchSpec): void {
  ctx.state = {
    ...(ctx.state ?? baseState(ctx)),
    sshPort: ctx.sshPort!,
    cpus: ctx.config.cpus,
    memoryMiB: ctx.config.memoryMiB,
    accel: spec.machine.accel,
    cpu: spec.machine.cpu,
    kernel: ctx.kernel?.release,
    kernelVersion: ctx.kernel?.version,
    ramFile: ctx.config.ramFile,
    tcgCacheMiB: ctx.config.tcgCacheMiB,
    shares: ctx.config.shares.length ? ctx.config.shares : undefined,
    exports: spec.exports.length ? spec.exports : undefined,
    m5ops: { addr: ctx.config.m5opsAddr, exit: ctx.config.m5opsExit, stats: ctx.config.m5opsStats },
    image: ctx.image.tag,
    engine: ctx.placement!.record,
    launchKey: spec.key,
  };
  writeState(ctx.files, ctx.state);
}

/** The VM container with QEMU's command `qemu`; removed again if this up fails before the guest answers. */
async function startVm(ctx: UpCtx, spec: LaunchSpec, qemu: string[]): Promise<void> {
  await ctx.storage!.remove([STORED.console]);
  ctx.vm = await ctx.host!.launch({
    instance: ctx.name,
    image: ctx.image.tag!,
    cmd: qemu,
    mounts: spec.binds,
    sshPort: ctx.sshPort!,
    guestSshForward: GUEST_SSH_FORWARD,
    kvm: spec.machine.accel === 'kvm',
    tmpfs: ctx.config.ramFile ? { path: RAM_TMPFS.dir, sizeMiB: ctx.config.memoryMiB + 64 } : undefined,
    stillNeeded: () => isSuspended(ctx.storage!),
  }, ctx.scope!);
}

/**
 * Resume: QEMU waiting for the saved state, loaded and continued in one round trip. True when the
 * guest runs on; false when it could not resume (the state dropped, a note says why: boot afresh).
 */
async function resumeSaved(ctx: UpCtx, spec: LaunchSpec, record: SavedRecord): Promise<boolean> {
  const storage = ctx.storage!;
  try {
    const qemu = [...spec.cmd, ...RESUME_ARGS];
    await startOnFreePort(ctx, () => startVm(ctx, spec, record.format === SAVED_FORMAT.ramFile ? restoringRam(IN_CONTAINER.ram, RAM_TMPFS.file, qemu) : qemu));
    await continueSaved(ctx.vm!, storage, record.format);
    // The record went before `cont` (loadSteps): the memory files left are garbage, removed while SSH comes up.
    // A failure leaves only garbage, which the next up drops (nothing to resume without the record).
    ctx.dropping = dropSaved(storage).catch(() => undefined);
    return true;
  } catch (e) {
    // Ctrl-C: the container's cleanup removes it; a state not yet consumed stays resumable. So it
    // does when the engine could not start the VM at all (no port, no network): nothing was tried.
    if (isInterrupting() || e instanceof PortInUseError || e instanceof NetworkUnavailableError) throw e;
    // QEMU's last word (a RAM file it refused, a stream it could not load) says more than the QMP error.
    const vm = ctx.vm;
    const why = vm ? lastConsoleLine(await vm.console().catch(() => '')) : '';
    if (vm) await vm.remove();
    ctx.vm = undefined;
    await dropSaved(storage);
    ctx.notes.push(`could not resume (${why || (e as Error).message}); booted afresh`);
    return false;
  }
}

export function launchTask(): ListrTask<UpCtx> {
  return {
    title: 'Start QEMU in its container',
    skip: upSkipped.running,
    task: async (ctx, task) => {
      ctx.sshPort = await pickPort(ctx);
      const spec = await launchSpec(ctx);
      ctx.machine = spec.machine;
      const plan = await savedStatePlan(ctx, spec);
      recordLaunch(ctx, spec);
      if (plan.kind === 'resume') {
        task.output = `resuming the guest saved at ${plan.record.savedAt}`;
        ctx.resumed = await resumeSaved(ctx, spec, plan.record);
      }
      if (!ctx.resumed) await startOnFreePort(ctx, () => startVm(ctx, spec, spec.cmd));
      const how = ctx.resumed ? 'QEMU resumed the suspended guest' : 'QEMU started';
      task.title = `${how} (${spec.machine.accel}, -cpu ${spec.machine.cpu}, ${ctx.config.cpus} vCPU, ${ctx.config.memoryMiB} MiB) on 127.0.0.1:${ctx.sshPort}${ctx.notes.length ? `; ${ctx.notes.join('; ')}` : ''}`;
    },
  };
}

/**
 * An explicit port must be free; otherwise the instance's last port, else the first free from the
 * default. Free is decided where the port is published: on a local engine by trying it here, on a
 * remote one by the engine itself (see startOnFreePort).
 */
async function pickPort(ctx: UpCtx): Promise<number> {
  const wanted = ctx.explicit.has('sshPort') ? ctx.config.sshPort : ctx.state?.sshPort ?? ctx.config.sshPort;
  const others = new Set((await ctx.host!.list()).map((o) => o.sshPort));
  if (!ctx.host!.features.loopbackIsClients) {
    if (ctx.explicit.has('sshPort') || !others.has(wanted)) return wanted;
    return (await firstFreePort(wanted + 1, others, 100, async () => true)) ?? wanted;
  }
  if (await isPortFree(wanted)) return wanted;
  if (ctx.explicit.has('sshPort')) throw new PortInUseError(wanted);
  const free = await firstFreePort(wanted + 1, others);
  if (free === undefined) throw new PortInUseError(wanted);
  return free;
}

/** Start the VM container; a port the engine refuses moves on to the next one unless it was asked for. */
async function startOnFreePort(ctx: UpCtx, start: () => Promise<void>): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await start();
      return;
    } catch (e) {
      if (!(e instanceof PortInUseError) || ctx.explicit.has('sshPort') || attempt >= 20) throw e;
      ctx.sshPort = ctx.sshPort! + 1;
      ctx.state = { ...ctx.state!, sshPort: ctx.sshPort };
      writeState(ctx.files, ctx.state);
    }
  }
}
