/**
 * gem5's checkpoints under `m5dev run`: the guest's `m5 checkpoint` pauses the VM (the plugin's
 * checkpoint=pause), and m5dev saves it as a suspend would (the device state and RAM by QEMU's
 * migration, a sparse copy of the RAM file, the disk overlay and the UEFI variables, all while the
 * guest stands still), then lets it run on. Each checkpoint is a directory of the instance,
 * checkpoints/K, with a record; `run --from-checkpoint NAME:K` copies one into a new job's
 * instance and resumes it there (the launch phase checks that the machine is the same).
 */
import { VmStateError, UsageError, isDiskFull, DiskFullError } from '../errors.js';
import { IN_CONTAINER, RAM_TMPFS, STORED, readState, instanceFiles } from '../vm/instance.js';
import { withQmp } from '../vm/qmp.js';
import { SAVED_FORMAT, guestStamps, saveStream, saveSteps, type SavedFormat, type SavedRecord } from '../vm/saved-state.js';
import { instanceDir, type HomeLayout } from '../paths.js';
import { existsSync } from 'node:fs';
import type { Storage } from '../engine/storage.js';
import type { Toolchain } from './image-build.js';
import { writer } from '../docker/containers.js';
import { existingPlacement } from '../vmhost/placement.js';
import type { Running } from './up/launch.js';

export const CHECKPOINTS = 'checkpoints';
const RECORD = 'record.json';
/** What a checkpoint holds, beside its record: the names in the checkpoint directory and in the instance. */
const FILES = [
  { saved: 'vmstate', instance: STORED.vmState },
  { saved: 'ram', instance: STORED.ram, only: SAVED_FORMAT.ramFile },
  { saved: 'disk.qcow2', instance: STORED.diskOverlay },
  { saved: 'flash1.img', instance: STORED.flash1, optional: true },
] as const;

export interface CheckpointRecord {
  index: number;
  takenAt: string;
  format: SavedFormat;
  /** The machine it restores into (saved-state.ts portableKey). */
  portableKey: string;
  /** The guest's virtual clock at the checkpoint op. */
  vclockNs: number;
  /** How long the guest stood still for it. */
  pauseMs: number;
  /** The job's disk image (its digest: the base the saved overlay needs) and format. */
  imageSha256: string;
  imageFormat: 'raw' | 'qcow2';
}

const dirOf = (index: number) => `${CHECKPOINTS}/${index}`;

/** How many checkpoints a run saves unless told otherwise (each holds the guest's memory and disk overlay). */
export const DEFAULT_MAX_CHECKPOINTS = 8;

/** The paused guest runs on (a checkpoint let go, or after its save). */
export async function continueGuest(running: Running): Promise<void> {
  await withQmp(() => running.vm.monitor(30), (q) => q.execute('cont'));
}

/** Save the guest the plugin paused at its Kth checkpoint op, then let it run on (also when the save failed). */
export async function takeCheckpoint(running: Running, index: number, vclockNs: number): Promise<CheckpointRecord> {
  const { vm, found, state } = running;
  const storage = found.placement.storage;
  const inVm = `/instance/${dirOf(index)}`;
  const format = state.ramFile === true ? SAVED_FORMAT.ramFile : SAVED_FORMAT.stream;
  const t0 = Date.now();
  const sh = async (cmd: string[], what: string) => {
    const r = await vm.capture(cmd);
    if (r.exitCode === 0) return;
    if (isDiskFull(r.stderr)) throw new DiskFullError(`saving checkpoint ${index}`, undefined, r.stderr.trim());
    throw new VmStateError(`saving checkpoint ${index} failed: ${what}: ${r.stderr.trim()}`);
  };
  // Its directory made from this side (the user's, on a local directory: QEMU's container writes the files in it as root).
  await storage.write([{ name: `${dirOf(index)}/.saving`, data: '' }]);
  let saved = false;
  try {
    // A save needs room for the guest's memory and the overlay again: refused before anything is written.
    const { bytes: free, where } = await storage.free();
    const need = state.memoryMiB * 1048576 + 1024 * 1048576;
    if (free < need) throw new DiskFullError(`saving checkpoint ${index}: ${Math.floor(free / 1048576)} MiB free in ${where}, ${Math.ceil(need / 1048576)} MiB needed`);
    const stream = saveStream(`${inVm}/vmstate`);
    const results = await withQmp(() => vm.monitor(300, [stream]), (q) => q.run(saveSteps(format, stream), async () => undefined));
    const status = results.at(-1) as { status?: string; 'error-desc'?: string };
    if (status.status !== 'completed') throw new VmStateError(`saving checkpoint ${index} failed: ${status['error-desc'] ?? status.status ?? ''}`);
    // The guest stands still and QEMU has flushed its disks: the RAM file, the overlay and the variables are consistent.
    if (format === SAVED_FORMAT.ramFile) await sh(['cp', '--sparse=always', RAM_TMPFS.file, `${inVm}/ram`], 'the RAM file');
    await sh(['cp', '--sparse=always', IN_CONTAINER.diskOverlay, `${inVm}/disk.qcow2`], 'the disk overlay');
    await sh(['sh', '-c', '[ ! -e "$1" ] || cp "$1" "$2"', 'sh', IN_CONTAINER.flash1, `${inVm}/flash1.img`], 'the UEFI variables');
    saved = true;
  } finally {
    // Migration left QEMU in postmigrate: `cont` takes the disks back and runs the guest on.
    await continueGuest(running);
    // A checkpoint that did not save whole is not kept (it would hold gigabytes of nothing usable).
    if (!saved) await storage.removeTree(dirOf(index)).catch(() => undefined);
  }
  const record: CheckpointRecord = {
    index,
    takenAt: new Date().toISOString(),
    format,
    portableKey: running.portableKey,
    vclockNs,
    pauseMs: Date.now() - t0,
    imageSha256: state.imageSha256,
    imageFormat: state.job?.format ?? 'qcow2',
  };
  await storage.write([{ name: `${dirOf(index)}/${RECORD}`, data: `${JSON.stringify(record, null, 2)}\n` }]);
  await storage.remove([`${dirOf(index)}/.saving`]);
  return record;
}

