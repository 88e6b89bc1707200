/** `m5dev up` as a flat task list; every step skips with a reason when its output is already there. */
import { mountLabel } from '../docker/mounts.js';
import { reconcile } from '../vm/reconcile.js';
import { randomUUID } from 'node:crypto';
import type { ListrTask } from 'listr2';
import type { VmConfig } from '../config.js';
import type Docker from 'dockerode';
import { CopyError, DownloadError, PortInUseError, ShareError, UsageError } from '../errors.js';
import { existsSync, statSync } from 'node:fs';
import { containerPath, mappedFileNote } from '../vm/shares.js';
import { probeShareModels } from './share-probe.js';
import { mountShares } from './guest-shares.js';
import { MESSAGES } from '../messages.js';
import { imageTasks, newImageCtx, type ImageCtx } from './image-build.js';
import type { HomeLayout } from '../paths.js';
import { BlobStore } from '../download/store.js';
import { fetchText, fetchVerified } from '../download/downloader.js';
import { parseSha256Sums, sumsLocation, unverifiableSums } from '../download/sha256sums.js';
import { openInstance, readState, writeState, IN_CONTAINER, CACHE_IN_CONTAINER, RAM_TMPFS, STORED, type InstanceFiles, type InstanceState } from '../vm/instance.js';
import { diskName, keysExist, makeDisk, makeFlash, makeKeys, makeSeed, seedContents, type ToolEnv } from '../vm/prepare.js';
import type { FilesMode } from '../engine/engine.js';
import type { FileStamp, Storage } from '../engine/storage.js';
import { blobStorage, existingInstanceStorage, instanceStorage, kernelStorage } from '../engine/instance-storage.js';
import { KERNELS_MOUNT } from '../kernel/cache.js';
import { guestSsh } from '../ssh/guest.js';
import type { GuestSsh } from '../ssh/client.js';
import { PassThrough } from 'node:stream';
import { shScript } from '../shell.js';
import { GUEST_INSTALL_SCRIPT, guestStampPath } from '../kernel/guest-tree.js';
import { checkError, storageDiskCheck } from '../engine/doctor.js';
import { chooseMachine, type MachineChoice } from '../vm/machine.js';
import { qemuArgs } from '../vm/qemu-args.js';
import { GUEST_SSH_FORWARD } from '../vm/guest-access.js';
import { containerLogs, execPipe, forceRemove, listVmContainers, startVmContainer, vmContainerName, type VmContainerInfo } from '../docker/containers.js';
import { firstFreePort, isPortFree } from '../vm/ports.js';
import { lastConsoleLine, waitForSsh } from '../vm/readiness.js';
import { isInterrupting, onCleanup } from '../cleanup.js';
import { qmp } from '../vm/qmp.js';
import { loadSteps, restoringRam, savedFilesIn, SAVED_FORMAT, type SavedFormat, type SavedRecord, dropSaved, launchKey, readSaved, resumePlan, viewSaved } from '../vm/saved-state.js';
import { kernelBootFor } from './kernel-boot.js';
import { progressLine } from './progress.js';
import { M5OPS_PLUGIN, putReadfile } from './m5ops.js';

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
  /** Where the engine keeps this instance's files and the blob cache (set in the Instance step). */
  filesMode?: FilesMode;
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
  running?: VmContainerInfo;
  sha256?: string;
  machine?: MachineChoice;
  containerId?: string;
  sshPort?: number;
  bootSeconds?: number;
  /** The readfile came from an m5dev.json: it must lie in this directory (checked on the opened file). */
  readfileWithin?: string;
  /** Keep the VM container past a later failure of this command (set when it starts; called once the guest answers). */
  releaseVm?: () => void;
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

/** Start paused, waiting for an incoming state (a RAM file's ignore-shared capability is set first). */
const RESUME_ARGS = ['-S', '-incoming', 'defer'];

/** One round trip: load the saved state (with a RAM file, only the devices), consume the record, run. */
async function continueSaved(docker: Docker, containerId: string, format: SavedFormat): Promise<void> {
  await qmp(docker, containerId, IN_CONTAINER.qmp, loadSteps(format, IN_CONTAINER.vmState, IN_CONTAINER.vmStateRecord), 120);
}

