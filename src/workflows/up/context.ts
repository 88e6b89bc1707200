/** `m5dev up`'s shared context: what each phase reads and leaves for the next, and the skip rules. */
import type { CleanupScope } from '../../cleanup.js';
import type { VmConfig } from '../../config.js';
import { imageTasks, newImageCtx, type ImageCtx } from '../image-build.js';
import type { ListrTask } from 'listr2';
import type { HomeLayout } from '../../paths.js';
import { BlobStore } from '../../download/store.js';
import { openInstance, STORED, type InstanceFiles, type InstanceState } from '../../vm/instance.js';
import { diskName, keysExist, type ToolEnv } from '../../vm/prepare.js';
import type { Placement } from '../../vmhost/placement.js';
import type { FileStamp, Storage } from '../../engine/storage.js';
import { guestSsh } from '../../ssh/guest.js';
import type { GuestSsh } from '../../ssh/client.js';
import type { MachineChoice } from '../../vm/machine.js';
import type { RunningVm, VmHost } from '../../vmhost/vm-host.js';
import type { SavedRecord } from '../../vm/saved-state.js';
import { MESSAGES } from '../../messages.js';

export interface KernelBoot {
  /** The Image as the VM container sees it, the version it was built as and the release it reports. */
  version: string;
  image: string;
  release: string;
  append: string;
  /** The build's guest module tree (kernel/guest-tree.ts) as the VM container sees it, if it was made. */
  guestTree?: { dir: string; stamp: string };
}

export interface UpCtx {
  image: ImageCtx;
  name: string;
  config: VmConfig;
  /** Settings given on the command line (they win over what the instance was created with). */
  explicit: ReadonlySet<keyof VmConfig>;
  home: HomeLayout;
  files: InstanceFiles;
  store: BlobStore;
  /** Where the instance lives: its VM host, storages, owner and engine record (set in the Instance step). */
  placement?: Placement;
  storage?: Storage;
  blobs?: Storage;
  /** Which instance files the storage holds (read once in the Instance step). */
  stored?: Map<string, FileStamp>;
  /** The saved-state record of a suspended instance (read once in the Instance step). */
  saved?: SavedRecord;
  /** `--kernel VERSION`: boot that built kernel (resolved on the engine in the Instance step). */
  kernelVersion?: string;
  kernel?: KernelBoot;
  kernels?: Storage;
  state?: InstanceState;
  /** Where the VM runs (set in the Instance step, with the storages). */
  host?: VmHost;
  /** The VM that was running already (up attaches to it). */
  running?: RunningVm;
  sha256?: string;
  machine?: MachineChoice;
  /** This instance's VM: the running one, or the one the launch phase started. */
  vm?: RunningVm;
  sshPort?: number;
  bootSeconds?: number;
  /** The readfile came from an m5dev.json: it must lie in this directory (checked on the opened file). */
  readfileWithin?: string;
  /**
   * This instance's `up` as one operation (see up.ts, inInstanceScope): the VM container's removal
   * is deferred on it, and provision keeps it once the guest answers.
   */
  scope?: CleanupScope;
  /** --no-resume: drop a suspended state instead of resuming it. */
  noResume: boolean;
  /**
   * This up made the SSH keys of an instance that had a guest already (its key files were lost):
   * the guest must boot afresh under a new instance-id, or cloud-init never installs them.
   */
  keysRemade?: boolean;
  resumed?: boolean;
  /** Things the user should know (a discarded saved state, an unset clock). */
  notes: string[];
  /** Removal of a resumed state's memory files, running while the guest's SSH comes up. */
  dropping?: Promise<void>;
  /** With several instances at once: what stopped this one (the others go on). */
  failure?: unknown;
}

export function newUpCtx(name: string, config: VmConfig, explicit: ReadonlySet<keyof VmConfig>, home: HomeLayout): UpCtx {
  return {
    image: newImageCtx(config.baseImage),
    name,
    config,
    explicit,
    home,
    files: openInstance(home, name, true),
    store: new BlobStore(home),
    noResume: false,
    notes: [],
  };
}

/** The toolchain image, made or found first (every phase runs in or beside it). */
export const toolchainTask = (): ListrTask<UpCtx> => ({ title: 'Toolchain image', task: (_ctx, task) => task.newListr<UpCtx>(imageTasks<UpCtx>(), { concurrent: false }) });

// Pure skip predicates: a reason string, or false to run.
export const upSkipped = {
  running: (ctx: UpCtx) => (ctx.running ? MESSAGES.alreadyRunning(ctx.name) : false),
  digest: (ctx: UpCtx) => upSkipped.running(ctx) || (ctx.state ? `pinned by the instance: sha256 ${ctx.state.imageSha256.slice(0, 12)}…` : false),
  download: (ctx: UpCtx) => upSkipped.running(ctx) || (ctx.sha256 && ctx.store.has(ctx.sha256) ? MESSAGES.downloadCached(ctx.sha256) : false),
  keys: (ctx: UpCtx) => upSkipped.running(ctx) || (keysExist(ctx.files) && ctx.stored?.has(STORED.userKey) ? MESSAGES.keysExist : false),
  flash: (ctx: UpCtx) => upSkipped.running(ctx) || (ctx.stored?.has(STORED.flash0) && ctx.stored.has(STORED.flash1) ? MESSAGES.flashExists : false),
  disk: (ctx: UpCtx) => upSkipped.running(ctx) || (ctx.stored?.has(diskName(ctx.config.disk)) ? MESSAGES.diskExists : false),
  /** The cloud image is in the engine's blob cache already (always, when the engine shares our files). */
  copyImage: (ctx: UpCtx) => upSkipped.disk(ctx) || (ctx.sha256 && ctx.blobs?.clientPath(ctx.sha256) ? 'the engine reads the client\'s blob cache' : false),
};

export function toolEnv(ctx: UpCtx): ToolEnv {
  return {
    runTool: (run) => ctx.image.engine!.runTool(run),
    image: ctx.image.tag!,
    home: ctx.home.root,
    storage: ctx.storage!,
    blobs: ctx.blobs!,
    files: ctx.files,
    owner: ctx.placement!.owner,
  };
}

/** Every instance file whose presence decides a step. */
export const STATUS_FILES = [STORED.userKey, STORED.flash0, STORED.flash1, STORED.seed, STORED.diskRaw, STORED.diskOverlay];

export function baseState(ctx: UpCtx): InstanceState {
  return {
    name: ctx.name,
    sshPort: ctx.config.sshPort,
    imageSha256: ctx.sha256!,
    imageUrl: ctx.config.imageUrl,
    disk: ctx.config.disk,
    cpus: ctx.config.cpus,
    memoryMiB: ctx.config.memoryMiB,
    accel: ctx.config.accel,
    cpu: ctx.config.cpu ?? '',
    createdAt: new Date().toISOString(),
  };
}

/** The guest's SSH, once the VM container runs. */
export function upSsh(ctx: UpCtx): GuestSsh {
  return guestSsh(ctx.files, ctx.state!, ctx.sshPort!, ctx.vm);
}
