/**
 * `up`'s launch phase: the VM container with QEMU, booting afresh or resuming a saved state (and
 * booting afresh when the resume fails), on a free SSH port; it records the instance's state.
 */
import { existsSync, lstatSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { mountLabel, type Mount } from '../../docker/mounts.js';
import { NetworkUnavailableError, PortInUseError, UsageError, VmStateError } from '../../errors.js';
import { MESSAGES } from '../../messages.js';
import { GIT_DIR, mappedFileNote, shareExports, shareMounts, shareTag, type NinepExport } from '../../vm/shares.js';
import { instanceRecord, IN_CONTAINER, CACHE_IN_CONTAINER, RAM_TMPFS, STORED, type InstanceState } from '../../vm/instance.js';
import { KERNELS_MOUNT } from '../../kernel/cache.js';
import { chooseMachine, type MachineChoice } from '../../vm/machine.js';
import { qemuArgs } from '../../vm/qemu-args.js';
import { GUEST_SSH_FORWARD } from '../../vm/guest-access.js';
import { firstFreePort, isPortFree } from '../../vm/ports.js';
import { lastConsoleLine } from '../../vm/readiness.js';
import { isInterrupting, type CleanupScope } from '../../cleanup.js';
import { withQmp } from '../../vm/qmp.js';
import type { RunningVm } from '../../vmhost/vm-host.js';
import type { Storage } from '../../engine/storage.js';
import { removeInVm } from '../../vmhost/vm-files.js';
import { loadStream, loadSteps, restoringRam, savedFilesIn, SAVED_FORMAT, type ResumePlan, type SavedFormat, type SavedRecord, dropSaved, isSuspended, launchKey, portableKey, resumePlan, viewSaved } from '../../vm/saved-state.js';
import { M5OPS_PLUGIN } from '../m5ops.js';
import { probeShareModels } from '../share-probe.js';
import type { Reporter } from '../report.js';
import type { Found } from './instance.js';
import type { Prepared } from './prepare.js';

/**
 * What the guest boots from: a cloud image's instance disk (raw or overlay, as the config says) with
 * its cloud-init seed, or a job's disk image (`m5dev run`: a qcow2 overlay on the user's image, no
 * seed), which QEMU powers off at the guest's first fail or panic, or its `exits`th exit.
 */
export type GuestMedia = { kind: 'cloud' } | { kind: 'job'; exits: number };

const CLOUD: GuestMedia = { kind: 'cloud' };

/** The VM as launched: QEMU runs, the instance's state records how. */
export interface Running {
  found: Found;
  vm: RunningVm;
  state: InstanceState;
  sshPort: number;
  resumed: boolean;
  /** Removal of a resumed state's memory files, running while the guest comes up. */
  dropping: Promise<void>;
  /** The machine without the instance's own paths (a checkpoint records it). */
  portableKey: string;
}

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
  /** The machine without the instance's own paths: a checkpoint restores only into the same one. */
  portable: string;
}