// Pure skip predicates: a reason string, or false to run.
export const upSkipped = {
  running: (ctx: UpCtx) => (ctx.running ? MESSAGES.alreadyRunning(ctx.name) : false),
  digest: (ctx: UpCtx) => upSkipped.running(ctx) || (ctx.state ? `pinned by the instance: sha256 ${ctx.state.imageSha256.slice(0, 12)}…` : false),
  download: (ctx: UpCtx) => upSkipped.running(ctx) || (ctx.sha256 && ctx.store.has(ctx.sha256) ? MESSAGES.downloadCached(ctx.sha256) : false),
  keys: (ctx: UpCtx) => upSkipped.running(ctx) || (keysExist(ctx.files) && ctx.stored?.has(STORED.userKey) ? MESSAGES.keysExist : false),
  flash: (ctx: UpCtx) => upSkipped.running(ctx) || (ctx.stored?.has(STORED.flash0) && ctx.stored.has(STORED.flash1) ? MESSAGES.flashExists : false),
  disk: (ctx: UpCtx) => upSkipped.running(ctx) || (ctx.stored?.has(diskName(ctx.config.disk)) ? MESSAGES.diskExists : false),
  /** The cloud image is in the engine's blob cache already (always, when the engine shares our files). */
  copyImage: (ctx: UpCtx) => upSkipped.disk(ctx) || (ctx.blobs?.localDir ? 'the engine reads the client\'s blob cache' : false),
};

function toolEnv(ctx: UpCtx): ToolEnv {
  return {
    docker: ctx.image.docker!,
    image: ctx.image.tag!,
    home: ctx.home.root,
    storage: ctx.storage!,
    blobs: ctx.blobs!,
    files: ctx.files,
    owner: ctx.image.engine!.owner(ctx.filesMode!, ctx.image.engineInfo!.rootless),
  };
}

/** Every instance file whose presence decides a step. */
const STATUS_FILES = [STORED.userKey, STORED.flash0, STORED.flash1, STORED.seed, STORED.diskRaw, STORED.diskOverlay];

