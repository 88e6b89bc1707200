/**
 * `m5dev run`: a job on a disk image that needs neither SSH nor cloud-init (gem5-resources' boot
 * protocol: the image's own init talks to the host through m5ops). It reuses up's phases: the
 * instance located as up locates it, the same launch (media 'job': a qcow2 overlay on the user's
 * image, no seed), and then follows the console and the m5ops log until the job ends: the guest's
 * first fail or panic, or its Nth exit. The user's image is copied into the blob cache by content
 * and never written; the VM goes when the run ends, the instance keeps its console, log and m5out.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { JobTimeoutError, M5opsError, UsageError } from '../errors.js';
import { MESSAGES } from '../messages.js';
import type { VmConfig } from '../config.js';
import type { HomeLayout } from '../paths.js';
import { BlobStore } from '../download/store.js';
import { storeLocalFile } from '../download/local-blob.js';
import { DISK_HEADER_BYTES, judgeDiskImage, type DiskFormat } from '../vm/disk-image.js';
import { STORED } from '../vm/instance.js';
import { makeFlash, makeJobDisk } from '../vm/prepare.js';
import { dropSaved } from '../vm/saved-state.js';
import { RUN_KERNEL_APPEND, withInitramfs } from './initramfs.js';
import { jobEnd, exitsSeen, type JobEnd } from '../m5ops/job.js';
import { latestRun, M5OPS_STORED, readEvents } from './m5ops.js';
import { CHECKPOINTS, DEFAULT_MAX_CHECKPOINTS, checkpointTarget, continueGuest, copyCheckpointIn, findCheckpoint, takeCheckpoint, type CheckpointRecord, type CheckpointRef } from './checkpoint.js';
import type { CleanupScope } from '../cleanup.js';
import type { Toolchain } from './image-build.js';
import { stepUnless, type Reporter } from './report.js';
import { locateInstance, type Found } from './up/instance.js';
import { baseState, blobOnEngine, readfileStep, toolEnv } from './up/prepare.js';
import { launch, type Running } from './up/launch.js';
import { ConsoleLines, followConsole } from './console-follow.js';

export interface RunRequest {
  name: string;
  home: HomeLayout;
  /** The machine: cpus, memory, accel, m5ops base and stats, the readfile (shares and disk kind are not a job's). */
  config: VmConfig;
  explicit: ReadonlySet<keyof VmConfig>;
  /** What boots: the user's disk image (raw or qcow2; never written), or a checkpoint of an earlier run, resumed. */
  from: { disk: string } | { checkpoint: CheckpointRef };
  /** `--kernel VERSION`: m5dev's build of it boots, with the image's root filesystem. */
  kernelVersion?: string;
  /** `--append`: the directly booted kernel's command line (default RUN_KERNEL_APPEND: the initramfs finds the root). */
  append?: string;
  /** The guest's exit that ends the job (a fail or panic ends it at once). */
  exits: number;
  readfileWithin?: string;
}

/** The user's image in the blob cache: its digest, and its format as judged from its own bytes. */
interface JobImage {
  sha256: string;
  format: DiskFormat;
}