/** The checkpoints an instance holds (complete ones: those with a record), in order. */
export async function listCheckpoints(storage: Storage): Promise<CheckpointRecord[]> {
  const files = await storage.listTree(CHECKPOINTS);
  const out: CheckpointRecord[] = [];
  for (const f of files.filter((x) => x.path.endsWith(`/${RECORD}`))) {
    const raw = await storage.read(`${CHECKPOINTS}/${f.path}`);
    try {
      const r = JSON.parse(raw?.toString('utf8') ?? '') as CheckpointRecord;
      if (Number.isInteger(r.index) && typeof r.portableKey === 'string') out.push(r);
    } catch {
      // a damaged record: not a checkpoint
    }
  }
  return out.sort((a, b) => a.index - b.index);
}

/** `NAME:K` (the instance and the checkpoint's number). Pure. */
export function parseCheckpointRef(text: string): { name: string; index: number } {
  const m = /^([a-z0-9][a-z0-9._-]*):([1-9]\d{0,5})$/.exec(text);
  if (!m) throw new UsageError(`--from-checkpoint ${text} is not NAME:K`, 'e.g. --from-checkpoint run:1 (`m5dev checkpoints --name run` lists them).');
  return { name: m[1] ?? '', index: Number(m[2]) };
}

/** A checkpoint to restore: where it lives and its record. */
export interface CheckpointSource {
  storage: Storage;
  record: CheckpointRecord;
}

export async function findCheckpoint(toolchain: Toolchain, home: HomeLayout, ref: { name: string; index: number }): Promise<CheckpointSource> {
  const dir = instanceDir(home, ref.name);
  const state = existsSync(dir) ? readState(instanceFiles(dir)) : undefined;
  if (!state?.job) throw new UsageError(`no instance ${ref.name} of m5dev run`, 'Checkpoints are taken by `m5dev run` jobs: `m5dev checkpoints --name NAME` lists them.');
  const { storage } = existingPlacement(toolchain.engine, home, instanceFiles(dir), state);
  const record = (await listCheckpoints(storage)).find((c) => c.index === ref.index);
  if (!record) throw new UsageError(`instance ${ref.name} has no checkpoint ${ref.index}`, `\`m5dev checkpoints --name ${ref.name}\` lists them.`);
  return { storage, record };
}

/**
 * The checkpoint's files into `storage` (a new job's instance) under the names a resume reads, by a
 * tool container that mounts both, and the saved-state record that makes the launch resume them.
 */
export async function copyCheckpointIn(toolchain: Toolchain, home: HomeLayout, source: CheckpointSource, storage: Storage, owner?: { uid: number; gid: number }): Promise<SavedRecord> {
  const { record } = source;
  const from = `/from/${dirOf(record.index)}`;
  const copies = FILES.filter((f) => !('only' in f) || f.only === record.format).flatMap((f) => [`${from}/${f.saved}`, `/instance/${f.instance}`, 'optional' in f ? '1' : '0']);
  await toolchain.engine.runTool({
    image: toolchain.tag,
    // Each pair: a sparse copy; a missing optional file (no UEFI variables: a direct kernel boot) is skipped.
    cmd: ['sh', '-c', 'while [ $# -gt 0 ]; do if [ -e "$1" ] || [ "$3" = 0 ]; then cp --sparse=always "$1" "$2" || exit 1; fi; shift 3; done', 'sh', ...copies],
    binds: [storage.bind('/instance'), source.storage.bind('/from', true)],
    home: home.root,
    confined: writer(owner),
    description: `Copying checkpoint ${record.index} in`,
  });
  return { format: record.format, launchKey: '', stamps: await guestStamps(storage), bytes: 0, savedAt: record.takenAt, saveMs: record.pauseMs };
}