export function upTasks(): ListrTask<UpCtx>[] {
  return [
    { title: 'Toolchain image', task: (_ctx, task) => task.newListr<UpCtx>(imageTasks<UpCtx>(), { concurrent: false }) },
    {
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
        const found = await listVmContainers(ctx.image.docker!, ctx.home.root, ctx.name);
        const live = found.find((c) => c.state === 'running');
        for (const c of found) if (c.state !== 'running') await forceRemove(ctx.image.docker!, c.id);
        ctx.saved = live ? undefined : await readSaved(ctx.storage!);
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
          ctx.running = live;
          ctx.containerId = live.id;
          ctx.sshPort = live.sshPort;
        }
        if (plan.kind === 'resume' && plan.kernelVersion) ctx.kernel = await kernelBootFor(ctx.kernels!, plan.kernelVersion);
        const suspended = ctx.saved !== undefined;
        checkShareable(ctx);
        task.title = `Instance ${ctx.name}${live ? ' (running)' : suspended ? ' (suspended)' : ctx.state ? ' (stopped)' : ' (new)'}`;
      },
    },
    {
      title: 'Resolve the image digest',
      skip: upSkipped.digest,
      task: async (ctx, task) => {
        if (ctx.config.imageSha256) {
          ctx.sha256 = ctx.config.imageSha256;
          task.title = `Image digest pinned: ${ctx.sha256.slice(0, 12)}…`;
          return;
        }
        const plain = unverifiableSums(ctx.config.imageUrl);
        if (plain) throw new UsageError(`cannot verify ${ctx.config.imageUrl}: ${plain}`, 'Pin the digest with --image-sha256 (or m5dev.json "imageSha256"), or use an https URL.');
        const { sumsUrl, name } = sumsLocation(ctx.config.imageUrl);
        const sums = parseSha256Sums(await fetchText(sumsUrl));
        const sha = sums.get(name);
        if (!sha) throw new DownloadError(`${sumsUrl} has no entry for ${name}`, 'Pin the digest with --image-sha256 or m5dev.json "imageSha256".');
        ctx.sha256 = sha;
        task.title = `Image digest from SHA256SUMS: ${sha.slice(0, 12)}…`;
      },
    },
    {
      title: 'Download the cloud image',
      skip: (ctx) => {
        if (ctx.state && !ctx.sha256) ctx.sha256 = ctx.state.imageSha256;
        return upSkipped.download(ctx);
      },
      task: async (ctx, task) => {
        const abort = new AbortController();
        let lastLine = '';
        const undo = onCleanup('abort download', () => abort.abort());
        try {
          const res = await fetchVerified({
            url: ctx.config.imageUrl,
            sha256: ctx.sha256!,
            store: ctx.store,
            signal: abort.signal,
            onProgress: (p) => {
              const line = progressLine(p.received, p.total, p.attempt);
              if (line !== lastLine) task.output = lastLine = line;
            },
          });
          task.title = `Downloaded and verified (${res.attempts} attempt${res.attempts === 1 ? '' : 's'}${res.resumed ? ', resumed' : ''})`;
        } finally {
          undo();
        }
      },
    },
    {
      title: 'SSH keys (user and pinned host key)',
      skip: upSkipped.keys,
      task: async (ctx, task) => {
        ctx.keysRemade = ctx.state?.instanceId !== undefined;
        if (ctx.keysRemade) {
          // Recorded before anything else can fail: a later up must not reuse the instance-id or
          // resume a saved guest that knows only the lost keys.
          ctx.notes.push('saved state discarded: the SSH keys were made anew');
          ctx.saved = undefined;
          await dropSaved(ctx.storage!);
          ctx.state = { ...ctx.state!, instanceId: undefined, seedHash: undefined };
          writeState(ctx.files, ctx.state);
        }
        await makeKeys(toolEnv(ctx), ctx.name);
        if (ctx.keysRemade) task.title = 'SSH keys made anew (the old ones were missing): the guest boots afresh to install them';
      },
    },
    {
      title: 'cloud-init seed',
      skip: upSkipped.running,
      task: async (ctx, task) => {
        // A stable instance-id: cloud-init runs its per-instance modules once, not on every boot;
        // a new one when the keys were made anew (the keys step cleared it), so that it installs them.
        const instanceId = ctx.state?.instanceId ?? `m5dev-${ctx.name}-${randomUUID().slice(0, 8)}`;
        const contents = seedContents(ctx.files, ctx.name, instanceId);
        if (ctx.state?.seedHash === contents.hash && ctx.stored?.has(STORED.seed)) {
          task.skip(MESSAGES.seedExists);
          return;
        }
        await makeSeed(toolEnv(ctx), contents);
        ctx.state = { ...(ctx.state ?? baseState(ctx)), instanceId, seedHash: contents.hash };
      },
    },
    { title: 'UEFI flash (QEMU_EFI.fd padded to 64 MiB)', skip: upSkipped.flash, task: (ctx) => makeFlash(toolEnv(ctx)) },
    {
      title: 'Copy the cloud image to the engine',
      skip: upSkipped.copyImage,
      task: async (ctx, task) => {
        const present = await ctx.blobs!.stat([ctx.sha256!]);
        if (present.has(ctx.sha256!)) {
          task.skip('cached on the engine');
          return;
        }
        await ctx.blobs!.importFile(ctx.store.path(ctx.sha256!), ctx.sha256!, ctx.sha256!);
        task.title = `Copied the cloud image to the engine (verified there, sha256 ${ctx.sha256!.slice(0, 12)}…)`;
      },
    },
    {
      title: 'Instance disk',
      skip: upSkipped.disk,
      task: async (ctx, task) => {
        const dropPartial = () => ctx.storage!.remove([`${diskName(ctx.config.disk)}.tmp`]);
        const undo = onCleanup('partial disk', dropPartial);
        try {
          await makeDisk(toolEnv(ctx), ctx.config.disk, ctx.sha256!, ctx.config.diskGrow);
        } catch (e) {
          await dropPartial(); // a disk that did not convert whole (a full disk) is never kept
          throw e;
        } finally {
          undo();
        }
        task.title = ctx.config.disk === 'raw' ? `Instance disk: raw copy, grown ${ctx.config.diskGrow}` : `Instance disk: qcow2 overlay, grown ${ctx.config.diskGrow}`;
      },
    },
    {
      title: "The guest's m5ops readfile",
      skip: (ctx) => (ctx.config.m5opsReadfile ? false : 'no readfile (up --m5ops-readfile FILE)'),
      task: async (ctx, task) => {
        // Copied in each up (what the file holds now); `m5dev m5ops readfile` replaces it on a running guest.
        await putReadfile(ctx.storage!, ctx.config.m5opsReadfile!, ctx.readfileWithin);
        task.title = `m5ops readfile: a copy of ${ctx.config.m5opsReadfile}`;
      },
    },
    {
      title: 'Start QEMU in its container',
      skip: upSkipped.running,
      task: async (ctx, task) => {
        const docker = ctx.image.docker!;
        const engine = ctx.image.engine!;
        ctx.sshPort = await pickPort(ctx);
        // Decided where the VM runs: the engine's architecture, and /dev/kvm given to a container there.
        const arch = ctx.image.engineInfo!.arch;
        ctx.machine = chooseMachine({
          requested: ctx.config.accel,
          hostArch: arch,
          kvmUsable: arch === 'aarch64' && ctx.config.accel !== 'tcg' ? await engine.kvmUsable(ctx.image.tag!) : false,
          cpuOverride: ctx.config.cpu,
        });
        const storage = ctx.storage!;
        const binds = [storage.bind('/instance'), ctx.blobs!.bind(CACHE_IN_CONTAINER, true)];
        if (ctx.kernel) binds.push(ctx.kernels!.bind(KERNELS_MOUNT, true));
        for (const [i, share] of ctx.config.shares.entries()) binds.push({ kind: 'bind', source: share.host, target: containerPath(i) });
        const shareModels = await probeShareModels(docker, ctx.image.tag!, ctx.home.root, ctx.config.shares);
        shareModels.forEach((m, i) => m === 'mapped-file' && ctx.notes.push(mappedFileNote(ctx.config.shares[i]!)));
        const cmd = qemuArgs({
          machine: ctx.machine,
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
          shares: shareModels,
          tcgCacheMiB: ctx.config.tcgCacheMiB,
          m5ops: { plugin: M5OPS_PLUGIN, addr: ctx.config.m5opsAddr, dir: '/instance', exit: ctx.config.m5opsExit },
          runAs: engine.owner(ctx.filesMode!, ctx.image.engineInfo!.rootless),
        });
        const key = launchKey({ image: ctx.image.tag!, cmd, binds: binds.map(mountLabel) });
        const view = await viewSaved(storage);
        const plan = resumePlan(ctx.saved, savedFilesIn(view, ctx.saved), { launchKey: key, stamps: view.stamps }, ctx.noResume ? '--no-resume' : false);
        if (plan.kind === 'refuse') throw new UsageError(MESSAGES.suspendedOther(ctx.name, plan.reason), MESSAGES.suspendedOtherHint);
        // Nothing to resume: drop whatever is there (a memory file left without its record is garbage).
        if (plan.kind === 'discard' || (plan.kind === 'none' && view.saved.size > 0)) await dropSaved(storage);
        if (plan.kind === 'none' && view.saved.size > 0) ctx.notes.push(`the files of a suspend that did not finish were dropped (${[...view.saved].sort().join(', ')})`);
        if (plan.kind === 'discard') ctx.notes.push(`saved state discarded: ${plan.reason}`);
        const state: InstanceState = {
          ...(ctx.state ?? baseState(ctx)),
          sshPort: ctx.sshPort,
          cpus: ctx.config.cpus,
          memoryMiB: ctx.config.memoryMiB,
          accel: ctx.machine.accel,
          cpu: ctx.machine.cpu,
          kernel: ctx.kernel?.release,
          kernelVersion: ctx.kernel?.version,
          ramFile: ctx.config.ramFile,
          tcgCacheMiB: ctx.config.tcgCacheMiB,
          shares: ctx.config.shares.length ? ctx.config.shares : undefined,
          m5ops: { addr: ctx.config.m5opsAddr, exit: ctx.config.m5opsExit },
          image: ctx.image.tag,
          engine: { host: engine.endpoint.host, context: engine.endpoint.context, files: ctx.filesMode! },
          launchKey: key,
        };
        writeState(ctx.files, state);
        ctx.state = state;
        const start = async (qemu: string[]) => {
          await storage.remove([STORED.console]);
          const { container, release } = await startVmContainer(docker, {
            name: vmContainerName(ctx.name, ctx.home.root),
            image: ctx.image.tag!,
            cmd: qemu,
            binds,
            home: ctx.home.root,
            instance: ctx.name,
            hostPort: ctx.sshPort!,
            containerPort: GUEST_SSH_FORWARD,
            kvm: ctx.machine!.accel === 'kvm',
            tmpfs: ctx.config.ramFile ? { path: RAM_TMPFS.dir, sizeMiB: ctx.config.memoryMiB + 64 } : undefined,
          });
          ctx.containerId = container.id;
          ctx.releaseVm = release;
        };
        if (plan.kind === 'resume') {
          task.output = `resuming the guest saved at ${plan.record.savedAt}`;
          try {
            const qemu = [...cmd, ...RESUME_ARGS];
            await start(plan.record.format === SAVED_FORMAT.ramFile ? restoringRam(IN_CONTAINER.ram, RAM_TMPFS.file, qemu) : qemu);
            await continueSaved(docker, ctx.containerId!, plan.record.format);
            ctx.resumed = true;
            // The record went before `cont` (loadSteps): the memory files left are garbage, removed while SSH comes up.
            // A failure leaves only garbage, which the next up drops (nothing to resume without the record).
            ctx.dropping = dropSaved(storage).catch(() => undefined);
          } catch (e) {
            // Ctrl-C: the container's cleanup removes it; a state not yet consumed stays resumable.
            if (isInterrupting()) throw e;
            // QEMU's last word (a RAM file it refused, a stream it could not load) says more than the QMP error.
            const why = ctx.containerId ? lastConsoleLine(await containerLogs(docker, ctx.containerId).catch(() => '')) : '';
            if (ctx.containerId) await forceRemove(docker, ctx.containerId);
            await dropSaved(storage);
            ctx.notes.push(`could not resume (${why || (e as Error).message}); booted afresh`);
          }
        }
        if (!ctx.resumed) await startOnFreePort(ctx, () => start(cmd));
        const how = ctx.resumed ? 'QEMU resumed the suspended guest' : 'QEMU started';
        task.title = `${how} (${ctx.machine.accel}, -cpu ${ctx.machine.cpu}, ${ctx.config.cpus} vCPU, ${ctx.config.memoryMiB} MiB) on 127.0.0.1:${ctx.sshPort}${ctx.notes.length ? `; ${ctx.notes.join('; ')}` : ''}`;
      },
    },
    {
      title: 'Wait for SSH with the pinned host key',
      task: async (ctx, task) => {
        const docker = ctx.image.docker!;
        const ssh = upSsh(ctx);
        const storage = ctx.storage!;
        const via = storage.localDir ? undefined : { id: ctx.containerId!, mountedAt: '/instance' };
        ctx.bootSeconds = await waitForSsh({
          readConsole: () => storage.readTail(STORED.console, 64 * 1024, via),
          timeoutMs: ctx.config.bootTimeoutSec * 1000,
          probe: () => ssh.capture(['true'], { connectTimeoutSec: 5, timeoutMs: 30_000 }),
          alive: async () => (await docker.getContainer(ctx.containerId!).inspect()).State.Running,
          onProgress: (line) => {
            if (line) task.output = line;
          },
        });
        // The guest answers: from here a failing step (the clock, shares, the module tree) fails the command, and the guest runs on.
        ctx.releaseVm?.();
        // A resumed guest's clock stands where it was suspended, and a directly booted kernel may not read the RTC.
        if (ctx.resumed || ctx.kernel) {
          const set = await ssh.capture(['sudo', '-n', 'date', '-u', '-s', `@${(Date.now() / 1000).toFixed(3)}`], { timeoutMs: 30_000 });
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
        const inGuest = (await ssh.capture(['cat', `/${guestStampPath(kernel.release)}`], { timeoutMs: 30_000 })).stdout.trim();
        if (inGuest === kernel.guestTree.stamp) {
          task.skip(`already in the guest: /lib/modules/${kernel.release}, build → /usr/src/linux-headers-${kernel.release}`);
          return;
        }
        await installGuestTree(ctx.image.docker!, ctx.containerId!, ssh, kernel);
        task.title = `Installed /lib/modules/${kernel.release} (modules.dep) and its build tree in the guest`;
      },
    },
    {
      title: 'Mount the shared directories in the guest',
      skip: (ctx) => (ctx.config.shares.length ? false : 'no shares (up --share HOST_DIR[:GUEST_PATH])'),
      task: async (ctx, task) => {
        try {
          ctx.notes.push(...(await mountShares(upSsh(ctx), ctx.config.shares)));
        } catch (e) {
          // The guest runs on without them: the instance stops asking for them (a later up, a suspend).
          ctx.state = { ...ctx.state!, shares: undefined };
          writeState(ctx.files, ctx.state);
          throw e;
        }
        task.title = `Shared ${ctx.config.shares.map((s) => `${s.host} → ${s.guest}`).join(', ')} (9p)`;
      },
    },
  ];
}

