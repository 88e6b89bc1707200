/**
 * `up`'s first phase: find the instance (its state, its storages on the engine, a VM container
 * that runs, a suspended state) and reconcile it with what was asked (vm/reconcile.ts): attach to
 * the running guest, or start one (boot, or resume a saved guest), or refuse before anything is made.
 */
import { existsSync, statSync } from 'node:fs';
import { ShareError, UsageError } from '../../errors.js';
import type { VmConfig } from '../../config.js';
import type { HomeLayout } from '../../paths.js';
import { reconcile } from '../../vm/reconcile.js';
import { openInstance, readState, STORED, type InstanceFiles, type InstanceState } from '../../vm/instance.js';
import { diskName } from '../../vm/prepare.js';
import { checkError, storageDiskCheck } from '../../engine/doctor.js';
import type { FileStamp } from '../../engine/storage.js';
import { placeInstance, type Placement } from '../../vmhost/placement.js';
import type { RunningVm, VmEntry } from '../../vmhost/vm-host.js';
import { finishPending, readSaved, type SavedRecord } from '../../vm/saved-state.js';
import { kernelBootFor, type KernelBoot } from '../kernel-boot.js';
import type { Toolchain } from '../image-build.js';
import type { Reporter } from '../report.js';

/** What `up` was asked for one instance. */
export interface UpRequest {
  name: string;
  home: HomeLayout;
  config: VmConfig;
  /** Settings given on the command line (they win over what the instance was created with). */
  explicit: ReadonlySet<keyof VmConfig>;
  /** `--kernel VERSION`: boot that built kernel. */
  kernelVersion?: string;
  /** --no-resume: drop a suspended state instead of resuming it. */
  noResume: boolean;
  /** The readfile came from an m5dev.json: it must lie in this directory (checked on the opened file). */
  readfileWithin?: string;
  /** `up --from-checkpoint`: the instance was made of a checkpoint, which resumes only into this machine. */
  restore?: { portableKey: string };
  /**
   * Called once QEMU runs (launched, resumed or found running), before the guest is waited for: what
   * must serve the guest from then on (up's checkpoint agent: a guest that asks for a checkpoint
   * while up waits for its SSH would otherwise stand paused, and up with it).
   */
  whenRunning?: (state: InstanceState) => Promise<void>;
}

/** Every instance file whose presence decides a step. */
export const STATUS_FILES = [STORED.userKey, STORED.flash0, STORED.flash1, STORED.seed, STORED.diskRaw, STORED.diskOverlay];

/** The instance as found on the engine, with the config reconciled for it. */
export interface Found {
  request: UpRequest;
  toolchain: Toolchain;
  files: InstanceFiles;
  placement: Placement;
  /** The config this up runs with (a suspended guest's own settings where the command line is silent). */
  config: VmConfig;
  state: InstanceState | undefined;
  /** Which instance files the storage holds. */
  stored: Map<string, FileStamp>;
  kernel: KernelBoot | undefined;
  /** Things the user should know (a discarded saved state, an unset clock): each phase adds to them. */
  notes: string[];
}

export type InstancePlan =
  /** A VM of the instance runs already: up attaches to it. */
  | { kind: 'attach'; found: Found; vm: RunningVm }
  /** Start one: boot, or resume the saved guest (decided at launch, where the saved state is checked against the launch). */
  | { kind: 'start'; found: Found; saved: SavedRecord | undefined };

/** The instance where it lives: its files, state and storages, the kernel asked for, and the VM that runs (stopped ones removed). */
export interface Located {
  files: InstanceFiles;
  state: InstanceState | undefined;
  placement: Placement;
  stored: Map<string, FileStamp>;
  kernel: KernelBoot | undefined;
  live: VmEntry | undefined;
}

export async function locateInstance(toolchain: Toolchain, req: Pick<UpRequest, 'name' | 'home' | 'kernelVersion'>): Promise<Located> {
  const files = openInstance(req.home, req.name, true);
  const state = readState(files);
  const placement = await placeInstance(toolchain.engine, req.home, files, req.name, state, () => toolchain.tag);
  const { host, storage, kernels } = placement;
  await Promise.all([storage.ensure(), placement.blobs.ensure()]);
  const kernel = req.kernelVersion ? await kernelBootFor(kernels, req.kernelVersion) : undefined;
  if (!state) {
    // As `m5dev doctor` says it: stop before filling a disk that cannot hold a new instance.
    const disk = await storageDiskCheck(storage);
    if (disk.status === 'fail') throw checkError(disk);
  }
  const stored = await storage.stat(STATUS_FILES);
  const vms = await host.list(req.name);
  for (const c of vms) if (!c.running) await host.attach(c).remove();
  return { files, state, placement, stored, kernel, live: vms.find((c) => c.running) };
}

export async function findInstance(report: Reporter, toolchain: Toolchain, req: UpRequest): Promise<InstancePlan> {
  return report.step('Instance', async (s) => {
    const { files, state, placement, stored, live, ...located } = await locateInstance(toolchain, req);
    if (state?.job) throw new UsageError(`instance ${req.name} runs disk-image jobs (m5dev run)`, `Use another --name for up (or \`m5dev destroy --name ${req.name}\` first).`);
    const storage = placement.storage;
    const notes: string[] = [];
    let saved = live ? undefined : await readSaved(storage);
    if (!live && !saved) {
      // A complete save whose commit was cut short after QEMU quit: finished now, not dropped.
      saved = await finishPending(storage);
      if (saved) notes.push(`finished committing the suspend of ${saved.savedAt}, which had saved completely`);
    }
    const plan = reconcile(
      {
        name: req.name,
        state,
        live: live !== undefined,
        suspended: saved !== undefined,
        kernelRelease: located.kernel?.release,
        disks: new Set((['raw', 'overlay'] as const).filter((d) => stored.has(diskName(d)))),
      },
      { config: req.config, explicit: req.explicit, noResume: req.noResume },
    );
    if (plan.kind === 'refuse') throw plan.error;
    const kernel = plan.kind === 'resume' && plan.kernelVersion ? await kernelBootFor(placement.kernels, plan.kernelVersion) : located.kernel;
    const found: Found = { request: req, toolchain, files, placement, config: plan.config, state, stored, kernel, notes };
    checkShareable(found);
    s.title(`Instance ${req.name}${live ? ' (running)' : saved ? ' (suspended)' : state ? ' (stopped)' : ' (new)'}`);
    return live ? { kind: 'attach', found, vm: placement.host.attach(live) } : { kind: 'start', found, saved };
  });
}

/** Shares need the engine to see this machine's directories, and the directories to exist. */
function checkShareable(found: Found): void {
  const shares = found.config.shares;
  if (shares.length === 0) return;
  if (!found.placement.host.features.seesClientFiles) {
    throw new ShareError(
      `the engine ${found.toolchain.engine.endpoint.host} cannot see this machine's files, so it cannot share ${shares.map((x) => x.host).join(', ')}`,
      'Copy the tree in and out instead: `m5dev cp DIR guest:PATH` and `m5dev cp guest:PATH DIR` (see docs/any-engine.md), or use a local engine.',
    );
  }
  for (const s of shares) {
    if (!existsSync(s.host) || !statSync(s.host).isDirectory()) throw new ShareError(`${s.host} is not a directory`, 'Share an existing directory: --share HOST_DIR[:GUEST_PATH].');
  }
}