/** The machine (where the VM runs: the engine's architecture, /dev/kvm there), the mounts, QEMU's arguments. */
async function launchSpec(p: Prepared, media: GuestMedia): Promise<LaunchSpec> {
  const { toolchain, placement, config, kernel, notes, request } = p.found;
  const host = placement.host;
  const platform = await host.platform();
  const machine = chooseMachine({
    requested: config.accel,
    hostArch: platform.arch,
    kvmUsable: config.accel !== 'tcg' ? await host.kvmUsable(toolchain.tag) : false,
    cpuOverride: config.cpu,
  });
  const binds = [placement.storage.bind('/instance'), placement.blobs.bind(CACHE_IN_CONTAINER, true)];
  if (kernel) binds.push(placement.kernels.bind(KERNELS_MOUNT, true));
  const shareModels = await probeShareModels(toolchain.engine, toolchain.tag, request.home.root, config.shares);
  config.shares.forEach((share, i) => shareModels[i] === 'mapped-file' && notes.push(mappedFileNote(share)));
  // A writable share's git metadata is read-only for QEMU itself (a bind over it in the VM container:
  // guest root cannot write it by unmounting the guest's view or mounting the share's tag again),
  // and exported read-only over the share. A resume keeps what its launch decided (the launch key).
  const recorded = p.saved && p.state.exports;
  const hasGit = (i: number) => (recorded ? recorded.some((e) => e.tag === `${shareTag(i)}git`) : isRealDir(join(config.shares[i]?.host ?? '/nonexistent', GIT_DIR)));
  binds.push(...shareMounts(config.shares, hasGit));
  const exports = shareExports(config.shares, shareModels, hasGit);
  const overlay = media.kind === 'job' || config.disk === 'overlay';
  const cmd = qemuArgs({
    machine,
    cpus: config.cpus,
    memoryMiB: config.memoryMiB,
    flash0: IN_CONTAINER.flash0,
    flash1: IN_CONTAINER.flash1,
    disk: { path: overlay ? IN_CONTAINER.diskOverlay : IN_CONTAINER.diskRaw, format: overlay ? 'qcow2' : 'raw' },
    seed: media.kind === 'cloud' ? { path: IN_CONTAINER.seed, format: 'qcow2' } : undefined,
    guestSshForward: GUEST_SSH_FORWARD,
    consoleLog: IN_CONTAINER.console,
    qmpSocket: IN_CONTAINER.qmp,
    ramFile: config.ramFile ? RAM_TMPFS.file : undefined,
    kernel: kernel ? { image: kernel.image, append: kernel.append, initrd: kernel.initrd } : undefined,
    shares: exports,
    tcgCacheMiB: config.tcgCacheMiB,
    m5ops: {
      plugin: M5OPS_PLUGIN,
      addr: config.m5opsAddr,
      dir: '/instance',
      exit: media.kind === 'job' ? 'poweroff' : config.m5opsExit,
      stats: config.m5opsStats,
      exits: media.kind === 'job' ? media.exits : undefined,
      checkpoints: media.kind === 'job' || config.m5opsCheckpoints,
      params: config.m5opsParams,
    },
    runAs: placement.owner,
  });
  const portable = portableKey({ image: toolchain.tag, cmd, targets: binds.map((b) => `${b.target}${b.readOnly ? ':ro' : ''}`) });
  return { machine, binds, cmd, exports, key: launchKey({ image: toolchain.tag, cmd, binds: binds.map(mountLabel) }), portable };
}

/**
 * A directory itself, not a link to one: a share's `.git` that is a link (a cloned tree may hold one,
 * the guest may make one) is never followed on the host, by the bind or by QEMU's export.
 */
const isRealDir = (p: string): boolean => existsSync(p) && lstatSync(p).isDirectory();

/** Resume the saved state, or boot: a saved state of other settings refuses; one that cannot resume is dropped, with a note. */
async function savedStatePlan(p: Prepared, spec: LaunchSpec): Promise<ResumePlan> {
  const { placement, notes, request } = p.found;
  const storage = placement.storage;
  const view = await viewSaved(storage);
  // A checkpoint copied in from another instance was saved by another launch: it resumes into this
  // one when the machine is the same, wherever its files live.
  if (p.restore && p.restore.portableKey !== spec.portable) {
    throw new UsageError(`the checkpoint was taken on another machine (CPU, memory, kernel, m5ops base or toolchain image differ)`, 'Restore it with the settings of the run that took it: the same --cpus, --memory, --kernel, --m5ops-addr and toolchain.');
  }
  const saved = p.restore && p.saved ? { ...p.saved, launchKey: spec.key } : p.saved;
  const plan = resumePlan(saved, savedFilesIn(view, saved), { launchKey: spec.key, stamps: view.stamps }, request.noResume && !p.restore ? '--no-resume' : false);
  if (plan.kind === 'refuse') throw new UsageError(MESSAGES.suspendedOther(request.name, plan.reason), MESSAGES.suspendedOtherHint);
  // Nothing to resume: drop whatever is there (a memory file left without its record is garbage).
  if (plan.kind === 'discard' || (plan.kind === 'none' && view.saved.size > 0)) await dropSaved(storage);
  if (plan.kind === 'none' && view.saved.size > 0) notes.push(`the files of a suspend that did not finish were dropped (${[...view.saved].sort().join(', ')})`);
  if (plan.kind === 'discard') notes.push(`saved state discarded: ${plan.reason}`);
  return plan;
}