function upSsh(ctx: UpCtx): GuestSsh {
  return guestSsh(ctx.files, ctx.state!, ctx.sshPort!, { docker: ctx.image.docker!, id: ctx.containerId! });
}

/** The kernel storage's guest tree, packed in the VM container (which mounts it), unpacked in the guest. */
async function installGuestTree(docker: Docker, containerId: string, ssh: GuestSsh, kernel: KernelBoot): Promise<void> {
  const stream = new PassThrough();
  const [packed, unpacked] = await Promise.all([
    execPipe(docker, containerId, ['tar', '-cz', '-C', kernel.guestTree!.dir, 'lib', 'usr'], { output: stream }),
    ssh.pipe([shScript(GUEST_INSTALL_SCRIPT, 'm5dev-kernel-tree', [kernel.release], { root: true })], { input: stream }),
  ]);
  if (packed.exitCode !== 0 || unpacked.exitCode !== 0) {
    throw new CopyError(`installing /lib/modules/${kernel.release} in the guest failed`, `${packed.stderr}${unpacked.stderr}`.trim());
  }
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
                await sub.newListr<UpCtx>(upTasks().slice(1), { concurrent: false, ctx: c }).run();
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

/**
 * The engine's storages for this instance: an existing instance's where it was created (its
 * recorded engine and files mode), a new one's where the engine's files probe says.
 */
async function openStorages(ctx: UpCtx): Promise<void> {
  const engine = ctx.image.engine!;
  const helper = () => ctx.image.tag!;
  if (ctx.state) {
    ctx.storage = existingInstanceStorage(engine, ctx.home, ctx.files, ctx.state);
    ctx.filesMode = ctx.state.engine?.files ?? 'shared';
  } else {
    ctx.filesMode = await engine.filesMode(ctx.home.root, ctx.image.tag!);
    ctx.storage = instanceStorage(engine, ctx.filesMode, ctx.home, ctx.files, ctx.name, helper);
  }
  ctx.blobs = blobStorage(engine, ctx.filesMode, ctx.home, helper);
  ctx.kernels = kernelStorage(engine, ctx.filesMode, ctx.home, helper);
  await Promise.all([ctx.storage.ensure(), ctx.blobs.ensure()]);
}

/** Shares need the engine to see this machine's directories, and the directories to exist. */
function checkShareable(ctx: UpCtx): void {
  const shares = ctx.config.shares;
  if (shares.length === 0) return;
  if (ctx.filesMode !== 'shared') {
    throw new ShareError(
      `the engine ${ctx.image.engine!.endpoint.host} cannot see this machine's files, so it cannot share ${shares[0]!.host}`,
      'Copy the tree in and out instead: `m5dev cp DIR guest:PATH` and `m5dev cp guest:PATH DIR` (see docs/any-engine.md), or use a local engine.',
    );
  }
  for (const s of shares) {
    if (!existsSync(s.host) || !statSync(s.host).isDirectory()) throw new ShareError(`${s.host} is not a directory`, 'Share an existing directory: --share HOST_DIR[:GUEST_PATH].');
  }
}

function baseState(ctx: UpCtx): InstanceState {
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

/**
 * An explicit port must be free; otherwise the instance's last port, else the first free from the
 * default. Free is decided where the port is published: on a local engine by trying it here, on a
 * remote one by the engine itself (see startOnFreePort).
 */
async function pickPort(ctx: UpCtx): Promise<number> {
  const wanted = ctx.explicit.has('sshPort') ? ctx.config.sshPort : ctx.state?.sshPort ?? ctx.config.sshPort;
  const others = new Set((await listVmContainers(ctx.image.docker!, ctx.home.root)).map((o) => o.sshPort));
  if (ctx.filesMode === 'volumes') {
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