/** Prepare and launch a job's VM; its removal is deferred on `scope` (a run never keeps it). */
export async function startJob(report: Reporter, toolchain: Toolchain, req: RunRequest, scope: CleanupScope): Promise<Running> {
  const from = req.from;
  const source = 'checkpoint' in from ? await report.step('Checkpoint', async (s) => {
    const found = await findCheckpoint(toolchain, req.home, from.checkpoint);
    s.title(`Checkpoint ${from.checkpoint.index} of ${from.checkpoint.name} (taken ${found.record.takenAt})`);
    return found;
  }) : undefined;
  const image: JobImage = source ? { sha256: source.record.imageSha256, format: source.record.imageFormat } : await diskImage(report, req.home, 'disk' in from ? from.disk : '');
  const what = 'disk' in from ? from.disk : `checkpoint ${from.checkpoint.name}:${from.checkpoint.index}`;
  const located = await report.step('Instance', async (s) => {
    const found = await jobInstance(toolchain, req);
    s.title(`Instance ${req.name} (a job on ${what})`);
    return found;
  });
  // --kernel: the image's init gets the built kernel's module tree (and gem5_bridge) from an initramfs.
  const found = located.kernel ? { ...located, kernel: await withInitramfs(report, toolchain, req.home, located.placement, located.kernel) } : located;
  const { placement, stored } = found;
  const env = toolEnv(found);
  const store = new BlobStore(req.home);
  await blobOnEngine(report, placement, store, image.sha256, 'the disk image');
  const flash = 'UEFI flash (QEMU_EFI.fd padded to 64 MiB)';
  await stepUnless(report, flash, (found.kernel && 'a directly booted kernel needs no firmware') || (stored.has(STORED.flash0) && stored.has(STORED.flash1) && MESSAGES.flashExists), () => makeFlash(env));
  // A job starts from the image as it is, or from the checkpoint: the last run's overlay, log and m5out go (its console is replaced at launch).
  const fresh = async () => {
    await placement.storage.remove([STORED.diskOverlay, `${STORED.diskOverlay}.tmp`, M5OPS_STORED.log, `${M5OPS_STORED.log}.1`, M5OPS_STORED.cursor, M5OPS_STORED.readfile]);
    await placement.storage.removeTree(M5OPS_STORED.out);
    await placement.storage.removeTree(CHECKPOINTS);
  };
  const saved = source
    ? await report.step(`Restore checkpoint ${source.record.index}: its memory, disk overlay and UEFI variables copied in`, async () => {
        await fresh();
        return copyCheckpointIn(toolchain, req.home, source, placement.storage, placement.owner);
      })
    : await report.step('Job disk: a qcow2 overlay on the image (the image is never written)', async () => {
        await fresh();
        await makeJobDisk(env, image.sha256, image.format);
        return undefined;
      });
  await readfileStep(report, found);
  const state = { ...baseState(req.name, found.config, image.sha256), imageUrl: what, job: { image: what, format: image.format } };
  return launch(report, { found, state, saved, restore: source ? { portableKey: source.record.portableKey } : undefined }, scope, { kind: 'job', exits: req.exits });
}

/** The user's image into the blob cache by content, judged by its own bytes. */
function diskImage(report: Reporter, home: HomeLayout, disk: string): Promise<JobImage> {
  return report.step('Disk image', async (s): Promise<JobImage> => {
    const st = statSync(disk, { throwIfNoEntry: false });
    if (!st?.isFile()) throw new UsageError(`${disk} is not a file`, 'Give the disk image to boot: m5dev run --disk IMAGE (raw or qcow2).');
    const store = new BlobStore(home);
    const { sha256, copied } = await storeLocalFile(store, disk);
    // Judged on the copy it will boot (the store's bytes are the ones named by the digest).
    const judged = judgeDiskImage(readHead(store.path(sha256)), st.size);
    if (!judged.ok) throw new UsageError(`${disk} cannot be run: ${judged.reason}`, 'Flatten it into one self-contained image first: qemu-img convert -O qcow2 IMAGE flat.qcow2');
    s.title(`Disk image ${disk}: ${judged.format}, sha256 ${sha256.slice(0, 12)}…${copied ? ' (copied into the blob cache)' : ' (in the blob cache)'}`);
    return { sha256, format: judged.format };
  });
}

/** The first bytes of a file (the judgement's header). */
function readHead(path: string): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(DISK_HEADER_BYTES);
    return buf.subarray(0, readSync(fd, buf, 0, buf.length, 0));
  } finally {
    closeSync(fd);
  }
}

/** The job's instance, as up locates one: a new one, or one of an earlier run that is not running. */
async function jobInstance(toolchain: Toolchain, req: RunRequest): Promise<Found> {
  const located = await locateInstance(toolchain, req);
  const { state, live, placement } = located;
  if (state && !state.job) throw new UsageError(`instance ${req.name} was made by \`m5dev up\``, `Give the run another --name (default "run"), or \`m5dev destroy --name ${req.name}\` first.`);
  if (live) throw new UsageError(`a job of instance ${req.name} is running`, `Wait for it, or stop it: \`m5dev down --name ${req.name}\`.`);
  // A job always boots from its image: a saved guest of an earlier run is not resumed.
  await dropSaved(placement.storage);
  const kernel = located.kernel && { ...located.kernel, append: req.append ?? RUN_KERNEL_APPEND };
  const config: VmConfig = { ...req.config, disk: 'overlay', shares: [], m5opsExit: 'poweroff' };
  return {
    request: { name: req.name, home: req.home, config, explicit: req.explicit, kernelVersion: req.kernelVersion, noResume: true, readfileWithin: req.readfileWithin },
    toolchain,
    files: located.files,
    placement,
    config,
    state,
    stored: located.stored,
    kernel,
    notes: [],
  };
}