/** The launch record: the instance's state as it is launched, written before the container starts. */
function recordLaunch(p: Prepared, spec: LaunchSpec, sshPort: number): InstanceState {
  const { config, kernel, placement, files, toolchain } = p.found;
  const state: InstanceState = {
    ...p.state,
    sshPort,
    cpus: config.cpus,
    memoryMiB: config.memoryMiB,
    accel: spec.machine.accel,
    cpu: spec.machine.cpu,
    kernel: kernel?.release,
    kernelVersion: kernel?.version,
    ramFile: config.ramFile,
    tcgCacheMiB: config.tcgCacheMiB,
    shares: config.shares.length ? config.shares : undefined,
    exports: spec.exports.length ? spec.exports : undefined,
    m5ops: { addr: config.m5opsAddr, exit: config.m5opsExit, stats: config.m5opsStats, params: config.m5opsParams.length ? config.m5opsParams : undefined, checkpoints: config.m5opsCheckpoints || undefined },
    image: toolchain.tag,
    engine: placement.record,
    launchKey: spec.key,
    portableKey: spec.portable,
  };
  return instanceRecord.launched(files, state);
}

/** One attempt to start the VM container with QEMU's command `qemu` on `sshPort`; removed again if this up fails before the guest answers. */
type Starter = (qemu: string[], sshPort: number) => Promise<RunningVm>;

function starter(p: Prepared, spec: LaunchSpec, scope: CleanupScope): Starter {
  const { placement, config, request, toolchain } = p.found;
  return async (qemu, sshPort) => {
    await placement.storage.remove([STORED.console]);
    return placement.host.launch({
      instance: request.name,
      image: toolchain.tag,
      cmd: qemu,
      mounts: spec.binds,
      sshPort,
      guestSshForward: GUEST_SSH_FORWARD,
      kvm: spec.machine.accel === 'kvm',
      tmpfs: config.ramFile ? { path: RAM_TMPFS.dir, sizeMiB: config.memoryMiB + 64 } : undefined,
      stillNeeded: () => isSuspended(placement.storage),
    }, scope);
  };
}

/**
 * Resume: QEMU waiting for the saved state, loaded and continued in one round trip. The VM when the
 * guest runs on; undefined when it could not resume (the state dropped, a note says why: boot afresh).
 */
async function resumeSaved(p: Prepared, spec: LaunchSpec, record: SavedRecord, start: () => Promise<RunningVm>): Promise<RunningVm | undefined> {
  const storage = p.found.placement.storage;
  let vm: RunningVm | undefined;
  try {
    vm = await start();
    await continueSaved(vm, storage, record.format);
    return vm;
  } catch (e) {
    // Ctrl-C: the container's cleanup removes it; a state not yet consumed stays resumable. So it
    // does when the engine could not start the VM at all (no port, no network): nothing was tried.
    if (isInterrupting() || e instanceof PortInUseError || e instanceof NetworkUnavailableError) throw e;
    // A checkpoint restore has no boot to fall back on: the job would start over on the checkpoint's disk.
    if (p.restore) throw new VmStateError(`the checkpoint could not be resumed: ${(e as Error).message}`, '', 'Take the checkpoint again (`m5dev run` of the job that takes it); its files may be damaged.');
    // QEMU's last word (a RAM file it refused, a stream it could not load) says more than the QMP error.
    const why = vm ? lastConsoleLine(await vm.console().catch(() => '')) : '';
    if (vm) await vm.remove();
    await dropSaved(storage);
    p.found.notes.push(`could not resume (${why || (e as Error).message}); booted afresh`);
    return undefined;
  }
}