export interface WatchOptions {
  /** The exit that ends the job (gem5-resources' images: 2): QEMU powers off there, this only reports it. */
  exits: number;
  timeoutMs: number;
  /** The console's new text, as whole lines made safe for a terminal. */
  onConsole: (text: string) => void;
  /** Each exit seen before the last (`n` of `wanted`). */
  onExit?: (n: number) => void;
  /** Each checkpoint the guest asked for, once saved (the guest stood still meanwhile). */
  onCheckpoint?: (c: CheckpointRecord) => void;
  /** At most this many are saved (the guest chooses how many it asks for); later ones are let go, each said. */
  maxCheckpoints?: number;
  onCheckpointSkipped?: (index: number, why: string) => void;
  pollMs?: number;
}

/** Follow a job's console and m5ops log until it ends; a VM that stops first, or a timeout, is an error. */
export async function watchJob(running: Running, o: WatchOptions): Promise<JobEnd> {
  const { vm, found } = running;
  const storage = found.placement.storage;
  const via = { vm, mountedAt: '/instance' };
  const console = followConsole(storage, vm);
  const lines = new ConsoleLines();
  const drain = async () => {
    const text = lines.push(await console.next());
    if (text) o.onConsole(text);
  };
  const deadline = Date.now() + o.timeoutMs;
  let reported = 0;
  let taken = 0;
  for (;;) {
    const alive = await vm.isRunning();
    await drain();
    // Beside QEMU while it runs; once QEMU has powered off (the job's end), from the storage itself.
    const events = await readEvents(storage, alive ? via : undefined).catch(() => readEvents(storage));
    const exits = latestRun(events).exits;
    // The plugin paused the guest for each checkpoint (at the op, or after its delay and each period): saved, then it runs on.
    const asked = events.slice(events.map((e) => e.op).lastIndexOf('start') + 1).filter((e) => e.op === 'checkpoint' && e.note?.startsWith('paused'));
    for (const c of asked.slice(taken)) {
      taken++;
      const limit = o.maxCheckpoints ?? DEFAULT_MAX_CHECKPOINTS;
      if (taken > limit) {
        await continueGuest(running.vm);
        o.onCheckpointSkipped?.(taken, `more than ${limit} (--max-checkpoints)`);
      } else {
        o.onCheckpoint?.(await takeCheckpoint(checkpointTarget(running), taken, c));
      }
    }
    const end = jobEnd(exits, o.exits);
    const seen = exitsSeen(exits);
    // Exits before the one that ends the job are reported, also when the end came in the same poll.
    const before = end?.kind === 'exit' ? seen - 1 : seen;
    if (before > reported) o.onExit?.((reported = before));
    if (end || !alive || Date.now() >= deadline) {
      await drain();
      const rest = lines.end();
      if (rest) o.onConsole(rest);
      if (end) return end;
      if (!alive) throw new M5opsError(`the VM stopped before the job ended (${seen} of ${o.exits} m5 exit${o.exits === 1 ? '' : 's'}, no fail)`, `Its console is above; \`m5dev m5ops log --name ${found.request.name}\` shows what the guest did.`);
      throw new JobTimeoutError(`the job did not end within ${Math.round(o.timeoutMs / 1000)} s (${seen} of ${o.exits} m5 exit${o.exits === 1 ? '' : 's'}, no fail)`, 'Give it longer (--timeout S), or check that the image ends its job with `m5 exit` (--exits N: the exit that ends it) or `m5 fail CODE`.');
    }
    await new Promise((r) => setTimeout(r, o.pollMs ?? 250));
  }
}