/** Launch QEMU for a prepared instance: resume its saved guest when it fits this launch, else boot. */
export function launch(report: Reporter, p: Prepared, scope: CleanupScope, media: GuestMedia = CLOUD): Promise<Running> {
  return report.step('Start QEMU in its container', async (s) => {
    const { found } = p;
    const spec = await launchSpec(p, media);
    const plan = await savedStatePlan(p, spec);
    const port = new PortChoice(found, await pickPort(found));
    let state = recordLaunch(p, spec, port.value);
    const start = starter(p, spec, scope);
    let vm: RunningVm | undefined;
    let dropping: Promise<void> = Promise.resolve();
    if (plan.kind === 'resume') {
      s.output(`resuming the guest saved at ${plan.record.savedAt}`);
      const qemu = [...spec.cmd, ...RESUME_ARGS];
      vm = await resumeSaved(p, spec, plan.record, () => port.startOn((n) => start(plan.record.format === SAVED_FORMAT.ramFile ? restoringRam(IN_CONTAINER.ram, RAM_TMPFS.file, qemu) : qemu, n)));
      // The record went before `cont` (loadSteps): the memory files left are garbage, removed while the guest comes up.
      // A failure leaves only garbage, which the next up drops (nothing to resume without the record).
      if (vm) dropping = dropSaved(found.placement.storage).catch(() => undefined);
    }
    const resumed = vm !== undefined;
    vm ??= await port.startOn((n) => start(spec.cmd, n));
    if (port.value !== state.sshPort) state = instanceRecord.portMoved(found.files, state, port.value);
    const how = resumed ? 'QEMU resumed the suspended guest' : 'QEMU started';
    s.title(`${how} (${spec.machine.accel}, -cpu ${spec.machine.cpu}, ${found.config.cpus} vCPU, ${found.config.memoryMiB} MiB) on 127.0.0.1:${port.value}${found.notes.length ? `; ${found.notes.join('; ')}` : ''}`);
    return { found, vm, state, sshPort: port.value, resumed, dropping, portableKey: spec.portable };
  });
}

/**
 * An explicit port must be free; otherwise the instance's last port, else the first free from the
 * default. Free is decided where the port is published: on a local engine by trying it here, on a
 * remote one by the engine itself (see PortChoice.startOn).
 */
async function pickPort(found: Found): Promise<number> {
  const { config, request, state, placement } = found;
  const explicit = request.explicit.has('sshPort');
  const wanted = explicit ? config.sshPort : state?.sshPort ?? config.sshPort;
  const host = placement.host;
  const others = new Set((await host.list()).map((o) => o.sshPort));
  if (!host.features.loopbackIsClients) {
    if (explicit || !others.has(wanted)) return wanted;
    return (await firstFreePort(wanted + 1, others, 100, async () => true)) ?? wanted;
  }
  if (await isPortFree(wanted)) return wanted;
  if (explicit) throw new PortInUseError(wanted);
  const free = await firstFreePort(wanted + 1, others);
  if (free === undefined) throw new PortInUseError(wanted);
  return free;
}

/** The SSH port a launch publishes: a port the engine refuses moves on to the next one unless it was asked for. */
class PortChoice {
  constructor(
    private readonly found: Found,
    public value: number,
  ) {}

  async startOn(start: (port: number) => Promise<RunningVm>): Promise<RunningVm> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await start(this.value);
      } catch (e) {
        if (!(e instanceof PortInUseError) || this.found.request.explicit.has('sshPort') || attempt >= 20) throw e;
        this.value++;
      }
    }
  }
}
